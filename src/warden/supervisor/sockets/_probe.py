"""A private probe listener per run: a way to ask one release, and only it, whether it works.

During an upgrade two releases accept on the same held sockets, so an HTTP probe sent to a
shared address is answered by whichever accepts first, usually the old one (measured: every
broken release passed an ``http`` gate on the shared socket, the old release answering in
5-12 ms). So each run gets one more socket of its own: a loopback TCP listener on a port the
kernel chooses, handed over as the last ``LISTEN_FDS`` entry, named :data:`PROBE_NAME` in
``LISTEN_FDNAMES``. Servers that serve every socket they are handed (gunicorn, hypercorn with
``--bind fd://N`` for each, anything using ``warden.listen_fds()``) answer on it like on the
shared ones, and the readiness gate and the confirmation window probe it during an upgrade.

warden closes its copy once the run is spawned: the listener then lives in that run only, and
a connection to it can reach no other process.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass

PROBE_NAME = "warden-probe"
"""The probe socket's name in ``LISTEN_FDNAMES``."""


@dataclass(frozen=True, slots=True)
class ProbeSocket:
    """A loopback listener for one run; :attr:`port` is where its probes connect."""

    sock: socket.socket

    @classmethod
    def open(cls) -> ProbeSocket:
        """Bind 127.0.0.1 on a port of the kernel's choice; close-on-exec, like every socket
        warden holds (the handover places it for the child)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind(("127.0.0.1", 0))
            sock.listen(64)
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    @property
    def port(self) -> int:
        port: int = self.sock.getsockname()[1]
        return port

    @property
    def named_fd(self) -> tuple[str, int]:
        return PROBE_NAME, self.sock.fileno()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
