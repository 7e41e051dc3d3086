"""One clock that both reads time and waits on it.

Every deadline warden keeps on its event loop is read from and waited on the same object: the
lifecycle's drain delay and stop timeouts, the supervisor's stop ladder, restart backoff,
readiness gate (and the timeout of each of its probes), upgrade check, confirmation window
and drain, the child watchdog, the control socket's request timeout, and the memory
sentinel's polling. So a test can give them a :class:`ManualClock` and :meth:`~ManualClock.jump`
over a timeout instead of sleeping through it (trio's ``MockClock`` is the model): every
timer that is due fires, and nothing else does. A wait on a socket or a child process is
bounded by a deadline on this clock (:meth:`Clock.timeout`, :meth:`Clock.wait_until`).

Not on it, on purpose: the deadline guard (a thread blocked in ``poll()``, so that a blocked
loop cannot hold the process past its deadline), the systemd watchdog's pings (the manager
counts real time), the health server's ``/livez`` round trip (it measures the lifecycle's
loop from its own thread), and the server integrations (timed by the server they adapt).

The real clock is ``time.monotonic()`` (never wall time, which jumps), waited on through the
running event loop's own timers (``loop.call_at``), so it costs nothing while nothing is due:
it adds no timer of its own, and an idle service wakes up zero times.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Protocol, TypeVar, cast

_T = TypeVar("_T")


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

    def timeout_at(self, when: float) -> Deadline:
        """``asyncio.timeout_at`` on this clock: ``async with clock.timeout_at(t):`` cancels
        its body at ``t`` and raises :class:`TimeoutError` in its place."""
        return Deadline(self, when)

    def timeout(self, delay: float) -> Deadline:
        """``asyncio.timeout`` on this clock (``delay`` seconds from now)."""
        return Deadline(self, self.now() + delay)

    async def wait_for(self, awaitable: Awaitable[_T], timeout: float | None) -> _T:
        """``asyncio.wait_for`` on this clock: the result of ``awaitable``, or
        :class:`TimeoutError` once ``timeout`` seconds passed (``None``: no limit)."""
        if timeout is None:
            return await awaitable
        async with self.timeout(timeout):
            return await awaitable


class Deadline:
    """The body of an ``async with`` cancelled at a time on a clock (see
    :meth:`Clock.timeout_at`); as ``asyncio.Timeout``, from which it takes its rules: the
    cancellation it causes becomes a :class:`TimeoutError`, any other goes on."""

    def __init__(self, clock: Clock, when: float) -> None:
        self.when = when
        self._clock = clock
        self._task: asyncio.Task[object] | None = None
        self._timer: Timer | None = None
        self._cancelling = 0
        self._expired = False
        self._exited = False

    @property
    def expired(self) -> bool:
        """Whether the deadline passed inside the body (it was cancelled)."""
        return self._expired

    async def __aenter__(self) -> Deadline:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a clock's timeout is used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._timer = self._clock.call_at(self.when, self._expire)
        return self

    def _expire(self) -> None:
        if not self._exited and self._task is not None:
            self._expired = True
            self._task.cancel()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exited = True
        if self._timer is not None:
            self._timer.cancel()
        # Our cancel, not someone else's: uncancel() says whether another one is pending.
        if (
            self._expired
            and self._task is not None
            and self._task.uncancel() <= self._cancelling
            and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError from exc


class ManualClock(Clock):
    """A clock that moves only when told to: :meth:`jump` fires what falls due, in order.

    A timer armed at a time already past fires on the loop's next turn, as the loop's own
    would. With ``autojump_threshold``, the clock also moves by itself, as trio's
    ``MockClock(autojump_threshold=...)`` does: once the event loop has had nothing to run for
    that many real seconds while a timer is armed, time jumps to the next deadline. So a test
    of code that waits on the clock needs no jumps of its own, nor turns of the loop to let a
    timer arm. A wait on a real process or a socket looks the same as a wait on the clock
    (nothing to run), and so does a wait on a thread: make the threshold longer than those
    take, or let the real process get where it must be before the code under test arms its
    timer.

    The clock adds no timer of its own while nothing is armed on it.

    Example::

        clock = ManualClock()
        watchdog = ChildWatchdog(10, on_expire, clock=clock)
        watchdog.start()
        clock.jump(9.9)   # nothing fires
        clock.jump(0.2)   # on_expire runs now

        clock = ManualClock(autojump_threshold=0)
        await clock.sleep(3600)   # returns at once; clock.now() is an hour later
    """

    def __init__(self, start: float = 1000.0, *, autojump_threshold: float = math.inf) -> None:
        if math.isnan(autojump_threshold) or autojump_threshold < 0:
            raise ValueError(
                f"autojump_threshold={autojump_threshold!r} is not a number of seconds >= 0"
            )
        self._now = start
        self._due: list[tuple[float, int, _ManualTimer]] = []
        self._order = itertools.count()
        self.autojump_threshold = autojump_threshold
        #: The real timer that looks whether the loop is idle (only while a timer is armed).
        self._watch: asyncio.Handle | None = None
        self._watching: asyncio.AbstractEventLoop | None = None

    def now(self) -> float:
        return self._now

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer:
        timer = _ManualTimer(callback)
        heapq.heappush(self._due, (when, next(self._order), timer))
        loop = _running_loop()
        if loop is not None:
            if when <= self._now:
                loop.call_soon(self.jump, 0.0)
            self._watch_idle(loop)
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

    @property
    def next_deadline(self) -> float | None:
        """When the next armed timer is due, if one is."""
        while self._due and self._due[0][2].cancelled:
            heapq.heappop(self._due)
        return self._due[0][0] if self._due else None

    # -- autojump: trio's MockClock on asyncio ------------------------------------------

    def _watch_idle(self, loop: asyncio.AbstractEventLoop) -> None:
        if math.isinf(self.autojump_threshold):
            return
        if self._watch is not None:
            if self._watching is loop:
                return
            self._watch.cancel()  # armed on a loop that is gone (the clock outlived a test's)
        self._watching = loop
        if self.autojump_threshold == 0:
            self._watch = loop.call_soon(self._look, loop)
        else:
            self._watch = loop.call_later(self.autojump_threshold, self._look, loop)

    def _look(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop ran this: if nothing else is ready, let it poll its selector once more
        (a socket that is readable is then queued) and look again before jumping."""
        self._watch = None
        if self.next_deadline is None:
            return
        if _busy(loop):
            self._watch_idle(loop)
            return
        self._watch = loop.call_soon(self._jump_if_idle, loop)

    def _jump_if_idle(self, loop: asyncio.AbstractEventLoop) -> None:
        self._watch = None
        when = self.next_deadline
        if when is None:
            return
        if not _busy(loop):
            self.jump(max(0.0, when - self._now))
        if self.next_deadline is not None:
            self._watch_idle(loop)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # a test arming timers outside a loop: it jumps by hand
        return None


def _busy(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop`` has callbacks ready to run besides the one asking.

    asyncio has no public way to ask: this reads the ready queue of CPython's own loops
    (``BaseEventLoop._ready``); a loop without one is taken to be idle whenever asked.
    """
    return bool(getattr(loop, "_ready", ()))


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
