"""Timeline events as log records: one record per lifecycle step.

``log_events(lifecycle)`` subscribes to the timeline and emits each event on the ``warden``
logger, carrying the event in the record (``record.warden_event``). Where the records go is
the application's choice, as with any library; ``log_events`` only adds a handler when the
logger has none, choosing journald's native protocol when stderr is the journal's stream
(``$JOURNAL_STREAM``), human-readable lines on a TTY and JSON lines otherwise.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import IO, Protocol

from warden.lifecycle import Event, LeakFound

from . import _stream

_LOG = logging.getLogger("warden")


class _HasTimeline(Protocol):
    @property
    def timeline(self) -> _Subscribable: ...


class _Subscribable(Protocol):
    def subscribe(self, observer: _Observer) -> object: ...


class _Observer(Protocol):
    def __call__(self, event: Event, /) -> None: ...


def log_events(lifecycle: _HasTimeline, *, stream: IO[str] | None = None) -> None:
    """Log every event of ``lifecycle``'s timeline on the ``warden`` logger."""
    if not _LOG.handlers:
        out = sys.stderr if stream is None else stream
        handler: logging.Handler
        if stream is None and _to_journal():
            from . import _journal

            handler = _journal.JournalHandler(_journal.JOURNAL_SOCKET)
        elif out is None:  # no stderr at all (`2>&-`): nowhere to write, nothing to fail
            handler = logging.NullHandler()
        else:
            # Our own stderr never blocks the caller (a PID 1 that stops on a stalled pipe
            # stops reaping); a stream the caller gave is written as the caller made it.
            handler = _stream.stderr_handler(out) if stream is None else logging.StreamHandler(out)
            handler.setFormatter(HumanFormatter() if out.isatty() else JsonFormatter())
        _LOG.addHandler(handler)
        _LOG.setLevel(logging.INFO)
        _LOG.propagate = False
    lifecycle.timeline.subscribe(_emit)


def _to_journal() -> bool:
    """stderr is the journal's stream ($JOURNAL_STREAM matches it) and journald listens."""
    if "JOURNAL_STREAM" not in os.environ:
        return False  # the common case, decided without loading the journal's code
    from . import _journal

    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return _journal.journal_stream_matches(fd) and Path(_journal.JOURNAL_SOCKET).exists()


_LEVELS = {"error": logging.ERROR, "warning": logging.WARNING}


def _emit(event: Event) -> None:
    level = _LEVELS.get(event.fact.severity, logging.INFO)
    _LOG.log(level, "%s", describe(event), extra={"warden_event": event})


def describe(event: Event) -> str:
    """One human line for an event: ``stop http ok in 41.2 ms``."""
    parts = [family(event)]
    if event.name is not None:
        parts.append(event.name)
    if event.outcome is not None:
        parts.append(event.outcome)
    if event.duration is not None:
        parts.append(f"in {event.duration * 1000:.1f} ms")
    text = " ".join(parts)
    if event.detail and not isinstance(event.fact, LeakFound):
        text += f": {event.detail}"
    return text


def family(event: Event) -> str:
    """The kind's first part: ``child`` for ``child.exited``, as the log groups them."""
    return event.kind.partition(".")[0]


class HumanFormatter(logging.Formatter):
    """``12:00:01.123 warden ready   stop http ok in 41.2 ms``; a leak's stack follows."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        event: Event | None = getattr(record, "warden_event", None)
        state = f"{event.state.value:<9} " if event else ""
        line = f"{stamp}.{int(record.msecs):03d} warden {state}{record.getMessage()}"
        if event is not None and isinstance(event.fact, LeakFound) and event.detail:
            line += "\n" + event.detail.rstrip("\n")
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with every field of the event."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": record.created,
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        event: Event | None = getattr(record, "warden_event", None)
        if event is not None:
            data.update(
                seq=event.seq,
                monotonic=event.at,
                event=family(event),
                state=event.state.value,
                name=event.name,
                outcome=event.outcome,
                duration=event.duration,
                detail=event.detail,
                kind=event.kind,
                data=event.fact.data(),
            )
        return json.dumps({k: v for k, v in data.items() if v is not None})
