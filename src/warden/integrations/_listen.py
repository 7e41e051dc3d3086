"""Where an HTTP server listens: the sockets it is handed, or an address it binds."""

from __future__ import annotations

import socket
from collections.abc import Sequence

from ._errors import ServeError


def listeners(
    name: str, sockets: Sequence[socket.socket], address: str | None
) -> list[socket.socket]:
    """The listening sockets for component ``name``: ``sockets``, else one bound to ``address``."""
    if sockets:
        return list(sockets)
    if address is None:
        raise ServeError(
            f"component {name!r} has nowhere to listen; pass sockets= (from "
            "warden.listen_fds()) or address='HOST:PORT'"
        )
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host or "0.0.0.0", int(port)), family=family, backlog=1024)
        return [sock]
    except (OSError, ValueError) as exc:
        raise ServeError(
            f"component {name!r} cannot listen on {address!r} ({exc}); pick a free "
            "HOST:PORT, or run under warden run --listen to be handed a socket"
        ) from exc
