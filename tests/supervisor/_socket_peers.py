"""Children started with held sockets, and the clients that talk to them.

These tests run without warden's reaper, so each child is reaped here with ``os.waitpid`` on
its own pid; a wait for an exit is a ``pidfd`` becoming readable, with a deadline. At
teardown every child still running is killed with its process group (``spawn_with_sockets``
makes pid == pgid) and reaped.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import select
import signal
import socket
from collections.abc import Mapping, Sequence

import pytest

from warden.supervisor.process._handover import spawn_with_sockets

DEADLINE = 20.0

#: An ASGI app (uvicorn, hypercorn) and a WSGI app (gunicorn) answering with path and pid.
APP = """\
import os


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    body = f"{scope['path']} from pid {os.getpid()}".encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def wsgi(environ, start_response):
    body = f"{environ['PATH_INFO']} from pid {os.getpid()}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this host")


class Children:
    """Children of this test process, started by the handover; all reaped at the end."""

    def __init__(self) -> None:
        self.running: set[int] = set()

    def spawn(
        self,
        argv: Sequence[str],
        *,
        sockets: Sequence[tuple[str, int]] = (),
        env: Mapping[str, str] | None = None,
        pid_variables: Sequence[str] = ("LISTEN_PID",),
    ) -> int:
        pid = spawn_with_sockets(argv, sockets=sockets, env=env, pid_variables=pid_variables)
        self.running.add(pid)
        return pid

    def wait(self, pid: int, timeout: float = DEADLINE) -> int:
        """Wait for ``pid`` to end; its exit code (negative: killed by that signal)."""
        pidfd = os.pidfd_open(pid)
        try:
            ready, _, _ = select.select([pidfd], [], [], timeout)
        finally:
            os.close(pidfd)
        assert ready, f"pid {pid} still running after {timeout}s"
        _, status = os.waitpid(pid, 0)
        self.running.discard(pid)
        return os.waitstatus_to_exitcode(status)

    def stop(self, pid: int, signum: int = signal.SIGTERM) -> int:
        os.kill(pid, signum)
        return self.wait(pid)

    def cleanup(self) -> None:
        for pid in self.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.running.clear()


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def http_get(where: tuple[str, int] | str, path: str) -> tuple[int, str]:
    """GET ``path`` from a TCP address or a UNIX socket path.

    No wait for the server to start is needed: the socket was listening before the server
    existed, so the request sits in the backlog until the server accepts it.
    """
    connection = (
        UnixHTTPConnection(where, DEADLINE)
        if isinstance(where, str)
        else http.client.HTTPConnection(where[0], where[1], timeout=DEADLINE)
    )
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def receive_all(where: tuple[str, int] | str) -> bytes:
    """Connect and read until the peer closes."""
    family = socket.AF_UNIX if isinstance(where, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as client:
        client.settimeout(DEADLINE)
        client.connect(where)
        chunks = []
        while chunk := client.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def open_fds(pid: int) -> dict[int, str]:
    """What each descriptor of ``pid`` is, from /proc (``socket:[inode]``, ``pipe:[...]``...)."""
    found = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):
            found[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
    return found


def inheritable_fds() -> dict[int, str]:
    """This process's descriptors without close-on-exec: every child inherits them."""
    return {
        fd: target for fd, target in open_fds(os.getpid()).items() if fd > 2 and _inheritable(fd)
    }


def _inheritable(fd: int) -> bool:
    try:
        return os.get_inheritable(fd)
    except OSError:
        return False  # the descriptor listdir itself used, closed by now
