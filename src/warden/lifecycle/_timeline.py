"""The timeline: every fact of a service's life, as an ordered list of events.

The lifecycle publishes (and so does every part built on it, through
:meth:`~warden.lifecycle.Lifecycle.publish`); logs, metrics, health and systemd reporting
observe. What can be published is declared in ``_events.py``. Observers are
called synchronously on the event loop's thread, each isolated: one that raises is reported
and the others still run.
"""

from __future__ import annotations

import collections
import itertools
import logging
import time
from collections.abc import Callable, Iterator

from ._events import Event, Fact
from ._states import State

_log = logging.getLogger("warden")


Observer = Callable[[Event], None]


class Timeline:
    """An append-only, bounded record of events with synchronous observers."""

    def __init__(self, maxlen: int = 2000) -> None:
        self._events: collections.deque[Event] = collections.deque(maxlen=maxlen)
        self._observers: list[Observer] = []
        self._reporters: list[Observer] = []
        self._seq = itertools.count(1)

    def subscribe(self, observer: Observer, *, reports: bool = False) -> Callable[[], None]:
        """Call ``observer`` with every later event; returns a function that unsubscribes.

        ``reports``: the observer tells a person every event (a log does): a run that fails
        is then not said a second time on stderr (see :attr:`reported`).
        """
        self._observers.append(observer)
        if reports:
            self._reporters.append(observer)

        def unsubscribe() -> None:
            if observer in self._observers:
                self._observers.remove(observer)
            if observer in self._reporters:
                self._reporters.remove(observer)

        return unsubscribe

    @property
    def reported(self) -> bool:
        """Whether an observer subscribed with ``reports=True`` (a log) tells a person."""
        return bool(self._reporters)

    def publish(self, fact: Fact, state: State) -> Event:
        """Record ``fact`` as the next event and call every observer with it."""
        if not isinstance(fact, Fact) or not fact.kind:
            raise TypeError(f"publish() takes a fact of a declared kind, not {fact!r}")
        event = Event(next(self._seq), time.monotonic(), state, fact)
        self._events.append(event)
        for observer in list(self._observers):
            try:
                observer(event)
            except Exception:
                _log.exception("timeline observer %r failed on event %s", observer, fact.kind)
        return event

    def __iter__(self) -> Iterator[Event]:
        return iter(list(self._events))

    def __len__(self) -> int:
        return len(self._events)
