"""Timeline events as log records: one record per lifecycle step.

``log_events(lifecycle)`` subscribes to the timeline and emits each event on the ``warden``
logger, carrying the event in the record (``record.warden_event``). Where the records go is
the application's choice, as with any library; ``log_events`` only adds a handler when the
logger has none, choosing journald's native protocol when stderr is the journal's stream
(``$JOURNAL_STREAM``), human-readable lines on a TTY and JSON lines otherwise.

Each fact is logged at the level its kind declares (``Fact.log_level``): internal steps at
DEBUG, what a person needs at INFO, what calls for a look at WARNING or ERROR. A terminal shows
INFO and up, so a person watching sees a handful of lines for a whole life; the JSON lines and
the journal keep every fact, DEBUG included.
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
    def subscribe(self, observer: _Observer, *, reports: bool = ...) -> object: ...


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
            if out.isatty():
                handler.setFormatter(HumanFormatter())
                handler.setLevel(logging.INFO)  # for a person: internal steps stay out
            else:
                handler.setFormatter(JsonFormatter())
        # Every fact reaches the handler, internal steps (DEBUG) included: the JSON log and
        # the journal are complete. Other DEBUG records of warden's modules (a repeated
        # complaint, kept quiet on purpose) stay out.
        handler.addFilter(_facts_and_info)
        _LOG.addHandler(handler)
        _LOG.setLevel(logging.DEBUG)
        _LOG.propagate = False
    lifecycle.timeline.subscribe(_emit, reports=True)


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


def _facts_and_info(record: logging.LogRecord) -> bool:
    """Every fact, whatever its level; any other record from INFO up."""
    return record.levelno >= logging.INFO or hasattr(record, "warden_event")


def _emit(event: Event) -> None:
    _LOG.log(event.fact.log_level, "%s", describe(event), extra={"warden_event": event})


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
    """``12:00:01.123 warden ready     stop http ok in 41.2 ms``; a leak's stack follows.

    A warning or an error says so in words (``warning: ...``), readable without colour.
    """

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        event: Event | None = getattr(record, "warden_event", None)
        state = f"{event.state.value:<9} " if event else ""
        loud = f"{record.levelname.lower()}: " if record.levelno >= logging.WARNING else ""
        line = f"{stamp}.{int(record.msecs):03d} warden {state}{loud}{record.getMessage()}"
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
