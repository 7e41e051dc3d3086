"""The timeline: every fact of a service's life, as an ordered list of events.

The lifecycle publishes; logs, metrics, health and systemd reporting observe. Observers are
called synchronously on the event loop's thread, each isolated: one that raises is reported
and the others still run.
"""

from __future__ import annotations

import collections
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ._states import State

_log = logging.getLogger("warden")


@dataclass(frozen=True, slots=True)
class Event:
    """One fact on the timeline.

    Attributes:
        seq: position on the timeline, from 1.
        at: ``time.monotonic()`` when it happened (system-wide on Linux, so comparable with
            another process's monotonic clock).
        kind: ``state``, ``signal``, ``start``, ``stop``, ``reload``, ``reopen_logs``,
            ``stop_requested``, ``main`` or ``leak``.
        state: the lifecycle's state after the event.
        name: what the event is about: a component, a signal name, a leaked object.
        outcome: ``ok``, ``failed``, ``timeout``, ``cancelled`` or ``skipped`` where it applies.
        duration: seconds the step took, where it applies.
        detail: free text: an error, a reason, a stack.
    """

    seq: int
    at: float
    kind: str
    state: State
    name: str | None = None
    outcome: str | None = None
    duration: float | None = None
    detail: str | None = None


Observer = Callable[[Event], None]


class Timeline:
    """An append-only, bounded record of events with synchronous observers."""

    def __init__(self, maxlen: int = 2000) -> None:
        self._events: collections.deque[Event] = collections.deque(maxlen=maxlen)
        self._observers: list[Observer] = []
        self._seq = itertools.count(1)

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        """Call ``observer`` with every later event; returns a function that unsubscribes."""
        self._observers.append(observer)

        def unsubscribe() -> None:
            if observer in self._observers:
                self._observers.remove(observer)

        return unsubscribe

    def publish(
        self,
        kind: str,
        state: State,
        *,
        name: str | None = None,
        outcome: str | None = None,
        duration: float | None = None,
        detail: str | None = None,
    ) -> Event:
        event = Event(
            next(self._seq), time.monotonic(), kind, state, name, outcome, duration, detail
        )
        self._events.append(event)
        for observer in list(self._observers):
            try:
                observer(event)
            except Exception:
                _log.exception("timeline observer %r failed on event %s", observer, kind)
        return event

    def __iter__(self) -> Iterator[Event]:
        return iter(list(self._events))

    def __len__(self) -> int:
        return len(self._events)
