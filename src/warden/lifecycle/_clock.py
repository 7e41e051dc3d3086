"""One clock that both reads time and waits on it.

Every deadline warden keeps (the stop ladder's, a restart's backoff, an upgrade's drain, the
child watchdog's interval, the memory sentinel's polling) is read from and waited on the same
object, so a test can give them a :class:`ManualClock` and :meth:`~ManualClock.jump` over a
timeout instead of sleeping through it (trio's ``MockClock`` is the model): every timer that
is due fires, and nothing else does.

The real clock is ``time.monotonic()`` (never wall time, which jumps), waited on through the
running event loop's own timers (``loop.call_at``), so it costs nothing while nothing is due.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, cast


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock:
    """``time.monotonic()``, with waits on the running loop's timers."""

    def now(self) -> float:
        return time.monotonic()

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer:
        """Call ``callback`` on the loop at ``when`` (this clock's time)."""
        loop = asyncio.get_running_loop()
        return loop.call_at(loop.time() + max(0.0, when - self.now()), callback)

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        return self.call_at(self.now() + delay, callback)

    def at(self, when: float) -> asyncio.Future[None]:
        """A future that completes at ``when``; cancelling it disarms the timer. The timer is
        armed before this returns, so a jump right after it is seen."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def due() -> None:
            if not done.done():
                done.set_result(None)

        timer = self.call_at(when, due)
        done.add_done_callback(lambda _: timer.cancel())
        return done

    async def sleep_until(self, when: float) -> None:
        await self.at(when)

    async def sleep(self, delay: float) -> None:
        await self.at(self.now() + delay)

    async def wait_until(self, awaitable: Awaitable[object], when: float) -> bool:
        """Wait for ``awaitable`` until ``when``; True if it finished, False at the deadline.

        The awaitable is cancelled at the deadline (as ``asyncio.wait_for`` would).
        """
        task: asyncio.Future[object] = asyncio.ensure_future(awaitable)
        if task.done():
            return True
        deadline = cast("asyncio.Future[object]", self.at(when))  # armed now, not on a later turn
        try:
            await asyncio.wait({task, deadline}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            deadline.cancel()
            if not task.done():
                task.cancel()
        return task.done() and not task.cancelled()


class ManualClock(Clock):
    """A clock that moves only when told to: :meth:`jump` fires what falls due, in order.

    Example::

        clock = ManualClock()
        watchdog = ChildWatchdog(10, on_expire, clock=clock)
        watchdog.start()
        clock.jump(9.9)   # nothing fires
        clock.jump(0.2)   # on_expire runs now
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._due: list[tuple[float, int, _ManualTimer]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer:
        timer = _ManualTimer(callback)
        heapq.heappush(self._due, (when, next(self._order), timer))
        return timer

    def jump(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and run every timer that is due by then."""
        if seconds < 0:
            raise ValueError(f"a monotonic clock cannot go back ({seconds:g}s)")
        target = self._now + seconds
        while self._due and self._due[0][0] <= target:
            when, _, timer = heapq.heappop(self._due)
            self._now = max(self._now, when)
            timer.fire()
        self._now = target

    @property
    def pending(self) -> int:
        """How many timers are armed and not cancelled."""
        return sum(1 for _, _, timer in self._due if not timer.cancelled)


class _ManualTimer:
    def __init__(self, callback: Callable[[], object]) -> None:
        self._callback: Callable[[], object] | None = callback

    @property
    def cancelled(self) -> bool:
        return self._callback is None

    def cancel(self) -> None:
        self._callback = None

    def fire(self) -> None:
        callback, self._callback = self._callback, None
        if callback is not None:
            callback()
