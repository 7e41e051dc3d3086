"""The lifecycle reported to systemd: READY, RELOADING, STOPPING, STATUS, EXTEND_TIMEOUT.

* READY=1 once every component has started (not before: gunicorn's early READY is the bug
  this avoids), and again after each reload;
* RELOADING=1 with MONOTONIC_USEC when a reload begins;
* STOPPING=1 when the stop begins, with EXTEND_TIMEOUT_USEC up to warden's own deadline, so
  systemd's TimeoutStopSec does not cut a shutdown that warden itself bounds; renewed as each
  component stops, so a long stop keeps showing progress;
* STATUS= on every transition and component stop;
* for facts of the layers above (the supervisor's upgrades, the program's own RELOADING=1,
  STATUS= and EXTEND_TIMEOUT_USEC=): RELOADING=1 for a :class:`Reloading`, READY=1 for a
  :class:`Reloaded`, STATUS= for a :class:`StatusUpdate`, EXTEND_TIMEOUT_USEC= for a
  :class:`TimeoutExtended`. This observer is the only code that speaks upward;
* WATCHDOG=1 at half of $WATCHDOG_USEC from a task on the loop, so a blocked loop misses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from ..lifecycle import (
    ComponentStopped,
    Event,
    Outcome,
    Reloaded,
    ReloadFinished,
    Reloading,
    State,
    StateChanged,
    StatusUpdate,
    StopRequested,
    Timeline,
    TimeoutExtended,
)
from ..systemd import Notifier, ping_forever, watchdog_interval

_LOG = logging.getLogger("warden")


class _Service(Protocol):
    @property
    def timeline(self) -> Timeline: ...
    @property
    def shutdown_timeout(self) -> float: ...


def notify_systemd(lifecycle: _Service, notifier: Notifier | None = None) -> bool:
    """Report ``lifecycle`` to the service manager; ``False`` when there is none.

    Call before running the lifecycle. Without $NOTIFY_SOCKET (and no ``notifier``), nothing
    is sent and nothing runs.
    """
    notifier = notifier or Notifier.from_environment(unset=True)
    if notifier is None:
        return False
    reporter = _Reporter(lifecycle, notifier)
    lifecycle.timeline.subscribe(reporter)
    return True


class _Reporter:
    def __init__(self, lifecycle: _Service, notifier: Notifier) -> None:
        self._lifecycle = lifecycle
        self._notifier = notifier
        self._interval = watchdog_interval()
        self._pinger: asyncio.Task[None] | None = None
        self._stopping = False
        self._stop_requested = False

    def __call__(self, event: Event) -> None:
        try:
            self._report(event)
        except OSError as exc:  # the manager is gone: keep serving, say so once per event
            _LOG.warning("sd_notify to %s failed: %s", self._notifier.address, exc)

    def _report(self, event: Event) -> None:
        send = self._notifier.send
        fact = event.fact
        if isinstance(fact, StopRequested):
            self._stop_requested = True
        if isinstance(fact, Reloading | Reloaded) and self._stop_requested:
            return  # a reload or upgrade cut short by the stop: STOPPING=1 says it all
        if isinstance(fact, StateChanged):
            self._state_changed(fact.state)
        elif isinstance(fact, Reloading):
            self._notifier.reloading(status=fact.status)
        elif isinstance(fact, Reloaded):
            send(READY=1, STATUS=fact.status)
        elif isinstance(fact, TimeoutExtended):
            send(EXTEND_TIMEOUT_USEC=fact.usec)
        if isinstance(fact, ComponentStopped):
            send(
                STATUS=fact.status,
                EXTEND_TIMEOUT_USEC=_usec(self._lifecycle.shutdown_timeout + 1),
            )
        elif isinstance(fact, ReloadFinished):
            if fact.result is not Outcome.OK:
                with contextlib.suppress(ValueError):
                    send(STATUS=fact.status)
        elif isinstance(fact, StatusUpdate) and fact.status:
            with contextlib.suppress(ValueError):  # an embedded newline: not for STATUS=
                send(STATUS=fact.status)

    def _state_changed(self, state: State) -> None:
        send = self._notifier.send
        if state is State.STARTING and self._interval is not None:
            self._pinger = asyncio.get_running_loop().create_task(
                ping_forever(self._notifier, self._interval), name="warden:watchdog"
            )
        elif state is State.READY:
            send(READY=1, STATUS="ready")
        elif state is State.RELOADING:
            self._notifier.reloading(status="reloading")
        elif state in (State.DRAINING, State.STOPPING) and not self._stopping:
            # The drain runs inside warden's deadline: no later than that, we are gone.
            self._stopping = True
            send(
                STOPPING=1,
                STATUS=state.value,
                EXTEND_TIMEOUT_USEC=_usec(self._lifecycle.shutdown_timeout + 1),
            )
        elif state is State.STOPPED:
            send(STATUS="stopped")
            if self._pinger is not None:
                self._pinger.cancel()


def _usec(seconds: float) -> int:
    return int(seconds * 1_000_000)
