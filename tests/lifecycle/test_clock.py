"""The one clock: real waits on the loop's timers, and a manual clock that jumps."""

from __future__ import annotations

import asyncio

import pytest

from warden.lifecycle import Clock, ManualClock


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
    with pytest.raises(ValueError, match="cannot go back"):
        clock.jump(-1)


async def test_sleep_and_wait_until_on_a_manual_clock() -> None:
    clock = ManualClock()
    sleeper = asyncio.ensure_future(clock.sleep(5))
    await asyncio.sleep(0)  # let it arm its timer
    clock.jump(4.9)
    await asyncio.sleep(0)
    assert not sleeper.done()
    clock.jump(0.1)
    await asyncio.wait_for(sleeper, 5)

    never = asyncio.Event()
    waiting = asyncio.ensure_future(clock.wait_until(never.wait(), clock.now() + 30))
    await asyncio.sleep(0)
    clock.jump(30)
    assert await asyncio.wait_for(waiting, 5) is False

    soon = asyncio.Event()
    waiting = asyncio.ensure_future(clock.wait_until(soon.wait(), clock.now() + 30))
    await asyncio.sleep(0)
    soon.set()
    assert await asyncio.wait_for(waiting, 5) is True


async def test_real_clock_waits_on_the_loop() -> None:
    clock = Clock()
    done = asyncio.Event()
    assert await clock.wait_until(done.wait(), clock.now() + 0.01) is False
    done.set()
    assert await clock.wait_until(done.wait(), clock.now() + 5) is True
