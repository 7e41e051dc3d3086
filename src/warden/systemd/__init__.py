"""systemd's service-manager protocols, as codecs: sd_notify, LISTEN_FDS, the watchdog.

Imports nothing of warden's but its errors: the lifecycle's observer and the supervisor both
build on these. ``LISTEN_FDS_START`` and ``monotonic_usec`` are re-exported for warden's own
packages (the supervisor, the gunicorn hooks), not a promise.
"""

from __future__ import annotations

from ._listen import LISTEN_FDS_START as LISTEN_FDS_START
from ._listen import listen_fds as listen_fds
from ._notify import Notifier as Notifier
from ._notify import monotonic_usec as monotonic_usec
from ._watchdog import ping_forever as ping_forever
from ._watchdog import watchdog_interval as watchdog_interval

__all__ = [
    "Notifier",
    "listen_fds",
    "ping_forever",
    "watchdog_interval",
]
