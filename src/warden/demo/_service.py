"""The demo's bundled service: a small HTTP service on warden's library, run by ``warden run``.

    python -m warden.demo._service ROOT

Everything it needs is under ROOT, which the demo prepares:

* ``ROOT/current/release.json``: the release, read once at start (``current`` is a symlink to
  ``releases/N``, swapped by a deploy): its number, and a fault for the broken release.
* ``ROOT/config/app.json``: the configuration, a :class:`warden.config.ConfigStore` snapshot
  (in a ConfigMap-style volume: a symlink through ``..data``). SIGHUP reloads it; a broken
  file is refused in one line and the old value keeps serving.
* ``ROOT/writes.log``: acknowledged writes, one line each (``ID PID``). A write is
  acknowledged once it is queued in memory; the queue is appended to the file every 50 ms
  and at stop. So a graceful stop loses none, and an OOM kill would lose the last batch.

It serves every socket ``warden.listen_fds()`` hands it (the held port, and whatever else
warden gives a release being upgraded), and writes its lifecycle's facts to stdout, one JSON
object per line with its pid and release, for the demo to read.

Components, each needing the one before: ``config <- writes <- leak <- http``; a stop runs
right to left (the front stops taking work and answers what it has, the writes reach the
disk, the config goes last).

Endpoints: ``GET /`` (the release and the greeting), ``POST /writes`` (acknowledge a write),
``GET /slow?ms=N``, ``GET /readyz``, ``POST /leak?now_mib=N&mib_per_s=M`` (start leaking),
``GET /stats``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TextIO
from urllib.parse import parse_qs, urlsplit

from warden.config import ConfigStore
from warden.lifecycle import Event, Fact, Lifecycle, Says
from warden.systemd import listen_fds

from ._release import FAULT_500, Release

FLUSH_EVERY = 0.05  # seconds between appends of acknowledged writes to the file
LEAK_TICK = 0.01  # seconds between allocations once leaking
IDLE_GRACE = 1.0  # seconds a silent keep-alive connection may stay once a stop began

Query = dict[str, list[str]]
Answer = tuple[int, dict[str, object]]
Route = Callable[[Query, bytes], Awaitable[Answer]]


@dataclass(frozen=True)
class Settings:
    """The service's configuration: what it greets with."""

    greeting: str

    def __post_init__(self) -> None:
        if not self.greeting.strip():
            raise ValueError("greeting is empty; give a word such as 'hello'")


# -- its own facts, on its lifecycle's timeline ------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Serving(Fact):
    """The HTTP front serves ``sockets`` (as handed over by warden)."""

    kind: ClassVar[str] = "demo.serving"
    says: ClassVar[Says] = Says(detail="release {release} on {sockets:list}")
    release: int
    sockets: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Leaking(Fact):
    """``POST /leak``: the service keeps ``jump`` bytes at once, then ``rate`` bytes a second,
    and never frees them."""

    kind: ClassVar[str] = "demo.leaking"
    jump: int
    rate: int

    @property
    def detail(self) -> str:
        return f"leaking {self.jump / 2**20:g} MiB at once, then {self.rate / 2**20:g} MiB/s"


@dataclass(frozen=True, slots=True, kw_only=True)
class Broken(Fact):
    """The broken release passed its first readiness check and answers 500 from now on."""

    kind: ClassVar[str] = "demo.broken"
    says: ClassVar[Says] = Says(detail="release {release} answers 500 from now on")
    release: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SlowRequest(Fact):
    """A slow request is in hand; it is answered after ``ms``, a stop or not."""

    kind: ClassVar[str] = "demo.slow"
    says: ClassVar[Says] = Says(detail="answering in {ms:g} ms")
    ms: float


class FactLog:
    """The timeline as JSON lines on a stream, each with the pid and release."""

    def __init__(self, stream: TextIO, release: Release) -> None:
        self.stream = stream
        self.release = release

    def __call__(self, event: Event) -> None:
        line = {
            "pid": os.getpid(),
            "release": self.release.number,
            "monotonic": event.at,
            "kind": event.kind,
            "name": event.name,
            "outcome": event.outcome,
            "detail": event.detail,
            "data": event.fact.data(),
        }
        with contextlib.suppress(OSError, ValueError):  # the reader is gone: nothing to tell
            self.stream.write(json.dumps(line) + "\n")
            self.stream.flush()


# -- the components ----------------------------------------------------------------------------


class Writes:
    """Acknowledged writes: queued in memory, appended to the file in batches and at stop."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pending: list[str] = []
        self.fd = -1
        self.task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.task = asyncio.create_task(self._flush_every(), name="demo-writes")

    def acknowledge(self, write_id: str) -> None:
        self.pending.append(write_id)

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        if batch:
            data = "".join(f"{write_id} {os.getpid()}\n" for write_id in batch).encode()
            while data:  # one append per batch; a regular file takes it whole
                data = data[os.write(self.fd, data) :]

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.flush()  # everything acknowledged reaches the file
        os.close(self.fd)

    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            self.flush()


class Leak:
    """A cache that never evicts: once switched on, ``jump`` bytes at once (it fills with
    what is at hand), then ``rate`` bytes a second (new entries), kept for ever."""

    def __init__(self, publish: Callable[[Fact], object]) -> None:
        self.publish = publish
        self.held: list[bytes] = []
        self.task: asyncio.Task[None] | None = None

    def switch_on(self, jump: int, rate: int) -> None:
        if self.task is None:
            self.publish(Leaking(jump=jump, rate=rate))
            self.held.append(b"\x01" * jump)  # written, so the pages are really charged
            self.task = asyncio.create_task(self._grow(rate), name="demo-leak")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def _grow(self, rate: int) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        kept = 0
        while True:
            await asyncio.sleep(LEAK_TICK)
            due = int((loop.time() - began) * rate) - kept
            if due > 0:
                self.held.append(b"\x01" * due)
                kept += due

    @property
    def size(self) -> int:
        return sum(map(len, self.held))


class Http:
    """HTTP/1.1 with keep-alive on every handed-over socket; answers what it has on stop."""

    def __init__(
        self,
        lifecycle: Lifecycle,
        release: Release,
        store: ConfigStore[Settings],
        writes: Writes,
        leak: Leak,
    ) -> None:
        self.lifecycle, self.release, self.store = lifecycle, release, store
        self.writes, self.leak = writes, leak
        self.socks: list[socket.socket] = []
        self.connections: set[asyncio.Task[None]] = set()
        self.busy: set[asyncio.Task[None]] = set()  # connections with a request in hand
        self.idle = asyncio.Event()
        self.in_flight = 0
        self.broken = False

    async def start(self) -> None:
        socks = [sock for _, sock in listen_fds()]  # every one: a probe socket too, if any
        if not socks:
            raise RuntimeError("no sockets handed over: run me under warden run --listen")
        loop = asyncio.get_running_loop()
        for sock in socks:
            sock.setblocking(False)
            loop.add_reader(sock.fileno(), self._accept, sock)
        self.socks = socks
        names = tuple(_address(sock) for sock in socks)
        self.lifecycle.publish(Serving(release=self.release.number, sockets=names))

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(64):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ECONNABORTED and the like: that client is gone
                continue
            task = asyncio.get_running_loop().create_task(self._serve(conn))
            self.connections.add(task)

    async def stop(self) -> None:
        """Stop taking connections; each open one ends after its next answer, which says
        ``Connection: close``; one silent for ``IDLE_GRACE`` is closed from here."""
        loop = asyncio.get_running_loop()
        for sock in self.socks:
            loop.remove_reader(sock.fileno())
            sock.close()  # this process's descriptor: warden keeps the socket open
        if self.connections:
            self.idle.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(IDLE_GRACE):
                    await self.idle.wait()
        for task in self.connections - self.busy:
            task.cancel()
        if self.connections:
            await self.idle.wait()

    async def _serve(self, conn: socket.socket) -> None:
        task = asyncio.current_task()
        assert task is not None
        writer: asyncio.StreamWriter | None = None
        try:
            reader, writer = await asyncio.open_connection(sock=conn)
            while True:
                line = await reader.readline()
                if not line:
                    return
                self.busy.add(task)
                headers = await _read_headers(reader)
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status, answer = await self._answer(line.decode("latin-1"), body)
                closing = not self.lifecycle.ready or headers.get("connection") == "close"
                writer.write(_response(status, answer, closing))
                await writer.drain()
                self.busy.discard(task)
                if closing:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError, ValueError):
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

    async def _answer(self, request_line: str, body: bytes) -> tuple[int, dict[str, object]]:
        method, target, _ = request_line.split(" ", 2)
        url = urlsplit(target)
        me: dict[str, object] = {"release": self.release.number, "pid": os.getpid()}
        if self.broken:
            return 500, {**me, "error": f"release {self.release.number} is broken"}
        route = self._routes.get((method, url.path))
        if route is None:
            return 404, {**me, "error": "not found"}
        status, answer = await route(parse_qs(url.query), body)
        return status, {**me, **answer}

    @property
    def _routes(self) -> dict[tuple[str, str], Route]:
        return {
            ("GET", "/"): self._hello,
            ("GET", "/readyz"): self._readyz,
            ("POST", "/writes"): self._write,
            ("GET", "/slow"): self._slow,
            ("POST", "/leak"): self._leak,
            ("GET", "/stats"): self._stats,
        }

    async def _hello(self, query: Query, body: bytes) -> Answer:
        return 200, {"greeting": self.store.current.greeting}

    async def _readyz(self, query: Query, body: bytes) -> Answer:
        if not self.lifecycle.ready:
            return 503, {"ready": False}
        if self.release.fault == FAULT_500:
            self.broken = True  # its first check passes; everything after fails
            self.lifecycle.publish(Broken(release=self.release.number))
        return 200, {"ready": True}

    async def _write(self, query: Query, body: bytes) -> Answer:
        write_id = body.decode("ascii", "replace").strip()
        self.writes.acknowledge(write_id)
        return 201, {"acknowledged": write_id}

    async def _slow(self, query: Query, body: bytes) -> Answer:
        ms = float(query.get("ms", ["1000"])[0])
        self.in_flight += 1
        self.lifecycle.publish(SlowRequest(ms=ms))
        try:
            await asyncio.sleep(ms / 1000)
        finally:
            self.in_flight -= 1
        return 200, {"slow": True}

    async def _leak(self, query: Query, body: bytes) -> Answer:
        jump = int(float(query.get("now_mib", ["0"])[0]) * 2**20)
        self.leak.switch_on(jump, int(float(query.get("mib_per_s", ["8"])[0]) * 2**20))
        return 200, {"leaking": True}

    async def _stats(self, query: Query, body: bytes) -> Answer:
        return 200, {"slow_in_flight": self.in_flight, "leaked": self.leak.size}


async def _read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    return headers


_REASONS = {200: "OK", 201: "Created", 404: "Not Found", 500: "Internal Server Error"}


def _response(status: int, answer: dict[str, object], closing: bool) -> bytes:
    body = json.dumps(answer).encode() + b"\n"
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Service Unavailable')}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"Connection: {'close' if closing else 'keep-alive'}\r\n\r\n"
    )
    return head.encode() + body


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"


def build(root: Path, out: TextIO) -> Lifecycle:
    """The service: four components wired into one lifecycle, its facts on ``out``."""
    release = Release.read(root / "current")
    lifecycle = Lifecycle(shutdown_timeout=20)
    lifecycle.timeline.subscribe(FactLog(out, release))
    store = ConfigStore(root / "config" / "app.json", schema=Settings)
    store.attach(lifecycle)  # SIGHUP reloads it; a refusal is a fact on the timeline
    writes = Writes(root / "writes.log")
    leak = Leak(lifecycle.publish)
    http = Http(lifecycle, release, store, writes, leak)
    lifecycle.add("writes", start=writes.open, stop=writes.close, depends_on=["config"])
    lifecycle.add("leak", stop=leak.stop, depends_on=["writes"])
    lifecycle.add("http", start=http.start, stop=http.stop, depends_on=["leak", "writes", "config"])
    return lifecycle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the bundled service of warden demo")
    parser.add_argument("root", type=Path, help="the demo's directory")
    args = parser.parse_args(argv)
    return build(args.root, sys.stdout).run()


if __name__ == "__main__":
    sys.exit(main())
