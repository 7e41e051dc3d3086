"""The one clock: real waits on the loop's timers, and a manual clock that jumps."""

from __future__ import annotations

import asyncio
import math

import pytest

from warden.lifecycle import Clock, ComponentStopped, Fact, Lifecycle, ManualClock, Outcome


async def test_manual_clock_fires_what_is_due_in_order_and_nothing_else() -> None:
    clock = ManualClock()
    fired: list[str] = []
    clock.call_later(2, lambda: fired.append("b"))
    clock.call_later(1, lambda: fired.append("a"))
    late = clock.call_later(3, lambda: fired.append("c"))
    clock.jump(2.5)
    assert fired == ["a", "b"]
    late.cancel()
    clock.jump(10)
    assert fired == ["a", "b"]
    assert clock.pending == 0 and clock.next_deadline is None
    with pytest.raises(ValueError, match="cannot go back"):
        clock.jump(-1)


async def test_sleep_and_wait_until_on_a_manual_clock() -> None:
    clock = ManualClock()
    start = clock.now()
    sleeper = asyncio.ensure_future(clock.sleep_until(start + 5))
    clock.jump(4.9)  # before the sleeper even ran: its deadline is a time, not a delay
    assert not sleeper.done()
    clock.jump(0.1)  # its timer, armed at a time already past, fires on the next turn
    await asyncio.wait_for(sleeper, 5)

    never = asyncio.Event()
    waiting = asyncio.ensure_future(clock.wait_until(never.wait(), clock.now() + 30))
    clock.jump(30)
    assert await asyncio.wait_for(waiting, 5) is False

    soon = asyncio.Event()
    waiting = asyncio.ensure_future(clock.wait_until(soon.wait(), clock.now() + 30))
    soon.set()
    assert await asyncio.wait_for(waiting, 5) is True
    assert clock.pending == 0


async def test_autojump_moves_time_to_each_deadline_once_the_loop_is_idle() -> None:
    clock = ManualClock(autojump_threshold=0)
    start = clock.now()
    await asyncio.wait_for(clock.sleep(3600), 5)
    assert clock.now() == start + 3600  # to the deadline exactly, not past it

    never = asyncio.Event()
    assert await asyncio.wait_for(clock.wait_until(never.wait(), clock.now() + 30), 5) is False
    assert clock.now() == start + 3630

    # Work that is ready to run is never jumped over: the timer waits for the loop to idle.
    loop = asyncio.get_running_loop()
    woken: list[float] = []

    def busy(steps: int) -> None:
        if steps:
            loop.call_soon(busy, steps - 1)
        else:
            woken.append(clock.now())

    busy(100)
    await asyncio.wait_for(clock.sleep(10), 5)
    assert woken == [start + 3630]
    assert clock.now() == start + 3640
    assert clock.pending == 0


async def test_autojump_never_cuts_a_round_trip_on_this_loop() -> None:
    """A connection, a request and its answer within this loop are work to run: no jump."""
    clock = ManualClock(autojump_threshold=0)
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        for _ in range(20):
            async with clock.timeout(1):  # would be cut if the clock jumped the round trip
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"ping\n")
                assert await reader.readline() == b"ping\n"
                writer.close()
                await writer.wait_closed()
    assert clock.now() == 1000.0


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(await reader.readline())
    await writer.drain()
    writer.close()


async def test_a_clock_timeout_is_a_timeout_error_and_only_its_own() -> None:
    clock = ManualClock(autojump_threshold=0)
    never = asyncio.Event()
    with pytest.raises(TimeoutError):
        async with clock.timeout(5) as deadline:
            await never.wait()
    assert deadline.expired and clock.now() == 1005.0
    with pytest.raises(TimeoutError):
        await clock.wait_for(never.wait(), 5)
    assert await clock.wait_for(_value("done"), 5) == "done"
    assert await clock.wait_for(_value("no limit"), None) == "no limit"

    # A cancellation from outside stays a cancellation.
    started = asyncio.Event()

    async def body() -> None:
        started.set()
        await never.wait()

    inner = asyncio.ensure_future(ManualClock().wait_for(body(), 60))
    await started.wait()
    inner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await inner


async def _value(value: str) -> str:
    return value


async def test_without_autojump_no_real_timer_is_armed() -> None:
    clock = ManualClock()
    due = clock.at(clock.now() + 1)
    assert clock.pending == 1
    # The idle goal: a clock adds no timer of its own to the loop.
    assert not asyncio.get_running_loop()._scheduled  # type: ignore[attr-defined]
    clock.jump(1)
    await asyncio.wait_for(due, 5)


async def test_autojump_arms_a_real_timer_only_while_a_timer_is_armed() -> None:
    clock = ManualClock(autojump_threshold=60)  # real seconds: never reached in this test
    loop = asyncio.get_running_loop()
    timer = clock.call_later(5, lambda: None)
    assert len(loop._scheduled) == 1  # type: ignore[attr-defined]
    timer.cancel()
    assert clock.next_deadline is None


def test_a_bad_threshold_is_a_clear_error() -> None:
    for bad in (-1.0, math.nan):
        with pytest.raises(ValueError, match="autojump_threshold"):
            ManualClock(autojump_threshold=bad)


async def test_real_clock_waits_on_the_loop() -> None:
    clock = Clock()
    done = asyncio.Event()
    assert await clock.wait_until(done.wait(), clock.now() + 0.01) is False
    done.set()
    assert await clock.wait_until(done.wait(), clock.now() + 5) is True
    with pytest.raises(TimeoutError):
        async with clock.timeout(0.01):
            await asyncio.Event().wait()


async def test_the_drain_delay_and_a_stop_timeout_run_on_the_lifecycles_clock() -> None:
    """A drain of a minute and a stop that never ends, passed by jumping: readiness false for
    the whole drain, the first stop at its end, a hung one cut at its own timeout, and what it
    depends on stopped after that."""
    clock = ManualClock(autojump_threshold=0)
    lc = Lifecycle(drain_delay=60, shutdown_timeout=600, handle_signals=False, clock=clock)
    seen: list[tuple[str, float, bool]] = []

    async def hangs() -> None:
        seen.append(("worker", clock.now(), lc.ready))
        await asyncio.Event().wait()

    lc.add("db", stop=lambda: seen.append(("db", clock.now(), lc.ready)))
    lc.add("worker", stop=hangs, depends_on=["db"], stop_timeout=5)
    facts: list[Fact] = []
    lc.timeline.subscribe(lambda event: facts.append(event.fact))
    async with lc:
        lc.request_stop("test over")
        start = clock.now()
    assert seen == [("worker", start + 60, False), ("db", start + 65, False)]
    stopped = {f.component: f for f in facts if isinstance(f, ComponentStopped)}
    assert stopped["worker"].result is Outcome.TIMEOUT and stopped["worker"].took == 5
    assert clock.now() == start + 65
    assert lc.exit_code == 1
