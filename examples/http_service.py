"""An HTTP service on the standard library, run under warden's lifecycle.

Four components, each needing the one before::

    settings  <-  store  <-  jobs  <-  http

Start-up runs left to right; a stop runs right to left: the HTTP front stops taking work and
finishes its in-flight requests, then the job queue drains, then the store writes every
acknowledged job to disk, then the settings go. Nothing acknowledged is lost on SIGTERM.

    python examples/http_service.py --port 8000 --data /tmp/jobs.json

Under ``warden run --listen tcp://127.0.0.1:8000 --ready notify`` (or systemd socket
activation) it serves every socket it is handed instead of binding one, and says READY=1 once
every component has started: that is all a service needs for zero-downtime upgrades
(``--ready http://127.0.0.1:8000/readyz`` works as well: during an upgrade warden's probes
reach the new release alone through the same port).

Endpoints: ``GET /`` (hello), ``GET /slow?ms=500`` (a slow request), ``POST /jobs`` (queue a
job, 202 once acknowledged), ``GET /livez``, ``GET /readyz`` (503 once the service drains).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import warden


class Settings:
    """The service's configuration, read once at start."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.host: str = ""
        self.port: int = 0
        self.data = Path()
        #: The sockets handed over by warden or systemd (LISTEN_FDS), if any, in fd order.
        self.socks: list[socket.socket] = []

    def load(self) -> None:
        self.host, self.port = self.args.host, self.args.port
        self.data = Path(self.args.data)
        # All of them, in fd order (one per --listen).
        self.socks = [sock for _, sock in warden.listen_fds()]


class Store:
    """Acknowledged jobs, kept in memory and written to disk atomically on stop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.done: list[str] = []

    def open(self) -> None:
        if self.settings.data.exists():
            self.done = json.loads(self.settings.data.read_text())

    def close(self) -> None:
        tmp = self.settings.data.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.done))
        tmp.replace(self.settings.data)


class Jobs:
    """A queue of acknowledged jobs and the worker that completes them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.worker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.worker = asyncio.create_task(self._work(), name="jobs-worker")

    async def stop(self) -> None:
        await self.queue.join()  # finish everything acknowledged
        if self.worker is not None:
            self.worker.cancel()

    async def _work(self) -> None:
        while True:
            job = await self.queue.get()
            await asyncio.sleep(0.01)  # stands for real work
            self.store.done.append(job)
            self.queue.task_done()


IDLE_GRACE = 1.0  # seconds a keep-alive connection may stay silent once a stop began


class Http:
    """A small HTTP/1.1 server with keep-alive that finishes in-flight requests on stop."""

    def __init__(self, settings: Settings, jobs: Jobs, lifecycle: warden.Lifecycle) -> None:
        self.settings, self.jobs, self.lifecycle = settings, jobs, lifecycle
        self.socks: list[socket.socket] = []
        self.idle = asyncio.Event()  # no connection left
        self.connections: set[asyncio.Task[None]] = set()
        self.busy: set[asyncio.Task[None]] = set()  # connections with a request in flight

    async def start(self) -> None:
        socks = self.settings.socks or [
            socket.create_server((self.settings.host, self.settings.port))
        ]
        loop = asyncio.get_running_loop()
        for sock in socks:
            sock.setblocking(False)
            # Its own accept loop, not asyncio.start_server: each connection is counted the
            # moment it is accepted, so a stop never misses one (asyncio's server hands a
            # connection to its handler a few loop iterations later, and 3.11's wait_closed()
            # does not wait).
            loop.add_reader(sock.fileno(), self._accept, sock)
        self.socks = socks
        host, port = socks[0].getsockname()[:2]
        print(f"listening on http://{host}:{port}", flush=True)

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(64):
            try:
                conn, _ = sock.accept()
            except BlockingIOError:
                return
            self.connections.add(asyncio.get_running_loop().create_task(self._serve(conn)))

    async def stop(self) -> None:
        """Stop taking connections, then let each open one end cleanly.

        What is not accepted yet stays in the listening socket's backlog, for the next
        release when there is one (under ``warden run``, the socket outlives this process).
        Closing a keep-alive connection while the client may be sending its next request
        loses that request (the client sees a reset, not a response). So each connection
        instead ends after its next response, which says ``Connection: close``; only one that
        stays silent for ``IDLE_GRACE`` is closed from this side (a client that sends on it
        at that very moment must retry, as HTTP/1.1 clients do for idempotent requests).
        """
        loop = asyncio.get_running_loop()
        for sock in self.socks:
            loop.remove_reader(sock.fileno())
            sock.close()  # our descriptor only: a socket handed over stays open in warden
        if self.connections:
            self.idle.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(IDLE_GRACE):
                    await self.idle.wait()
        for task in self.connections - self.busy:  # silent keep-alive connections
            task.cancel()
        if self.connections:  # requests still in flight: they end with their response
            await self.idle.wait()

    async def _serve(self, conn: socket.socket) -> None:
        task = asyncio.current_task()
        assert task is not None
        writer: asyncio.StreamWriter | None = None
        try:
            reader, writer = await asyncio.open_connection(sock=conn)
            while True:
                request = await reader.readline()
                if not request:
                    return
                self.busy.add(task)
                headers = await _read_headers(reader)
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status, text = await self._handle(request.decode("latin-1"), body)
                closing = not self.lifecycle.ready or headers.get("connection") == "close"
                writer.write(_response(status, text, closing))
                await writer.drain()
                self.busy.discard(task)
                if closing:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return
        finally:
            self.busy.discard(task)
            self.connections.discard(task)
            if writer is not None:
                writer.close()
            else:
                conn.close()
            if not self.connections:
                self.idle.set()

    async def _handle(self, request_line: str, body: bytes) -> tuple[int, str]:
        method, target, _ = request_line.split(" ", 2)
        url = urlsplit(target)
        if url.path == "/livez":
            return 200, "ok\n"
        if url.path == "/readyz":
            state = self.lifecycle.state.value
            return (200, "ready\n") if self.lifecycle.ready else (503, f"{state}\n")
        if url.path == "/slow":
            ms = float(parse_qs(url.query).get("ms", ["500"])[0])
            await asyncio.sleep(ms / 1000)
            return 200, f"slept {ms:g} ms\n"
        if url.path == "/jobs" and method == "POST":
            await self.jobs.queue.put(body.decode() or "job")
            return 202, "accepted\n"
        if url.path == "/":
            return 200, "hello from warden\n"
        return 404, "not found\n"


async def _read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    return headers


_REASONS = {200: "OK", 202: "Accepted", 404: "Not Found", 503: "Service Unavailable"}


def _response(status: int, text: str, closing: bool) -> bytes:
    body = text.encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: {'close' if closing else 'keep-alive'}\r\n"
    )
    return head.encode() + b"\r\n" + body


def build(args: argparse.Namespace) -> warden.Lifecycle:
    """The service: four components wired into one lifecycle."""
    lifecycle = warden.Lifecycle(drain_delay=args.drain_delay)
    settings = Settings(args)
    store = Store(settings)
    jobs = Jobs(store)
    http = Http(settings, jobs, lifecycle)
    lifecycle.add("settings", start=settings.load)
    lifecycle.add("store", start=store.open, stop=store.close, depends_on=["settings"])
    lifecycle.add("jobs", start=jobs.start, stop=jobs.stop, depends_on=["store"])
    lifecycle.add(
        "http", start=http.start, stop=http.stop, depends_on=["jobs", "settings"], stop_timeout=10
    )
    warden.notify_systemd(lifecycle)  # READY=1 to warden or systemd, when run under one
    return lifecycle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--data", default=str(Path.cwd() / "jobs.json"))
    parser.add_argument("--drain-delay", default="0", help="readiness false this long first")
    lifecycle = build(parser.parse_args(argv))
    warden.log_events(lifecycle)
    return lifecycle.run()


if __name__ == "__main__":
    sys.exit(main())
