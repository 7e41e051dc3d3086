"""The child watchdog's timer, on a clock the test moves: time jumps, nothing sleeps."""

from __future__ import annotations

from warden.lifecycle import ManualClock
from warden.supervisor.release._watchdog import ChildWatchdog


async def test_expires_once_pings_stop_and_not_before() -> None:
    clock = ManualClock()
    calls: list[bool] = []
    watchdog = ChildWatchdog(1.0, calls.append, clock=clock)
    watchdog.start()
    for _ in range(30):  # 1.5 s of pings every 50 ms: well inside the 1 s interval
        watchdog.ping()
        clock.jump(0.05)
        assert calls == []
    clock.jump(0.999)  # 0.95 s after the last ping plus 0.999 s: past the interval
    assert calls == [False]
    assert watchdog.expired
    clock.jump(10)
    assert calls == [False]  # once
    assert clock.pending == 0


async def test_trigger_expires_at_once_and_only_once() -> None:
    calls: list[str] = []
    watchdog = ChildWatchdog(
        60.0, lambda triggered: calls.append(f"expired triggered={triggered}"), clock=ManualClock()
    )
    watchdog.start()
    watchdog.trigger()
    watchdog.trigger()
    assert calls == ["expired triggered=True"]


async def test_stop_disarms() -> None:
    clock = ManualClock()
    calls: list[str] = []
    watchdog = ChildWatchdog(
        0.05, lambda triggered: calls.append(f"expired triggered={triggered}"), clock=clock
    )
    watchdog.start()
    watchdog.stop()
    clock.jump(0.2)  # longer than the interval: nothing may fire
    assert calls == []
    assert clock.pending == 0


async def test_trigger_before_start_expires_and_start_does_not_rearm() -> None:
    clock = ManualClock()
    calls: list[str] = []
    watchdog = ChildWatchdog(
        0.05, lambda triggered: calls.append(f"expired triggered={triggered}"), clock=clock
    )
    watchdog.trigger()
    watchdog.start()
    clock.jump(0.2)  # longer than the interval: no second expiry may fire
    assert calls == ["expired triggered=True"]
