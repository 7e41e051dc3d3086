"""systemd protocols benchmark (issue 4): held sockets cost nothing; READY relay latency.

    python bench/bench_systemd.py           # about 5 minutes; writes docs/benchmarks.md
    python bench/bench_systemd.py --quick   # smoke run: small numbers, prints only

Needs wrk (``apt-get install wrk``), uvicorn and gunicorn (``pip install -e '.[bench]'``).

(a) Requests per second through a socket warden holds against the same server binding its
    own socket, in the same run with the same load generator (wrk). Each server runs one worker
    process; the two ways alternate run by run (A B, B A, ...), a fresh server each run, a 1 s
    wrk warm-up before each measured run. warden's way: ``warden run --listen
    tcp://127.0.0.1:PORT --ready http://127.0.0.1:PORT/ -- uvicorn --fd 3 app:app`` (gunicorn
    takes LISTEN_FDS itself). The socket is passed, not proxied: after the handover warden is
    not on the data path at all, so the goal is no difference beyond noise. uvicorn is also
    run given ``socket.socket(fileno=3)`` under warden, and ``uvicorn --fd 3`` under
    ``systemd-socket-activate`` (no warden), to show where the cost of ``--fd`` comes from.
(b) READY relay latency: a program sends READY=1 to warden's NOTIFY_SOCKET; this process,
    standing for systemd, is warden's own NOTIFY_SOCKET. Latency = the monotonic time this
    process receives warden's READY=1 minus the program's ``time.monotonic()`` just before its
    send (CLOCK_MONOTONIC is system-wide). For scale, the same program sending READY=1 straight
    to this process (no warden: one datagram hop) is measured in the same run, alternating.

Every process started is killed by pid at the end of its run (descendants listed from /proc).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from _doc import DOC, markers, write_section
from _machine import machine, versions
from _net import answers, free_port
from _procs import descendants

ROOT = Path(__file__).resolve().parent.parent
PEERS = ("uvicorn", "h11", "gunicorn", "warden")
WRK = shutil.which("wrk") or "/usr/bin/wrk"
START_TIMEOUT = 30.0

#: The same tiny app for both servers: 2 bytes of body, so the server's own work dominates.
APP = """\
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


def wsgi(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
"""

#: The program of (b): one timestamp just before READY=1, on stdout after the send.
READY_CHILD = """\
import os, socket, sys, time
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
address = os.environ["NOTIFY_SOCKET"]
sock.connect(address)
sent_at = time.monotonic()
sock.send(b"READY=1")
print(repr(sent_at), flush=True)
if sys.argv[1:] == ["stay"]:
    time.sleep(3600)
"""


# -- processes --------------------------------------------------------------------------------


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, a few seconds' grace, then SIGKILL to it and every descendant, by pid."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            for pid in [*descendants(proc.pid), proc.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.01)


class Manager:
    """Stands for systemd above warden: a notify socket, each datagram stamped on arrival."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))

    def wait_ready(self, timeout: float = START_TIMEOUT) -> float:
        """The monotonic time a datagram with READY=1 arrived."""
        deadline = time.monotonic() + timeout
        while True:
            self.sock.settimeout(max(0.001, deadline - time.monotonic()))
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                raise RuntimeError(f"no READY=1 within {timeout:g}s") from None
            at = time.monotonic()
            if b"READY=1" in data.split(b"\n"):
                return at

    def drain(self) -> None:
        self.sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                self.sock.recv(4096)
        self.sock.setblocking(True)

    def close(self) -> None:
        self.sock.close()
        self.path.unlink(missing_ok=True)


# -- (a) throughput -----------------------------------------------------------------------------


#: uvicorn on fd 3 with the family asked of the kernel: ``uvicorn --fd 3`` calls
#: ``socket.fromfd(3, AF_UNIX, ...)``, so asyncio takes a TCP listener for a UNIX one and never
#: sets TCP_NODELAY on the connections it accepts (``asyncio.base_events._set_nodelay``).
UVICORN_FILENO = """\
import socket, sys
import uvicorn

sys.path.insert(0, sys.argv[1])
sock = socket.socket(fileno=3)  # family, type and protocol read from the descriptor
config = uvicorn.Config("app:app", log_level="warning", access_log=False)
uvicorn.Server(config).run(sockets=[sock])
"""


@dataclass(frozen=True)
class Way:
    """One way to serve; ``warden``: under ``warden run --listen``, which holds the socket."""

    label: str
    argv: Callable[[int], list[str]]  #: from the port
    warden: bool = True


@dataclass(frozen=True)
class Server:
    name: str
    ways: tuple[Way, ...]  #: the first is the server's own socket, the baseline


def servers(work: Path) -> list[Server]:
    py = sys.executable
    uvicorn = [py, "-m", "uvicorn", "--app-dir", str(work), "--no-access-log"]
    uvicorn += ["--log-level", "warning"]
    gunicorn = [py, "-m", "gunicorn", "--chdir", str(work), "--workers", "1"]
    gunicorn += ["--log-level", "warning"]
    (work / "uvicorn_fileno.py").write_text(UVICORN_FILENO)
    return [
        Server(
            "uvicorn",
            (
                Way(
                    "own socket (`--host --port`)",
                    lambda port: [*uvicorn, "--host", "127.0.0.1", "--port", str(port), "app:app"],
                    warden=False,
                ),
                Way("warden, `uvicorn --fd 3`", lambda port: [*uvicorn, "--fd", "3", "app:app"]),
                Way(
                    "no warden: `systemd-socket-activate -l` + `uvicorn --fd 3`",
                    lambda port: [
                        *("systemd-socket-activate", "-l", f"127.0.0.1:{port}"),
                        *(*uvicorn, "--fd", "3", "app:app"),
                    ],
                    warden=False,
                ),
                Way(
                    "warden, `Server.run(sockets=[socket.socket(fileno=3)])`",
                    lambda port: [py, str(work / "uvicorn_fileno.py"), str(work)],
                ),
            ),
        ),
        Server(
            "gunicorn",
            (
                Way(
                    "own socket (`--bind`)",
                    lambda port: [*gunicorn, "--bind", f"127.0.0.1:{port}", "app:wsgi"],
                    warden=False,
                ),
                Way("warden, LISTEN_FDS", lambda port: [*gunicorn, "app:wsgi"]),
            ),
        ),
    ]


def wrk(port: int, seconds: float, connections: int) -> tuple[float, str]:
    argv = [WRK, "-t1", f"-c{connections}", f"-d{seconds:g}s", f"http://127.0.0.1:{port}/"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 30)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    if rps is None:
        raise RuntimeError(f"wrk said:\n{out.stdout}{out.stderr}")
    errors = [
        line.strip() for line in out.stdout.splitlines() if "errors" in line or "Non-2xx" in line
    ]
    return float(rps.group(1)), "; ".join(errors)


def one_load_run(way: Way, work: Path, seconds: float, connections: int) -> tuple[float, str]:
    port = free_port()
    env = {**os.environ, "HOME": str(work)}  # gunicorn 27 puts a control socket under ~
    env.pop("NOTIFY_SOCKET", None)
    manager = None
    if not way.warden:
        argv = way.argv(port)
    else:
        manager = Manager(work / "up.sock")
        env["NOTIFY_SOCKET"] = str(manager.path)
        argv = [sys.executable, "-m", "warden", "run", "--listen", f"tcp://127.0.0.1:{port}"]
        argv += ["--ready", f"http://127.0.0.1:{port}/", "--", *way.argv(port)]
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work
    )
    try:
        if manager is not None:
            manager.wait_ready()  # warden's READY=1 upward: its http gate got a 200
        else:
            wait_for(lambda: answers(port), f"{argv[2]} on port {port}")
        wrk(port, 1, connections)  # warm-up, not counted
        return wrk(port, seconds, connections)
    finally:
        stop(proc)
        if manager is not None:
            manager.close()


@dataclass
class Load:
    rps: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def measure_load(
    names: Sequence[str], rounds: int, seconds: float, connections: int, work: Path
) -> dict[str, dict[str, Load]]:
    """Per server, per way: req/s of each run. The order of the ways rotates every round.

    Not a warden way and not the first (the baseline) is a way to show a peer's behaviour.
    """
    results: dict[str, dict[str, Load]] = {}
    for server in servers(work):
        if server.name not in names:
            continue
        by_way = results.setdefault(server.name, {w.label: Load() for w in server.ways})
        for n in range(rounds):
            shift = n % len(server.ways)
            for way in server.ways[shift:] + server.ways[:shift]:
                rps, errors = one_load_run(way, work, seconds, connections)
                by_way[way.label].rps.append(rps)
                if errors:
                    by_way[way.label].errors.append(errors)
                print(f"  {server.name} | {way.label} | run {n + 1}: {rps:,.0f} req/s {errors}")
    return results


# -- (b) READY relay latency --------------------------------------------------------------------


def one_ready(way: str, child: Path, work: Path) -> float:
    """Seconds from the program's READY=1 to READY=1 at the manager."""
    manager = Manager(work / "up.sock")
    env = {**os.environ, "NOTIFY_SOCKET": str(manager.path)}
    if way == "warden":
        argv = [sys.executable, "-m", "warden", "run", "--ready", "notify", "--"]
        argv += [sys.executable, str(child), "stay"]
    else:
        argv = [sys.executable, str(child)]
    proc = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        received = manager.wait_ready()
        assert proc.stdout is not None
        sent = float(proc.stdout.readline())
        return received - sent
    finally:
        stop(proc)
        manager.close()


def measure_ready(starts: int, work: Path) -> dict[str, list[float]]:
    child = work / "ready_child.py"
    child.write_text(READY_CHILD)
    found: dict[str, list[float]] = {"warden": [], "direct": []}
    for n in range(starts):
        ways = ("warden", "direct") if n % 2 == 0 else ("direct", "warden")
        for way in ways:
            found[way].append(one_ready(way, child, work))
    return found


# -- report -------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def ms(seconds: float) -> str:
    value = seconds * 1000
    return f"{value:.3g} ms" if value < 10 else f"{value:.1f} ms"


def spread(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def report(
    load: dict[str, dict[str, Load]],
    ready: dict[str, list[float]],
    *,
    started: datetime.datetime,
    elapsed: float,
    loadavg: tuple[float, float],
    rounds: int,
    seconds: float,
    connections: int,
) -> str:
    lines = [
        "## systemd protocols: held sockets and the READY relay (issue 4)",
        "",
        f"`python bench/bench_systemd.py` — {started:%Y-%m-%d %H:%M} UTC, {elapsed:.0f} s; "
        f"{machine()}; {versions(PEERS, WRK)}; 1-min load average before / after the run: "
        f"{loadavg[0]:.2f} / {loadavg[1]:.2f}. wrk from Debian (`apt-get install wrk`).",
        "",
        "### (a) Requests per second: socket held by warden vs the server's own socket",
        "",
        f"`wrk -t1 -c{connections} -d{seconds:g}s http://127.0.0.1:PORT/` (2-byte body), "
        f"{rounds} runs per way, the ways' order rotating every round, a fresh server and a "
        "1 s wrk warm-up each run. One worker process per server (uvicorn: asyncio + h11; "
        "gunicorn: one sync worker). Through warden: `warden run --listen tcp://127.0.0.1:PORT "
        "--ready http://127.0.0.1:PORT/ -- SERVER`. Spread: sample standard deviation over the "
        'runs; "diff ÷ sd": the difference of the means over the larger of the two spreads.',
        "",
        "| server | way | req/s mean ± sd | ÷ own socket | diff ÷ sd | runs (req/s, in order) |",
        "|---|---|---|---|---|---|",
    ]
    readings = []
    for name, by_way in load.items():
        labels = list(by_way)
        own = by_way[labels[0]]
        own_mean = statistics.mean(own.rps)
        for label in labels:
            one = by_way[label]
            mean = statistics.mean(one.rps)
            runs = ", ".join(f"{r:,.0f}" for r in one.rps)
            if label == labels[0]:
                lines.append(
                    f"| {name} | {label} | {mean:,.0f} ± {spread(one.rps):,.0f} | 1 | — | {runs} |"
                )
                continue
            noise = max(spread(own.rps), spread(one.rps)) or 1.0
            ratio = mean / own_mean
            diff = (mean - own_mean) / noise
            lines.append(
                f"| {name} | {label} | {mean:,.0f} ± {spread(one.rps):,.0f} | {ratio:.3f} "
                f"| {diff:+.2f} | {runs} |"
            )
            verdict = "within" if abs(diff) <= 1 else "beyond"
            readings.append(
                f"{name}, {label}: {ratio:.3f}x its own socket, {verdict} the run-to-run spread"
            )
        errors = sorted({e for one in by_way.values() for e in one.errors})
        if errors:
            readings.append(f"{name}: wrk reported {'; '.join(errors)}")
    lines += [
        "",
        "Reading: " + "; ".join(readings) + ".",
        "",
        "`uvicorn --fd 3` is slow with *any* inherited TCP socket, not only warden's (see the "
        "`systemd-socket-activate` row, no warden involved): uvicorn "
        "calls `socket.fromfd(3, AF_UNIX, SOCK_STREAM)`, so asyncio believes the listener is a "
        "UNIX socket and never sets TCP_NODELAY on accepted connections; each keep-alive "
        "response written in two sends then waits on Nagle and the peer's delayed ACK (~40 ms; "
        f"{connections} connections ÷ 40 ms ≈ 1,600 req/s). The same uvicorn given "
        "`socket.socket(fileno=3)` (the family read from the descriptor) serves as fast "
        "through warden as on its own socket. TCP_NODELAY set on the listening socket is "
        "inherited by accepted ones on Linux, which is what systemd's `NoDelay=` does.",
        "",
    ]

    w, d = ready["warden"], ready["direct"]
    lines += [
        "### (b) READY=1 relay: the program's send to warden's READY=1 at the manager",
        "",
        "| path | p50 | p99 | max | starts |",
        "|---|---|---|---|---|",
        f"| program → warden → manager | {ms(percentile(w, 50))} | {ms(percentile(w, 99))} "
        f"| {ms(max(w))} | {len(w)} |",
        f"| program → manager (no warden, one hop) | {ms(percentile(d, 50))} "
        f"| {ms(percentile(d, 99))} | {ms(max(d))} | {len(d)} |",
        "",
        f"Reading: warden adds {ms(percentile(w, 50) - percentile(d, 50))} at p50 to the one "
        "hop: it handles the datagram, ends the readiness gate, finishes the lifecycle's start "
        "and sends READY=1 from the `ready` state's timeline event.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smoke run; prints, writes nothing")
    parser.add_argument("--servers", default="uvicorn,gunicorn", help="comma-separated")
    args = parser.parse_args(argv)
    if not Path(WRK).exists():
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2
    rounds, seconds, starts = (1, 2.0, 6) if args.quick else (5, 7.0, 50)
    connections = 64
    started = datetime.datetime.now(datetime.UTC)
    t0 = time.monotonic()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="warden-bench-") as tmp:
        work = Path(tmp)
        (work / "app.py").write_text(APP)
        print("(a) requests per second, own socket vs warden's")
        load = measure_load(args.servers.split(","), rounds, seconds, connections, work)
        print("(b) READY relay latency")
        ready = measure_ready(starts, work)
    section = report(
        load,
        ready,
        started=started,
        elapsed=time.monotonic() - t0,
        loadavg=(load_before, os.getloadavg()[0]),
        rounds=rounds,
        seconds=seconds,
        connections=connections,
    )
    print(section)
    if not args.quick:
        begin, end = markers("systemd")
        write_section("systemd", f"{begin}\n{section}\n{end}\n")
        print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
