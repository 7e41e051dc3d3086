"""How long a server's stop may take: the drain it is told of, and the grace it can afford.

A server component learns two things from the lifecycle's timeline (it imports none of the
lifecycle's internals): when the drain began (``StateChanged(DRAINING)``: readiness is false,
the drain delay runs, the server should tell its clients to go while still answering them),
and when the stop was requested (``StopRequested``: the shutdown deadline counts from there).
Its grace is then the least of what the user asked, its own stop timeout and what is left of
the shutdown deadline, less a reserve for what comes after (the report, the leak scan, the
exit), so that a handler that never returns costs the deadline nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from warden.lifecycle import Event, Lifecycle, State, StateChanged, StopRequested

RESERVE = 0.1
"""Seconds kept back from the deadline for what follows a server's grace."""


class StopBudget:
    """Watches ``lifecycle``'s timeline for the drain and the stop; computes the grace."""

    def __init__(self, lifecycle: Lifecycle, on_drain: Callable[[], None]) -> None:
        self._lifecycle = lifecycle
        self._on_drain = on_drain
        self._stop_requested: float | None = None
        self._drained = False
        lifecycle.timeline.subscribe(self._observe)

    def _observe(self, event: Event) -> None:
        fact = event.fact
        if isinstance(fact, StopRequested) and self._stop_requested is None:
            self._stop_requested = event.at
        elif isinstance(fact, StateChanged) and fact.state is State.DRAINING:
            self.drain()

    def drain(self) -> None:
        """Begin the drain (once): called at DRAINING, or at the stop if none came first."""
        if not self._drained:
            self._drained = True
            self._on_drain()

    def left(self, since: float, stop_timeout: float | None) -> float:
        """Seconds until the earlier of the component's stop timeout (from ``since``, when
        its stop began) and the shutdown deadline; never negative."""
        now = time.monotonic()
        timeout = stop_timeout if stop_timeout is not None else self._lifecycle.stop_timeout
        began = self._stop_requested if self._stop_requested is not None else since
        limits = [began + self._lifecycle.shutdown_timeout - now]
        if timeout is not None:
            limits.append(since + timeout - now)
        return max(0.0, min(limits))

    def grace(self, wanted: float | None, since: float, stop_timeout: float | None) -> float:
        """Seconds the server's stop may let work run, from now: what was ``wanted``, within
        :meth:`left` less :data:`RESERVE`."""
        limit = max(0.0, self.left(since, stop_timeout) - RESERVE)
        return limit if wanted is None else max(0.0, min(wanted, limit))
