"""Observers of the lifecycle's timeline: logs (stderr, journald), systemd, metrics and health.

The health server, the metrics and the journald handler load only when asked for (PEP 562):
a PID 1 that uses none of them never imports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy
from . import _stream
from ._log import HumanFormatter as HumanFormatter
from ._log import JsonFormatter as JsonFormatter
from ._log import log_events as log_events
from ._systemd import notify_systemd as notify_systemd

if TYPE_CHECKING:
    from ._asgi import health_asgi as health_asgi
    from ._server import serve_health as serve_health
    from ._wsgi import health_wsgi as health_wsgi

_LAZY = {
    "serve_health": "warden.observe._server",
    "health_asgi": "warden.observe._asgi",
    "health_wsgi": "warden.observe._wsgi",
}

__getattr__ = lazy(__name__, _LAZY, globals())

#: Internal, for the CLI: a line to a stderr that may be stalled, never blocking on it.
_write_bounded = _stream.write_bounded


def _journal_stream_matches(fd: int) -> bool:
    """Internal, for the CLI: whether ``fd`` is the journal's stream (``JOURNAL_STREAM``);
    the journald module loads only when asked."""
    from ._journal import journal_stream_matches

    return journal_stream_matches(fd)


__all__ = [
    "HumanFormatter",
    "JsonFormatter",
    "health_asgi",
    "health_wsgi",
    "log_events",
    "notify_systemd",
    "serve_health",
]
