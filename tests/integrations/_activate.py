"""Socket activation for a test: bind, hand the socket over as fd 3 in LISTEN_FDS, exec.

    python tests/integrations/_activate.py NAME=HOST:PORT [NAME=HOST:PORT ...] -- CMD ARGS...

What systemd and ``warden run --listen`` do for a service, in one process (exec keeps the
pid, so LISTEN_PID is the program's). Prints nothing: the program reports its own port.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys


def main(argv: list[str]) -> None:
    split = argv.index("--")
    specs, command = argv[:split], argv[split + 1 :]
    names, held = [], []
    for spec in specs:
        name, _, address = spec.rpartition("=")
        host, _, port = address.rpartition(":")
        sock = socket.create_server((host, int(port)), backlog=128)
        # Out of the way first: the socket itself may have been given fd 3.
        held.append(fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD_CLOEXEC, 100))
        sock.close()
        names.append(name or "unknown")
    for index, fd in enumerate(held):
        os.dup2(fd, 3 + index)  # the copy is inheritable
        os.close(fd)
    os.environ.update(
        LISTEN_PID=str(os.getpid()), LISTEN_FDS=str(len(specs)), LISTEN_FDNAMES=":".join(names)
    )
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
