"""The child's watchdog: a program that stops sending WATCHDOG=1 is hung, and gets stopped.

``--watchdog 10s`` gives the program ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``, its own pid),
as systemd's WatchdogSec= does; the program pings WATCHDOG=1 (at half the interval, as
libsystemd advises) and WATCHDOG=trigger to report itself broken at once. A missed deadline
is acted on by the supervisor: SIGABRT (a chance to dump stacks or a core), then SIGKILL, exit
reason ``watchdog timeout``, then the restart policy.

One timer, moved to ``last ping + interval`` at each ping (a ping wakes warden anyway: it is
a datagram), so it fires only when the program missed its deadline: no wake-up of warden's
own while the program pings in time.
"""

from __future__ import annotations

from collections.abc import Callable

from ...lifecycle import Clock, Timer


class ChildWatchdog:
    """Calls ``on_expire(triggered)`` once: when ``interval`` seconds pass without a
    :meth:`ping` (``triggered=False``), or at :meth:`trigger` (``True``)."""

    def __init__(
        self,
        interval: float,
        on_expire: Callable[[bool], None],
        *,
        clock: Clock | None = None,
    ) -> None:
        self.interval = interval
        self._on_expire = on_expire
        self._clock = clock or Clock()
        self._last = self._clock.now()
        self._timer: Timer | None = None
        self.expired = False
        self._stopped = False

    def start(self) -> None:
        """Start counting from now (call on the loop, once the program is ready)."""
        if self.expired or self._stopped:
            return
        self._last = self._clock.now()
        self._arm(self._last + self.interval)

    def ping(self) -> None:
        self._last = self._clock.now()
        if self._timer is not None:  # started, not stopped: the deadline moves with the ping
            self._timer.cancel()
            self._arm(self._last + self.interval)

    def trigger(self) -> None:
        """WATCHDOG=trigger: the program says it is broken; act now (unless stopped)."""
        if not self._stopped:
            self._expire(triggered=True)

    def stop(self) -> None:
        """For good: a program that ended, or an old release draining, is not watched."""
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, at: float) -> None:
        self._timer = self._clock.call_at(at, self._check)

    def _check(self) -> None:
        self._timer = None
        due = self._last + self.interval
        if self._clock.now() >= due:
            self._expire(triggered=False)
        else:
            self._arm(due)

    def _expire(self, *, triggered: bool) -> None:
        if self.expired:
            return
        self.expired = True
        self.stop()
        self._on_expire(triggered)
