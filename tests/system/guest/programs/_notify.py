"""sd_notify for the test programs, in a few lines of the stdlib (they run in the guest and
in containers, and speak the protocol as any program would, not through warden)."""

from __future__ import annotations

import os
import socket


def notify(message: str) -> bool:
    """Send ``message`` to ``$NOTIFY_SOCKET``; ``False`` when there is none."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    target = "\0" + address[1:] if address.startswith("@") else address
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(target)
        sock.send(message.encode())
    return True
