"""A small HTTP server for ``/livez``, ``/readyz`` and ``/metrics``, on a thread of its own.

Why a thread with its own event loop, not a task on the service's loop: ``/readyz`` must say
503 the instant a stop begins and ``/livez`` must tell a wedged loop from a live one, so
neither may wait for the loop they report on. Why not ``http.server``: its
``serve_forever`` polls every 0.5 s; this loop has no timer while idle, so it sleeps in
``epoll_wait`` until a connection comes (0 wake-ups).

Each response closes its connection: probes and scrapes are one request each. Anyone who
can reach the port can hold connections open; :mod:`._connections` keeps the server
answering probes all the same, within bounded memory and descriptors: at most
:data:`MAX_CONNECTIONS` open (the one that has waited longest for its request is reset to
make room for a newcomer), a request head of :data:`MAX_HEAD` bytes, sent within
:data:`REQUEST_TIMEOUT` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import threading
from collections.abc import Awaitable
from typing import Protocol

from .._exceptions import ConfigurationError
from ..lifecycle import Event, Fact, State, StateChanged, Timeline
from ._connections import BACKLOG, Connections
from ._events import HealthServing
from ._health import DEFAULT_WEDGED_AFTER, Details, Health, Response, _Service, route
from ._metrics import Metrics

_LOG = logging.getLogger("warden")

DEFAULT_ADDRESS = "127.0.0.1:9000"
#: Seconds a connection has to send its request line and headers (probes send at once),
#: and again to take its response.
REQUEST_TIMEOUT = 2.0
#: Bytes of request line and headers (a kubelet's probe sends about 150).
MAX_HEAD = 8192
#: Connections open at once; one more and the oldest still sending its request is reset.
#: Each holds a descriptor of the process the health server reports on: without a cap,
#: anyone who can connect could use them all up (the supervisor's spawns would then fail).
MAX_CONNECTIONS = 64
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}


class _Followed(_Service, Protocol):
    @property
    def timeline(self) -> Timeline: ...
    def publish(self, fact: Fact, /) -> object: ...


def serve_health(
    lifecycle: _Followed,
    address: str = DEFAULT_ADDRESS,
    *,
    details: Details | None = None,
    metrics: Metrics | bool = True,
    wedged_after: float = DEFAULT_WEDGED_AFTER,
) -> HealthServer:
    """Serve ``/livez``, ``/readyz`` and ``/metrics`` for ``lifecycle`` on ``address``.

    Binds now, so a bad or busy address is reported before anything starts, and answers
    from then on, from a thread of its own; closes itself when the lifecycle has stopped.
    Call it before :meth:`~warden.Lifecycle.run`.

    Example::

        lifecycle = warden.Lifecycle(drain_delay=5)
        warden.serve_health(lifecycle, "127.0.0.1:9000")
        sys.exit(lifecycle.run())

    Args:
        lifecycle: the service.
        address: ``host:port`` (``[v6]:port``); loopback unless told otherwise, port 0
            picks a free one (see :attr:`HealthServer.address`).
        details: extra ``name value`` lines for ``/readyz?verbose``.
        metrics: as for :class:`Health`.
        wedged_after: seconds without a loop round trip before ``/livez`` answers 503.

    Raises:
        ConfigurationError: the address cannot be parsed or bound.
    """
    health = Health(lifecycle, details=details, metrics=metrics, wedged_after=wedged_after)
    server = HealthServer(health, address)
    server.start()
    lifecycle.publish(HealthServing(url=server.url))  # the port, where 0 asked for any

    def follow(event: Event) -> None:
        if isinstance(event.fact, StateChanged) and event.fact.state is State.STOPPED:
            server.close()

    lifecycle.timeline.subscribe(follow)
    return server


class HealthServer:
    """The endpoints of a :class:`Health` over HTTP/1.1, on a thread with its own loop."""

    def __init__(self, health: Health, address: str = DEFAULT_ADDRESS) -> None:
        self.health = health
        self._sock = bind(address)
        host, port = self._sock.getsockname()[:2]
        self.address: tuple[str, int] = (host, port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread: threading.Thread | None = None
        self.connections: Connections | None = None  # once serving (its loop only)
        self._complaints: set[str] = set()

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def start(self) -> None:
        """Start answering (idempotent)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="warden:health", daemon=True)
        self._thread.start()
        self._started.wait(5.0)

    def close(self) -> None:
        """Stop answering and join the thread; safe from any thread, idempotent."""
        loop, closing, thread = self._loop, self._closing, self._thread
        if loop is not None and closing is not None:
            with contextlib.suppress(RuntimeError):  # already closed
                loop.call_soon_threadsafe(closing.set)
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)
        self._sock.close()

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.set_exception_handler(self._on_loop_error)
        self._closing = asyncio.Event()
        self.connections = Connections(
            self._loop,
            self._sock,
            self._answer,
            limit=MAX_CONNECTIONS,
            max_head=MAX_HEAD,
            timeout=REQUEST_TIMEOUT,
            describe=self.url,
        )
        self.connections.start()
        self._started.set()
        try:
            await self._closing.wait()
        finally:
            self.connections.close()
            for task in asyncio.all_tasks() - {asyncio.current_task()}:
                task.cancel()

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        """asyncio's complaints as one warden log line each, the first of a kind at warning
        level, not a traceback in the JSON log."""
        message = str(context.get("message", "error"))
        error = context.get("exception")
        log = _LOG.debug if message in self._complaints else _LOG.warning
        self._complaints.add(message)
        log("health server %s: %s%s", self.url, message, f": {error}" if error else "")

    def _answer(self, head: bytes) -> bytes | Awaitable[bytes]:
        """The response to a request head: at once, but for ``/livez``, which asks the
        service's loop for a round trip (a coroutine, awaited by the connection)."""
        try:
            method, target, _ = head.decode("latin-1").split("\n", 1)[0].split(" ", 2)
        except ValueError:
            return _encode(Response.text(400, "bad request: send GET /readyz HTTP/1.1\n"), True)
        head_only = method == "HEAD"
        if method not in ("GET", "HEAD"):
            return _encode(Response.text(405, "only GET and HEAD\n"), head_only)
        path, _, query = target.partition("?")
        if route(path) == "livez":
            return self._answer_later(path, query, head_only)
        return _encode(self.health.answer(path, query), head_only)

    async def _answer_later(self, path: str, query: str, head_only: bool) -> bytes:
        return _encode(await self.health.answer_async(path, query), head_only)


def _encode(response: Response, head_only: bool) -> bytes:
    return _head(response) + (b"" if head_only else response.body)


def _head(response: Response) -> bytes:
    return (
        f"HTTP/1.1 {response.status} {_REASONS.get(response.status, '')}\r\n"
        f"Content-Type: {response.content_type}\r\nContent-Length: {len(response.body)}\r\n"
        "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
    ).encode("latin-1")


def bind(address: str) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``[v6]:port``; no host: loopback)."""
    host, sep, port_text = address.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        if not sep or not 0 <= port < 65536:
            raise ValueError(address)
    except ValueError:
        raise ConfigurationError(
            f"health address {address!r} is not host:port with a numeric host; "
            "use e.g. 127.0.0.1:9000, [::1]:9000 or 0.0.0.0:9000 inside a pod"
        ) from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"health address {address!r} cannot be bound: {exc.strerror}; pick a free port"
        ) from exc
    sock.setblocking(False)
    return sock
