"""The child watchdog's timer on a real event loop."""

from __future__ import annotations

import asyncio

from warden.supervisor._watchdog import ChildWatchdog


async def test_expires_once_pings_stop_and_not_before() -> None:
    expired = asyncio.Event()
    watchdog = ChildWatchdog(1.0, lambda triggered: expired.set())
    watchdog.start()
    for _ in range(30):  # 1.5 s of pings every 50 ms: well inside the 1 s interval
        watchdog.ping()
        await asyncio.sleep(0.05)
        assert not expired.is_set()
    await asyncio.wait_for(expired.wait(), 5)
    assert watchdog.expired


async def test_trigger_expires_at_once_and_only_once() -> None:
    calls: list[str] = []
    watchdog = ChildWatchdog(60.0, lambda triggered: calls.append(f"expired triggered={triggered}"))
    watchdog.start()
    watchdog.trigger()
    watchdog.trigger()
    assert calls == ["expired triggered=True"]


async def test_stop_disarms() -> None:
    calls: list[str] = []
    watchdog = ChildWatchdog(0.05, lambda triggered: calls.append(f"expired triggered={triggered}"))
    watchdog.start()
    watchdog.stop()
    await asyncio.sleep(0.2)  # longer than the interval: nothing may fire
    assert calls == []


async def test_trigger_before_start_expires_and_start_does_not_rearm() -> None:
    calls: list[str] = []
    watchdog = ChildWatchdog(0.05, lambda triggered: calls.append(f"expired triggered={triggered}"))
    watchdog.trigger()
    watchdog.start()
    await asyncio.sleep(0.2)  # longer than the interval: no second expiry may fire
    assert calls == ["expired triggered=True"]
