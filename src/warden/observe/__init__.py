"""Observers of the lifecycle's timeline: logs (stderr, journald), systemd, metrics and health.

The health server, the metrics and the journald handler load only when asked for (PEP 562):
a PID 1 that uses none of them never imports them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._log import HumanFormatter as HumanFormatter
from ._log import JsonFormatter as JsonFormatter
from ._log import log_events as log_events
from ._systemd import notify_systemd as notify_systemd

if TYPE_CHECKING:
    from ._asgi import health_asgi as health_asgi
    from ._server import serve_health as serve_health
    from ._wsgi import health_wsgi as health_wsgi

_LAZY = {
    "health_asgi": "warden.observe._asgi",
    "serve_health": "warden.observe._server",
    "health_wsgi": "warden.observe._wsgi",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'warden.observe' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "HumanFormatter",
    "JsonFormatter",
    "health_asgi",
    "health_wsgi",
    "log_events",
    "notify_systemd",
    "serve_health",
]
