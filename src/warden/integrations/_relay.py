"""Serve a listening socket that a server cannot adopt, by relaying it to a private one.

grpcio binds its own listeners from an address (``add_insecure_port``); it cannot take a
listening descriptor, and grpc core's ``grpc_server_add_channel_from_fd`` is not exported by
the Python wheel. Binding the same address beside the inherited socket (``SO_REUSEPORT``)
is no answer: warden's held sockets do not set it, and the kernel would hash part of the new
connections to the inherited socket's backlog, where nothing accepts them.

So the inherited socket is accepted here, in the event loop, and each connection is relayed
byte for byte to the server's private listener on an abstract ``AF_UNIX`` address (no file,
gone with the process). The relay's own end is bound to an abstract name of its own, which
the server reports as the peer (``unix-abstract:warden-peer-…``); :meth:`Relay.peer` maps
it back to the TCP client, so the report of what was cut names the real peer.

At stop the relay stops accepting first: connections still arriving wait in the inherited
socket's backlog, which under ``warden run`` outlives this process and is served by the next
release. Relayed connections end when the server closes its side (after its GOAWAY).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket

_CHUNK = 256 * 1024


def private_address() -> str:
    """A fresh abstract AF_UNIX name for a server's private listener (without the NUL)."""
    return f"warden-srv-{os.getpid()}-{secrets.token_hex(4)}"


def peer_name(family: int, address: object) -> str:
    """A TCP client as gRPC names peers: ``ipv4:127.0.0.1:5000``, ``ipv6:[::1]:5000``."""
    if family == socket.AF_INET6 and isinstance(address, tuple):
        return f"ipv6:[{address[0]}]:{address[1]}"
    if family == socket.AF_INET and isinstance(address, tuple):
        return f"ipv4:{address[0]}:{address[1]}"
    return f"unix:{address!s}" if address else "unix:"


class Relay:
    """Accepts on ``sockets`` and relays each connection to the abstract ``backend``."""

    def __init__(self, sockets: list[socket.socket], backend: str) -> None:
        self._sockets = sockets
        self.backend = backend
        self._backend = "\0" + backend
        self._prefix = f"warden-peer-{os.getpid()}-{secrets.token_hex(3)}-"
        self._count = 0
        self._peers: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._accepting = False

    def start(self) -> None:
        """Begin accepting (call on the event loop)."""
        self._loop = asyncio.get_running_loop()
        self._accepting = True
        for sock in self._sockets:
            sock.setblocking(False)
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def peer(self, name: str) -> str:
        """The TCP client behind a relayed peer name; other names unchanged."""
        if name.startswith("unix-abstract:"):
            return self._peers.get(name.removeprefix("unix-abstract:"), name)
        return name

    def stop_accepting(self) -> None:
        """Leave new connections in the backlog; our descriptors are closed."""
        if not self._accepting or self._loop is None:
            return
        self._accepting = False
        for sock in self._sockets:
            self._loop.remove_reader(sock.fileno())
            # Our descriptor only: under warden run or systemd the socket stays open in the
            # manager, with its backlog, for the next release.
            sock.close()

    async def close(self, timeout: float) -> None:
        """Wait up to ``timeout`` for relayed connections to end, then cut the rest."""
        self.stop_accepting()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=max(timeout, 0.0))
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks))

    def _accept(self, listener: socket.socket) -> None:
        assert self._loop is not None
        for _ in range(64):
            try:
                conn, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # ECONNABORTED and the like: the client left
            conn.setblocking(False)
            self._count += 1
            name = f"{self._prefix}{self._count}"
            self._peers[name] = peer_name(listener.family, address)
            task = self._loop.create_task(self._relay(conn, name), name=f"warden:relay:{name}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _relay(self, client: socket.socket, name: str) -> None:
        assert self._loop is not None
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.setblocking(False)
            upstream.bind("\0" + name)
            if client.family in (socket.AF_INET, socket.AF_INET6):
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await self._loop.sock_connect(upstream, self._backend)
            async with asyncio.TaskGroup() as pumps:
                pumps.create_task(self._pump(client, upstream))
                pumps.create_task(self._pump(upstream, client))
        except* OSError:
            pass  # either side reset: the other is closed below, as the kernel would
        finally:
            client.close()
            upstream.close()
            self._peers.pop(name, None)

    async def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        assert self._loop is not None
        try:
            while data := await self._loop.sock_recv(source, _CHUNK):
                await self._loop.sock_sendall(sink, data)
        finally:
            # Pass the end of stream on (half-close), so each side sees what the other did.
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
