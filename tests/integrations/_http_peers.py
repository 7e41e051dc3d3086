"""The HTTP examples as real processes, started on their own port or socket-activated."""

from __future__ import annotations

import socket

from tests._proc import EXAMPLES, Proc, python
from tests.conftest import Spawn
from tests.integrations._grpc_peers import ACTIVATE, free_port


def start(spawn: Spawn, example: str, *args: str, activate: bool = False) -> tuple[Proc, int]:
    """Start ``examples/<example>``; returns it and its port once it is ready."""
    argv = [str(EXAMPLES / example), *args]
    if activate:
        command = python(ACTIVATE, f"http=127.0.0.1:{free_port()}", "--", *python(*argv))
    else:
        command = python(*argv, "--port", "0")
    proc = spawn(command)
    port = int(proc.wait_line(r"serving HTTP on port (\d+)").group(1))
    return proc, port


def raw_request(sock: socket.socket, path: str = "/") -> bytes:
    """Send one HTTP/1.1 request on ``sock`` and read until the server closes."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    chunks = []
    while data := sock.recv(65536):
        chunks.append(data)
    return b"".join(chunks)
