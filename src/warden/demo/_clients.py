"""Real traffic: closed-loop HTTP clients in threads of the demo, counting what they get.

Each client sends its next request when the last one was answered (closed loop, after a
thinking pause of 2 ms): half open a
new connection per request, half keep one connection alive across requests (and open a new
one when the server's answer said ``Connection: close``, as HTTP/1.1 clients do). Every
fourth request is a write (``POST /writes`` with a unique id): the service's ``201`` is its
acknowledgement, and the demo later looks for every acknowledged id on disk. Nothing is
retried: a request that gets no answer, or another status, is a failure and is counted.

Every request is recorded with its send and answer times (``time.monotonic()``, the clock
warden's facts carry), so a step's figures are the requests sent between its start and end.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

TIMEOUT = 10.0  # seconds a client waits for an answer before counting a failure

#: A client's pause between an answer and its next request: about 400 requests a second
#: each at most, so the demo loads the service without taking every core of the machine.
THINK = 0.002

#: The kinds of client: a new connection per request, or one kept alive.
NEW, KEEP = "new connection", "keep-alive"


@dataclass(frozen=True, slots=True)
class Request:
    """One request and what came back."""

    client: str
    kind: str  # NEW or KEEP
    op: str  # "read", "write" or "slow"
    sent: float
    answered: float
    status: int  # 0: no answer
    release: int | None = None
    pid: int | None = None
    greeting: str | None = None
    write_id: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == (201 if self.op == "write" else 200)

    @property
    def latency(self) -> float:
        return self.answered - self.sent


@dataclass(frozen=True, slots=True)
class Figures:
    """The traffic of a span of time, as the clients counted it."""

    served: int
    failed: int
    p50: float | None  # seconds
    p99: float | None
    start: float  # the span: requests sent from start to end (monotonic seconds)
    end: float
    by_release: dict[int, int] = field(default_factory=dict)
    failures: tuple[str, ...] = ()  # the first few, each with its reason
    writes: int = 0  # acknowledged

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_json(self) -> dict[str, object]:
        return {
            "sent_from": self.start,
            "sent_until": self.end,
            "served": self.served,
            "failed": self.failed,
            "p50_ms": None if self.p50 is None else round(self.p50 * 1000, 3),
            "p99_ms": None if self.p99 is None else round(self.p99 * 1000, 3),
            "duration_s": round(self.duration, 3),
            "by_release": {str(k): v for k, v in sorted(self.by_release.items())},
            "writes_acknowledged": self.writes,
            "failures": list(self.failures),
        }


def figures(requests: Iterable[Request], start: float, end: float) -> Figures:
    """Served, failed, percentiles and who answered, for ``requests`` (sent in the span)."""
    done = list(requests)
    served = [r for r in done if r.ok]
    failed = [r for r in done if not r.ok]
    latencies = sorted(r.latency for r in served)
    by_release: dict[int, int] = {}
    for r in served:
        if r.release is not None:
            by_release[r.release] = by_release.get(r.release, 0) + 1
    return Figures(
        served=len(served),
        failed=len(failed),
        p50=_percentile(latencies, 0.50),
        p99=_percentile(latencies, 0.99),
        start=start,
        end=end,
        by_release=by_release,
        failures=tuple(_describe(r) for r in failed[:5]),
        writes=sum(1 for r in served if r.op == "write"),
    )


def _percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _describe(r: Request) -> str:
    what = f"{r.op} by a {r.kind} client"
    if r.status:
        return f"{what}: status {r.status} from release {r.release}"
    return f"{what}: {r.error}"


class Traffic:
    """Closed-loop clients against ``port``, and every request they made."""

    def __init__(self, port: int, *, per_kind: int = 2) -> None:
        self.port = port
        self.per_kind = per_kind
        self.requests: list[Request] = []  # appended by the client threads (atomic)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ids = itertools.count(1)
        self._lock = threading.Condition()
        self._sending: dict[str, float] = {}  # client -> when it sent the request in flight
        self._failed = 0

    def start(self) -> None:
        self._stopping.clear()
        for n in range(self.per_kind):
            for kind in (NEW, KEEP):
                name = f"{'n' if kind == NEW else 'k'}{n + 1}"
                thread = threading.Thread(
                    target=self._loop, args=(name, kind), name=f"demo-client-{name}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        """Stop sending; returns once every client has its last answer (or gave up)."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(TIMEOUT + 5)
        self._threads.clear()

    def between(self, start: float, end: float) -> list[Request]:
        """The requests sent from ``start`` to ``end`` (monotonic seconds), each with its
        answer: a request still in flight that was sent before ``end`` is waited for."""
        with self._lock:
            self._lock.wait_for(
                lambda: all(sent >= end for sent in self._sending.values()), TIMEOUT + 1
            )
            return [r for r in self.requests if start <= r.sent < end]

    def mark(self) -> tuple[int, int]:
        """Requests and failures so far, to count from (the live line)."""
        with self._lock:
            return len(self.requests), self._failed

    def since(self, mark: tuple[int, int]) -> tuple[int, int]:
        """(served, failed) since ``mark``."""
        with self._lock:
            done, failed = len(self.requests) - mark[0], self._failed - mark[1]
        return done - failed, failed

    def record(self, requests: Iterable[Request]) -> None:
        """Count requests made outside the loop (the slow ones) with the others."""
        with self._lock:
            for record in requests:
                self.requests.append(record)
                self._failed += not record.ok

    def slow(self, ms: int, how_many: int) -> SlowRequests:
        return SlowRequests(self.port, ms, how_many)

    def request(self, method: str, path: str) -> tuple[int, dict[str, object]]:
        """One request on a new connection, for the demo itself (not counted as traffic)."""
        status, body = probe(self.port, path, method)
        return status, _json(body)

    def _loop(self, name: str, kind: str) -> None:
        conn: http.client.HTTPConnection | None = None
        try:
            for n in itertools.count():
                if self._stopping.wait(THINK if n else 0):
                    return
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
                write = n % 4 == 3
                write_id = f"{name}-{next(self._ids)}" if write else None
                with self._lock:
                    self._sending[name] = sent = time.monotonic()
                record, reusable = _exchange(conn, name, kind, write_id, sent)
                with self._lock:
                    self.requests.append(record)
                    self._failed += not record.ok
                    del self._sending[name]
                    self._lock.notify_all()
                if kind == NEW or not reusable:
                    conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()


def _exchange(
    conn: http.client.HTTPConnection, name: str, kind: str, write_id: str | None, sent: float
) -> tuple[Request, bool]:
    """One request on ``conn``, sent at ``sent``; the record, and whether the connection may
    be used again."""
    op = "read" if write_id is None else "write"
    headers = {"Connection": "close"} if kind == NEW else {}
    try:
        if write_id is None:
            conn.request("GET", "/", headers=headers)
        else:
            conn.request("POST", "/writes", body=write_id.encode(), headers=headers)
        response = conn.getresponse()
        body = _json(response.read())
    except (OSError, http.client.HTTPException) as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return Request(
            name, kind, op, sent, time.monotonic(), 0, write_id=write_id, error=error
        ), False
    answered = time.monotonic()
    record = Request(
        name,
        kind,
        op,
        sent,
        answered,
        response.status,
        release=_int(body.get("release")),
        pid=_int(body.get("pid")),
        greeting=str(body["greeting"]) if "greeting" in body else None,
        write_id=write_id,
    )
    return record, not response.will_close


class SlowRequests:
    """``how_many`` slow requests (``GET /slow?ms=...``), each on its own connection."""

    def __init__(self, port: int, ms: int, how_many: int) -> None:
        self.answers: list[Request] = []
        self._threads = [
            threading.Thread(target=self._one, args=(port, ms, n), daemon=True)
            for n in range(how_many)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _one(self, port: int, ms: int, n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT + ms / 1000)
        sent = time.monotonic()
        try:
            conn.request("GET", f"/slow?ms={ms}", headers={"Connection": "close"})
            response = conn.getresponse()
            body = _json(response.read())
            self.answers.append(
                Request(
                    f"s{n + 1}",
                    NEW,
                    "slow",
                    sent,
                    time.monotonic(),
                    response.status,
                    release=_int(body.get("release")),
                    pid=_int(body.get("pid")),
                )
            )
        except (OSError, http.client.HTTPException) as exc:
            self.answers.append(
                Request(f"s{n + 1}", NEW, "slow", sent, time.monotonic(), 0, error=repr(exc))
            )
        finally:
            conn.close()


def probe(port: int, path: str, method: str = "GET") -> tuple[int, bytes]:
    """One request on a new connection: its status (0: no answer) and body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request(method, path, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException) as exc:
        return 0, repr(exc).encode()
    finally:
        conn.close()


def _json(raw: bytes) -> dict[str, object]:
    with contextlib.suppress(ValueError):
        found = json.loads(raw)
        if isinstance(found, dict):
            return found
    return {}


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def write_csv(requests: Iterable[Request], path: Path) -> None:
    """Every request, one line each, for ``--keep``: the figures can be counted again."""
    columns = (
        "client",
        "kind",
        "op",
        "sent",
        "answered",
        "status",
        "release",
        "pid",
        "write_id",
        "error",
    )
    with path.open("w") as out:
        out.write(",".join(columns) + "\n")
        for r in requests:
            row = (
                r.client,
                r.kind,
                r.op,
                repr(r.sent),
                repr(r.answered),
                str(r.status),
                "" if r.release is None else str(r.release),
                "" if r.pid is None else str(r.pid),
                r.write_id or "",
                (r.error or "").replace(",", ";").replace("\n", " "),
            )
            out.write(",".join(row) + "\n")


def acknowledged(requests: Iterable[Request]) -> Iterator[Request]:
    """The writes the service acknowledged (201)."""
    return (r for r in requests if r.op == "write" and r.ok)
