"""The service watchdog: ping the manager while, and only while, the event loop is healthy.

Reference: ``man sd_watchdog_enabled``. $WATCHDOG_USEC is the manager's timeout;
$WATCHDOG_PID, when set, must be our pid. Pinging at half the timeout is systemd's own advice.
The pinger is a task on the loop it guards: a blocked loop misses its pings, which is the
point: the manager then restarts a service that can no longer serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from .._exceptions import ConfigurationError
from ._notify import Notifier


def watchdog_interval() -> float | None:
    """Seconds between pings (half of $WATCHDOG_USEC), or ``None`` if not for us."""
    usec = os.environ.get("WATCHDOG_USEC")
    if usec is None:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if pid is not None and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    if not usec.isdigit() or int(usec) == 0:
        raise ConfigurationError(f"WATCHDOG_USEC={usec!r} is not a positive number of µs")
    return int(usec) / 2_000_000


async def ping_forever(notifier: Notifier, interval: float) -> None:
    """Send WATCHDOG=1 now and every ``interval`` seconds until cancelled."""
    while True:
        with contextlib.suppress(OSError):  # the manager restarting: next ping may land
            notifier.watchdog()
        await asyncio.sleep(interval)
