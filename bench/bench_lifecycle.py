"""Lifecycle benchmark (issue 2): warden's stop path next to uvicorn and hypercorn, same run.

    python bench/bench_lifecycle.py           # full run, about 7 minutes; writes docs/benchmarks.md
    python bench/bench_lifecycle.py --quick   # smoke run: a few repetitions, prints only

Three measurements, every one on real processes, real signals and loopback sockets:

(a) SIGTERM -> readiness false: the bench reads ``time.monotonic()`` just before
    ``os.kill(pid, SIGTERM)``; the service prints the ``at`` of its timeline event
    ``state draining`` (CLOCK_MONOTONIC is one clock for every process on Linux). uvicorn has no
    readiness flag, so its closest counterpart is SIGTERM -> listener closed (new connections
    refused), measured for both servers. Idle, and under 1,000 concurrent in-flight requests.
(b) SIGTERM -> process exit of an idle service: from the kill to ``waitpid`` returning.
(c) How far past a 1 s shutdown deadline the process lives when something hangs.

"Listener closed" is observed without touching the server: the bench asks the kernel
(``NETLINK_SOCK_DIAG``, what ``ss -lt`` uses) whether a TCP socket still listens on the port,
every ~0.1 ms, then checks that a connect is refused. A connect-based probe would make the
server accept and serve the probes, which is load of its own.

Waiting is on lines (select on the child's pipe), on the kernel (pidfd) and on sockets, each
with a timeout. Every process started runs in its own session, and every member of that session
is killed by PID at the end of its run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import errno
import importlib.metadata
import os
import platform
import re
import resource
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from _doc import DOC, markers, write_section

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
APPS = BENCH / "apps"
BEGIN, END = markers("lifecycle")

HOST = "127.0.0.1"
DEADLINE = 1.0  # shutdown_timeout / --timeout-graceful-shutdown / graceful_timeout, seconds
NEVER_EXITS_CAP = 10.0  # a peer still alive this long after SIGTERM is killed
LOAD_CONNECTIONS = 1000
LOAD_PATH = "/slow?ms=100"
PROBE_INTERVAL = 0.0001  # listener probe period (the kernel rounds it up to ~0.15 ms)


@dataclass(frozen=True)
class Plan:
    idle: int
    loaded: int
    deadline: int
    quick: bool


FULL = Plan(idle=100, loaded=30, deadline=15, quick=False)
QUICK = Plan(idle=5, loaded=2, deadline=1, quick=True)


# -- processes --------------------------------------------------------------------------------


class Child:
    """A process in its own session; stdout and stderr on one pipe, read without threads."""

    def __init__(self, argv: Sequence[str], *, cwd: Path, env: dict[str, str]) -> None:
        self.argv = list(argv)
        self.popen = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
        self.pid = self.popen.pid
        self.code: int | None = None
        assert self.popen.stdout is not None
        self._out = self.popen.stdout.fileno()
        os.set_blocking(self._out, False)
        self._pidfd = os.pidfd_open(self.pid)
        self._partial = b""
        self._eof = False
        self.lines: list[str] = []

    def _read(self, timeout: float) -> list[str]:
        """New complete lines, waiting up to ``timeout`` for some output."""
        if self._eof:
            return []
        if not _readable(self._out, timeout):
            return []
        try:
            chunk = os.read(self._out, 1 << 16)
        except BlockingIOError:
            return []
        if not chunk:
            self._eof = True
            chunk = b"\n" if self._partial else b""
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        new = [line.decode("utf-8", "replace") for line in complete]
        self.lines.extend(new)
        return new

    def wait_line(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        """The first line (already seen or coming) matching ``pattern``; fails after timeout."""
        regex = re.compile(pattern)
        for line in self.lines:
            if match := regex.search(line):
                return match
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0 and not self._eof:
            for line in self._read(remaining):
                if match := regex.search(line):
                    return match
        raise BenchError(f"no line matching {pattern!r} within {timeout:g}s", self)

    def wait_exit(self, timeout: float) -> float | None:
        """``time.monotonic()`` when ``waitpid`` returned, or None if still alive at timeout."""
        if not _readable(self._pidfd, timeout):  # a pidfd turns readable when the process exits
            return None
        _, status = os.waitpid(self.pid, 0)
        at = time.monotonic()
        self.code = self.popen.returncode = os.waitstatus_to_exitcode(status)
        return at

    def output(self) -> str:
        """Everything the process wrote (call after it exited)."""
        while not self._eof and self._read(0.5):
            pass
        return "\n".join(self.lines)

    def kill(self) -> None:
        """SIGKILL every process of the session by PID, reap ours, close our fds."""
        for pid in _session_members(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.code is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.wait_exit(10.0)
        os.close(self._pidfd)
        assert self.popen.stdout is not None
        self.popen.stdout.close()


def _readable(fd: int, timeout: float) -> bool:
    """Wait until ``fd`` is readable; poll(), not select(), which fails on fds >= 1024."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(max(0.0, timeout) * 1000))


def _session_members(sid: int) -> list[int]:
    """PIDs whose session is ``sid`` (our children start sessions of their own)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid:
            members.append(int(entry.name))
    return members


class BenchError(RuntimeError):
    def __init__(self, what: str, child: Child | None = None) -> None:
        if child is not None:
            tail = "\n".join(child.lines[-30:])
            what = f"{what}\n  command: {' '.join(child.argv)}\n  output:\n{tail}"
        super().__init__(what)


@contextlib.contextmanager
def started(
    argv: Sequence[str], *, tmp: Path, env: dict[str, str] | None = None
) -> Iterator[Child]:
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    child = Child(argv, cwd=tmp, env=full_env)
    try:
        yield child
    finally:
        child.kill()


# -- the servers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """How to start one server and recognise that it listens."""

    name: str
    argv: Callable[[Path], list[str]]
    env: Callable[[Path], dict[str, str]]
    listening: str  # a regex whose group 1 is the port


def _warden_argv(hang: str | None) -> Callable[[Path], list[str]]:
    def argv(tmp: Path) -> list[str]:
        extra = [] if hang is None else ["--hang", hang]
        script = str(APPS / "lifecycle_warden.py")
        return [sys.executable, script, *extra, "--port", "0", "--data", str(tmp / "jobs.json")]

    return argv


def _asgi_env(tmp: Path) -> dict[str, str]:
    return {"BENCH_DATA": str(tmp / "jobs.json"), "PYTHONPATH": str(APPS)}


def warden_server(hang: str | None = None) -> Server:
    env: Callable[[Path], dict[str, str]] = (
        (lambda tmp: {}) if hang is None else (lambda tmp: {"WARDEN_SHUTDOWN_TIMEOUT": "1"})
    )
    # "state ready" comes after the listening line: the lifecycle is ready once every
    # component started, and its signal handlers are in place since before the first start.
    return Server("warden", _warden_argv(hang), env, r"warden-event state ready")


def uvicorn_server(graceful: float | None = None) -> Server:
    def argv(tmp: Path) -> list[str]:
        extra = [] if graceful is None else ["--timeout-graceful-shutdown", f"{graceful:g}"]
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(APPS),
            "lifecycle_asgi:app",
            "--host",
            HOST,
            "--port",
            "0",
            "--no-access-log",
            *extra,
        ]

    return Server("uvicorn", argv, _asgi_env, r"Uvicorn running on http://[\d.]+:(\d+)")


def hypercorn_server(graceful: float) -> Server:
    def argv(tmp: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "hypercorn",
            "--bind",
            f"{HOST}:0",
            "--graceful-timeout",
            f"{graceful:g}",
            "lifecycle_asgi:app",
        ]

    return Server("hypercorn", argv, _asgi_env, r"Running on http://[\d.]+:(\d+)")


def _port(child: Child) -> int:
    match = child.wait_line(r"(?:listening on|[Rr]unning on) http://[\d.]+:(\d+)")
    return int(match.group(1))


# -- the kernel's view of a listener ----------------------------------------------------------

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_TCP_LISTEN = 10


class ListenerProbe:
    """Asks the kernel whether a TCP socket listens on a port, without connecting to it.

    One ``SOCK_DIAG_BY_FAMILY`` dump of the listening IPv4 TCP sockets (``ss -lt4`` does the
    same); about 20 us, and the server process is not involved at all.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_SOCK_DIAG)
        # struct inet_diag_req_v2: family, protocol, ext, pad, states, then a zero sockid.
        request = struct.pack(
            "=BBBBI", socket.AF_INET, socket.IPPROTO_TCP, 0, 0, 1 << _TCP_LISTEN
        ) + bytes(48)
        header = struct.pack(
            "=IHHII", 16 + len(request), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0
        )
        self._request = header + request

    def listening(self) -> bool:
        self._sock.send(self._request)
        found = False
        while True:
            data = self._sock.recv(1 << 16)
            offset = 0
            while offset < len(data):
                length, kind = struct.unpack_from("=IH", data, offset)
                if kind == _NLMSG_DONE:
                    return found
                if kind == _NLMSG_ERROR:
                    raise OSError("NETLINK_SOCK_DIAG dump failed")
                # struct inet_diag_msg: 4 bytes, then the sockid whose first field is the
                # source port in network byte order.
                (sport,) = struct.unpack_from("!H", data, offset + 16 + 4)
                found = found or sport == self.port
                offset += (length + 3) & ~3

    def wait_closed(self, timeout: float) -> float:
        """``time.monotonic()`` at the first probe that finds no listener."""
        deadline = time.monotonic() + timeout
        while self.listening():
            if time.monotonic() > deadline:
                raise BenchError(f"port {self.port} still listening after {timeout:g}s")
            time.sleep(PROBE_INTERVAL)  # the probe's period, not a synchronisation
        return time.monotonic()

    def refused(self) -> bool:
        """A connect is refused now (what "listener closed" means to a client)."""
        with socket.socket() as client:
            client.settimeout(1.0)
            return client.connect_ex((HOST, self.port)) == errno.ECONNREFUSED

    def close(self) -> None:
        self._sock.close()


# -- (a) and (b): SIGTERM -> readiness false, listener closed, exit ---------------------------


@dataclass
class StopSample:
    listener_closed: float
    exit: float | None
    readiness_false: float | None
    code: int | None


def measure_stop(server: Server, *, loaded: bool, tmp: Path) -> tuple[StopSample, int | None]:
    """One run: start, (load), SIGTERM, observe. Returns the sample and the load's req/s."""
    rps = None
    with started(server.argv(tmp), tmp=tmp, env=server.env(tmp)) as child:
        child.wait_line(server.listening)
        port = _port(child)
        probe = ListenerProbe(port)
        try:
            if not probe.listening():
                raise BenchError(f"{server.name} printed port {port} but does not listen", child)
            with contextlib.ExitStack() as stack:
                if loaded:
                    load = stack.enter_context(
                        started(
                            [
                                sys.executable,
                                str(APPS / "lifecycle_load.py"),
                                "--port",
                                str(port),
                                "--connections",
                                str(LOAD_CONNECTIONS),
                                "--path",
                                LOAD_PATH,
                            ],
                            tmp=tmp,
                        )
                    )
                    rps = int(load.wait_line(r"^loaded .* rps=(\d+)", timeout=90).group(1))
                sent = time.monotonic()
                os.kill(child.pid, signal.SIGTERM)
                closed = probe.wait_closed(timeout=30)
                if not probe.refused():
                    raise BenchError(f"{server.name}: listener gone but connect not refused")
                exited = child.wait_exit(30)
                if exited is None:
                    raise BenchError(f"{server.name} did not exit within 30 s of SIGTERM", child)
        finally:
            probe.close()
        readiness = None
        if server.name == "warden":
            match = re.search(r"^warden-event state draining (\S+)$", child.output(), re.M)
            if match is None:
                raise BenchError("warden printed no draining event", child)
            readiness = float(match.group(1)) - sent
        sample = StopSample(closed - sent, exited - sent, readiness, child.code)
    return sample, rps


# -- (c) overshoot past the deadline ----------------------------------------------------------


@dataclass
class DeadlineSample:
    overshoot: float | None  # None: did not exit, killed at the cap
    code: int | None


def measure_deadline(server: Server, hang: str, *, tmp: Path) -> DeadlineSample:
    with started(server.argv(tmp), tmp=tmp, env=server.env(tmp)) as child:
        child.wait_line(server.listening)
        port = _port(child)
        with contextlib.ExitStack() as stack:
            if server.name != "warden":
                # One request in flight that never finishes; warden's hang is in a stop.
                client = stack.enter_context(socket.create_connection((HOST, port), timeout=5))
                client.sendall(f"GET /hang/{hang} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
                child.wait_line(r"^hanging$")
            sent = time.monotonic()
            os.kill(child.pid, signal.SIGTERM)
            exited = child.wait_exit(NEVER_EXITS_CAP)
        if exited is None:
            return DeadlineSample(None, None)
        return DeadlineSample(exited - sent - DEADLINE, child.code)


# -- statistics and report --------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (linear interpolation between the closest ranks)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(seconds: float) -> str:
    value = seconds * 1000
    return f"{value:.2f} ms" if abs(value) < 10 else f"{value:.1f} ms"


def ratio(peer: float, ours: float) -> str:
    return f"{peer / ours:.1f}x" if ours > 0 else "n/a"


@dataclass
class Results:
    idle: dict[str, list[StopSample]] = field(default_factory=dict)
    loaded: dict[str, list[StopSample]] = field(default_factory=dict)
    load_rps: dict[str, list[int]] = field(default_factory=dict)
    deadline: dict[tuple[str, str], list[DeadlineSample]] = field(default_factory=dict)
    time_wait_at_idle: int = 0


def _values(samples: list[StopSample], attr: str) -> list[float]:
    values = [getattr(sample, attr) for sample in samples]
    return [value for value in values if value is not None]


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}" for name in ("uvicorn", "h11", "hypercorn")
    )
    nproc = len(os.sched_getaffinity(0))
    return (
        f"{nproc} CPUs ({cpu}), Linux {platform.release()}, "
        f"Python {platform.python_version()}; {versions}; warden {_warden_version()}"
    )


def _warden_version() -> str:
    try:
        return importlib.metadata.version("warden")
    except importlib.metadata.PackageNotFoundError:
        return "(source tree)"


def _loadavg() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/loadavg").read_text().split()[0]
    return "?"


def render(results: Results, plan: Plan, command: str, seconds: float, load: str) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        BEGIN,
        "## Lifecycle: stop latency and deadline overshoot (issue 2)",
        "",
        f"`{command}` — {now}, {seconds:.0f} s; {machine()}; "
        f"1-min load average before / after the run: {load}.",
        "",
    ]
    if plan.quick:
        out += ["**Quick smoke run: too few repetitions for the figures to mean much.**", ""]
    out += [
        "warden runs `examples/http_service.py` (through `bench/apps/lifecycle_warden.py`, which "
        "adds a timeline observer printing each state's monotonic stamp); uvicorn and hypercorn "
        "run `bench/apps/lifecycle_asgi.py`, the same endpoints as a plain ASGI app "
        "(`python -m uvicorn --no-access-log`, h11, asyncio loop; `python -m hypercorn`, its "
        "default of one worker process under a parent). Runs alternate between the servers. "
        '"Listener closed" is when the kernel no longer lists the port as listening '
        "(sock_diag probe every ~0.15 ms, then a connect is checked to be refused).",
        "",
    ]
    # (a)
    out += [
        "### (a) SIGTERM → readiness false / listener closed",
        "",
        "| load | warden: readiness false p50 / p99 | warden: listener closed p50 / p99 "
        "| uvicorn: listener closed p50 / p99 | uvicorn ÷ warden (listener, p50) | runs |",
        "|---|---|---|---|---|---|",
    ]
    for label, table in (("idle", results.idle), ("1,000 in flight", results.loaded)):
        w, u = table.get("warden", []), table.get("uvicorn", [])
        if not w or not u:
            continue
        ready = _values(w, "readiness_false")
        wl, ul = _values(w, "listener_closed"), _values(u, "listener_closed")
        out.append(
            f"| {label} | {ms(pct(ready, 50))} / {ms(pct(ready, 99))} "
            f"| {ms(pct(wl, 50))} / {ms(pct(wl, 99))} | {ms(pct(ul, 50))} / {ms(pct(ul, 99))} "
            f"| {ratio(pct(ul, 50), pct(wl, 50))} | {len(w)} + {len(u)} |"
        )
    rps = {name: int(statistics.median(v)) for name, v in results.load_rps.items() if v}
    out += [
        "",
        f"Load: {LOAD_CONNECTIONS:,} keep-alive connections from a separate asyncio client, each "
        f"re-sending `GET {LOAD_PATH}` the moment its answer arrives (so ~1,000 requests are in "
        "flight when SIGTERM is sent; the servers are saturated: median "
        + ", ".join(f"{name} {value:,} req/s" for name, value in rps.items())
        + "). Readiness false is warden's own flag (uvicorn has none); the like-for-like "
        "comparison is the listener column.",
        "",
        "Reading: " + _reading_a(results),
        "",
    ]
    # (b)
    wx = _values(results.idle.get("warden", []), "exit")
    ux = _values(results.idle.get("uvicorn", []), "exit")
    if wx and ux:
        out += [
            "### (b) SIGTERM → process exit, idle (kill → `waitpid` returns)",
            "",
            "| server | p50 | p99 | exit code | runs |",
            "|---|---|---|---|---|",
            f"| warden (`examples/http_service.py`) | {ms(pct(wx, 50))} | {ms(pct(wx, 99))} "
            f"| {_codes(results.idle['warden'])} | {len(wx)} |",
            f"| uvicorn (`python -m uvicorn`) | {ms(pct(ux, 50))} | {ms(pct(ux, 99))} "
            f"| {_codes(results.idle['uvicorn'])} | {len(ux)} |",
            "",
            f"Reading: uvicorn takes {ratio(pct(ux, 50), pct(wx, 50))} as long as warden to "
            f"exit at p50 ({ms(pct(ux, 50))} vs {ms(pct(wx, 50))}); both include ~20 ms of "
            "interpreter finalisation, and warden's includes its leak report. "
            f"TCP sockets in TIME_WAIT on the machine when the idle runs began: "
            f"{results.time_wait_at_idle:,}.",
            "",
        ]
    # (c)
    out += [
        f"### (c) Overshoot past a {DEADLINE:g} s shutdown deadline when something hangs",
        "",
        "Overshoot = exit - (SIGTERM + 1 s). warden: `WARDEN_SHUTDOWN_TIMEOUT=1` and one extra "
        "component whose async stop hangs; peers: `--timeout-graceful-shutdown 1` (uvicorn), "
        "`--graceful-timeout 1` (hypercorn), one in-flight request that hangs. Goal ≤ 50 ms.",
        "",
        "| hang | server | overshoot p50 | overshoot max | exit code | runs |",
        "|---|---|---|---|---|---|",
    ]
    hangs = {"busy": "busy loop (blocks the loop)", "async": "never finishes (awaits forever)"}
    for (name, hang), samples in results.deadline.items():
        done = [s.overshoot for s in samples if s.overshoot is not None]
        killed = len(samples) - len(done)
        if not done:
            cells = f"did not exit (killed after {NEVER_EXITS_CAP:g} s) | — | — "
        else:
            note = f" ({killed} of {len(samples)} killed after {NEVER_EXITS_CAP:g} s)" * bool(
                killed
            )
            cells = f"{ms(pct(done, 50))} | {ms(max(done))}{note} | {_codes(samples)} "
        out.append(f"| {hangs[hang]} | {name} | {cells}| {len(samples)} |")
    out += ["", "Reading: " + _reading_c(results), "", END]
    return "\n".join(out) + "\n"


def _codes(samples: Sequence[StopSample | DeadlineSample]) -> str:
    return ", ".join(sorted({str(s.code) for s in samples if s.code is not None})) or "—"


def _reading_a(results: Results) -> str:
    parts = []
    for label, table in (("idle", results.idle), ("loaded", results.loaded)):
        w, u = table.get("warden", []), table.get("uvicorn", [])
        if w and u:
            ready = pct(_values(w, "readiness_false"), 50)
            wl = pct(_values(w, "listener_closed"), 50)
            ul = pct(_values(u, "listener_closed"), 50)
            parts.append(
                f"{label}, warden turns readiness false in {ms(ready)} and closes its listener "
                f"in {ms(wl)} (p50), uvicorn closes its listener in {ms(ul)}"
            )
    return "; ".join(parts) + " (uvicorn notices a signal on its 0.1 s main-loop tick)."


def _reading_c(results: Results) -> str:
    parts = []
    for (name, hang), samples in results.deadline.items():
        done = [s.overshoot for s in samples if s.overshoot is not None]
        if name == "warden" and done:
            verdict = "meets" if max(done) <= 0.050 else "misses"
            how = "busy-loops" if hang == "busy" else "awaits forever"
            parts.append(
                f"warden {verdict} the 50 ms goal when the stop {how} (max {ms(max(done))})"
            )
    never = [
        f"{name} ({hang})"
        for (name, hang), samples in results.deadline.items()
        if any(s.overshoot is None for s in samples)
    ]
    if never:
        parts.append("never exited on their own: " + ", ".join(never))
    return "; ".join(parts) + "."


# -- driver -----------------------------------------------------------------------------------


def _raise_nofile() -> None:
    # 1,000 client sockets and 1,000 server sockets, inherited by every child.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192 if hard == resource.RLIM_INFINITY else min(hard, 8192)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < 2 * LOAD_CONNECTIONS + 100:
        raise SystemExit(f"RLIMIT_NOFILE hard limit {hard} is too low for the loaded runs")


def _time_wait() -> int:
    """TCP sockets in TIME_WAIT in this network namespace (they cost warden's leak report)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/net/sockstat").read_text().splitlines():
            if line.startswith("TCP:"):
                fields = line.split()
                return int(fields[fields.index("tw") + 1])
    return 0


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(plan: Plan, tmp: Path) -> Results:
    results = Results()
    servers = [warden_server(), uvicorn_server()]
    results.time_wait_at_idle = _time_wait()
    for label, reps, loaded, table in (
        ("idle", plan.idle, False, results.idle),
        ("loaded", plan.loaded, True, results.loaded),
    ):
        for rep in range(reps):
            # Alternate who goes first, so a drift of the machine weighs on both alike.
            for server in servers if rep % 2 == 0 else servers[::-1]:
                sample, rps = measure_stop(server, loaded=loaded, tmp=tmp)
                table.setdefault(server.name, []).append(sample)
                if rps is not None:
                    results.load_rps.setdefault(server.name, []).append(rps)
            if rep % 10 == 0 or rep == reps - 1:
                _progress(f"(a,b) {label}: {rep + 1}/{reps}")
    cases = [
        (server, hang)
        for hang in ("busy", "async")
        for server in (warden_server(hang), uvicorn_server(DEADLINE), hypercorn_server(DEADLINE))
    ]
    for rep in range(plan.deadline):
        for server, hang in cases:
            samples = results.deadline.setdefault((server.name, hang), [])
            # A server that never exits on its own would cost the cap on every run: two
            # runs establish it.
            if len(samples) >= 2 and all(s.overshoot is None for s in samples):
                continue
            samples.append(measure_deadline(server, hang, tmp=tmp))
        _progress(f"(c) deadline: {rep + 1}/{plan.deadline}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run; prints, does not write")
    parser.add_argument("--output", type=Path, help=f"markdown file to update (default {DOC})")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    output: Path | None = args.output or (None if plan.quick else DOC)
    _raise_nofile()
    command = " ".join(["python", "bench/bench_lifecycle.py", *(argv or sys.argv[1:])])
    began, load_before = time.monotonic(), _loadavg()
    with tempfile.TemporaryDirectory(prefix="warden-bench-") as tmp:
        results = run(plan, Path(tmp))
    load = f"{load_before} / {_loadavg()}"
    section = render(results, plan, command, time.monotonic() - began, load)
    print(section)
    if output is not None:
        write_section("lifecycle", section, output)
        _progress(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
