"""Socket activation, client side: the sockets a manager passed in LISTEN_FDS.

Reference: ``man sd_listen_fds``. Passed descriptors start at 3 (``SD_LISTEN_FDS_START``);
``LISTEN_PID`` must be our pid (the variables are inherited by grandchildren, which must not
take the sockets); ``LISTEN_FDNAMES`` names them, colon-separated.
"""

from __future__ import annotations

import os
import socket

from .._exceptions import ConfigurationError

LISTEN_FDS_START = 3
_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


def listen_fds(*, unset_environment: bool = True) -> list[tuple[str, socket.socket]]:
    """Take the sockets passed by the manager, as ``(name, socket)`` in fd order.

    Returns ``[]`` when nothing was passed to this process. Each fd is set close-on-exec (a
    child must not inherit it by accident), and the variables are removed from the
    environment unless ``unset_environment`` is false. An unnamed socket is called
    ``"unknown"``, as systemd does.
    """
    try:
        pid = os.environ.get("LISTEN_PID")
        count = os.environ.get("LISTEN_FDS")
        names = os.environ.get("LISTEN_FDNAMES")
        if pid is None or count is None:
            return []
        if not pid.isdigit() or int(pid) != os.getpid():
            return []  # meant for another process (our parent, inherited by mistake)
        if not count.isdigit():
            raise ConfigurationError(f"LISTEN_FDS={count!r} is not a number of descriptors")
        n = int(count)
        labels = names.split(":") if names else []
        if names is not None and len(labels) != n:
            raise ConfigurationError(
                f"LISTEN_FDNAMES={names!r} names {len(labels)} sockets but LISTEN_FDS={n}"
            )
        result = []
        for index in range(n):
            fd = LISTEN_FDS_START + index
            os.set_inheritable(fd, False)
            result.append((labels[index] if labels else "unknown", socket.socket(fileno=fd)))
        return result
    finally:
        if unset_environment:
            for name in _VARIABLES:
                os.environ.pop(name, None)
