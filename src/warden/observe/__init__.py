"""Observers of the lifecycle's timeline: logs (stderr, journald), systemd, metrics and health.

The health server, the metrics and the journald handler load only when asked for: a PID 1
that uses none of them never imports them.
"""

from __future__ import annotations

from ._log import HumanFormatter as HumanFormatter
from ._log import JsonFormatter as JsonFormatter
from ._log import log_events as log_events
from ._systemd import notify_systemd as notify_systemd

__all__ = [
    "HumanFormatter",
    "JsonFormatter",
    "log_events",
    "notify_systemd",
]
