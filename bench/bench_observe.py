"""Observability benchmark (issue 14): the health server's idle cost, scrape latency, and
SIGTERM -> /readyz 503 under load, next to peers in the same run.

    python bench/bench_observe.py           # about two minutes; writes docs/benchmarks.md
    python bench/bench_observe.py --quick   # smoke run; prints only

Two services, each with and without warden's health server:

* the library: examples/http_service.py (a warden.Lifecycle), run by bench/apps/
  observe_service.py in four modes: without a health server; with warden's
  (``serve_health``) never scraped; with warden's scraped once (the text written);
  and with the peer, prometheus_client's own ``start_http_server``;
* the supervisor: ``warden run -- sleep 3600`` without ``--health``; with
  ``--health 127.0.0.1:PORT`` probed once on /readyz and /livez but never scraped; and with
  it scraped once. ``warden run --health`` starts the same
  ``serve_health``.

Every interpreter is a fresh virtual environment's (``python -m venv``), warden and
prometheus_client found through PYTHONPATH, as bench_supervisor.py does: none of this
machine's site-packages ``.pth`` start-up hooks count in anyone's resident memory.

(a) Idle cost over a window, all seven at once: wake-ups (voluntary + involuntary context
    switches of every thread, from /proc/PID/task/*/status) and resident memory (VmRSS).
    For ``warden run``, the resident memory that ssl and prometheus_client would take if
    they wrote the text (as before issue 24) is also measured apart, in one more interpreter.
(b) /metrics scrape latency: sequential GETs on a new connection each, warden's server (the
    library's and ``warden run --health``'s) vs the peer's (which exposes its default
    registry: process and GC collectors).
(c) SIGTERM -> /readyz 503 while 1,000 requests are in flight on the service's port: the bench
    reads ``time.monotonic()`` just before ``os.kill`` and a prober thread GETs /readyz in a
    tight loop; the figure is when the first 503 arrives. Peer: the example's own /readyz,
    answered by the service's event loop (the one busy with the 1,000 requests). Then the
    same with ``warden run --health`` supervising the example (the 1,000 requests held by the
    example, the SIGTERM sent to warden): warden's /readyz vs the example's own, which turns
    503 once warden has forwarded the signal.

Every process started is killed by PID at the end of its run (descendants read from /proc);
waits are on lines with a timeout.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import os
import re
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from _doc import markers, write_section
from _machine import machine, versions
from _net import free_port
from _procs import descendants

ROOT = Path(__file__).resolve().parent.parent
APP = Path(__file__).resolve().parent / "apps" / "observe_service.py"
BLOCK = 1.0  # seconds the loop is stuck at the signal in the second SIGTERM case
MODES = {
    "none": "no health server",
    "health": "warden `serve_health`, not scraped",
    "scraped": "warden `serve_health`, after one /metrics scrape",
    "prometheus": "peer: prometheus_client `start_http_server`",
}
RUN_MODES = {
    "run": "`warden run -- sleep 3600`",
    "run-health": "`warden run --health`, probed once (/readyz, /livez), never scraped",
    "run-scraped": "`warden run --health`, after one /metrics scrape",
}
READY = r'"event": "state", "state": "ready"'  # warden run's JSON line on stderr

# Replaced in main() by a fresh virtual environment's interpreter and its environment.
PYTHON = sys.executable
ENV: dict[str, str] = {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def clean_python(tmp: Path) -> tuple[str, dict[str, str]]:
    """A fresh venv's interpreter, warden and prometheus_client found through PYTHONPATH.

    bench_supervisor.py's ``clean_python``: what a user's install looks like, without this
    machine's site-packages, whose ``.pth`` start-up hooks (a sandbox here imports certifi in
    every interpreter) would count in resident memory. prometheus_client comes alone, by a
    symbolic link in a directory of its own (a PYTHONPATH entry runs no ``.pth`` file).
    """
    import prometheus_client

    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    deps = tmp / "deps"
    deps.mkdir()
    (deps / "prometheus_client").symlink_to(Path(prometheus_client.__file__).resolve().parent)
    path = os.pathsep.join([str(ROOT / "src"), str(deps)])
    return str(venv / "bin" / "python"), {**os.environ, "PYTHONPATH": path}


@dataclass
class Service:
    proc: subprocess.Popen[str]
    url: str | None  # the example's own port (none for ``warden run -- sleep``)
    health: str | None


def example_argv(mode: str, drain: float = 5.0, block: float = 0.0) -> list[str]:
    return [PYTHON, str(APP), mode, "--drain-delay", str(drain), "--block-on-term", str(block)]


def popen(argv: Sequence[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # warden run's log lines, read for its ready line
        text=True,
        start_new_session=True,
        env={**ENV, "WARDEN_SHUTDOWN_TIMEOUT": "30"},
    )


def kill_tree(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the process and every descendant, by pid; reap the process."""
    for pid in [*descendants(proc.pid), proc.pid] if proc.poll() is None else []:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(10)
    assert proc.stdout is not None
    proc.stdout.close()
    _PENDING.pop(proc.pid, None)


@contextlib.contextmanager
def service(mode: str, drain: float = 5.0, block: float = 0.0) -> Iterator[Service]:
    """The example as a library user runs it, in one of :data:`MODES`."""
    proc = popen(example_argv(mode, drain, block))
    try:
        health = None if mode == "none" else wait_line(proc, r"health (\S+)").group(1)
        url = wait_line(proc, r"listening on (\S+)").group(1)
        wait_line(proc, r"^idle")
        yield Service(proc, url, health)
    finally:
        kill_tree(proc)


@contextlib.contextmanager
def supervised(mode: str, tmp: Path, program: Sequence[str] = ()) -> Iterator[Service]:
    """``warden run [--health ADDR] -- PROGRAM`` in one of :data:`RUN_MODES`.

    PROGRAM is ``sleep 3600`` unless given; given, it is the example without a health
    server of its own, and its lines are waited for too.
    """
    health = None if mode == "run" else f"http://127.0.0.1:{free_port()}"
    control = tmp / f"control-{time.monotonic_ns()}.sock"  # each warden its own, as deployed
    argv = [PYTHON, "-m", "warden", "run", "--control", str(control)]
    if health is not None:
        argv += ["--health", health.removeprefix("http://")]
    proc = popen([*argv, "--", *(program or ("sleep", "3600"))])
    try:
        waits = [READY, *((r"listening on (\S+)", r"^idle") if program else ())]
        found = wait_lines(proc, waits)
        url = found[1].group(1) if program else None
        if mode == "run-health":  # probed as a kubelet does; no timer may outlive a probe
            assert health is not None and get(f"{health}/readyz")[0] == 200
            assert get(f"{health}/livez")[0] == 200
        elif mode == "run-scraped":
            assert health is not None and get(f"{health}/metrics")[0] == 200
        yield Service(proc, url, health)
    finally:
        kill_tree(proc)


def wait_line(proc: subprocess.Popen[str], pattern: str, timeout: float = 15.0) -> re.Match[str]:
    """The first line (from here on) matching ``pattern``."""
    return wait_lines(proc, [pattern], timeout)[0]


def wait_lines(
    proc: subprocess.Popen[str], patterns: Sequence[str], timeout: float = 15.0
) -> list[re.Match[str]]:
    """The first line (from here on) matching each pattern, in whatever order they come.

    Raw reads, so select() is exact; lines after the last match stay pending.
    """
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    pending = _PENDING.setdefault(proc.pid, bytearray())
    found: dict[int, re.Match[str]] = {}
    deadline = time.monotonic() + timeout
    while True:
        while b"\n" in pending:
            line, _, rest = bytes(pending).partition(b"\n")
            pending[:] = rest
            for index, pattern in enumerate(patterns):
                if index not in found and (match := re.search(pattern, line.decode())):
                    found[index] = match
            if len(found) == len(patterns):
                return [found[index] for index in range(len(patterns))]
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        pending += chunk
    missing = [p for index, p in enumerate(patterns) if index not in found]
    raise RuntimeError(f"no line matching {missing!r} from pid {proc.pid} within {timeout}s")


_PENDING: dict[int, bytearray] = {}


def idle_sample(pid: int) -> tuple[int, int]:
    """(context switches of every thread, VmRSS in KiB)."""
    switches = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        for line in Path(f"/proc/{pid}/task/{task}/status").read_text().splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                switches += int(line.split()[1])
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return switches, rss


def get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").split("/", 1)[0].rsplit(":", 1)
    path = "/" + url.removeprefix("http://").split("/", 1)[1] if url.count("/") > 2 else "/"
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# -- (a) idle -------------------------------------------------------------------------------


def measure_idle(window: float, tmp: Path) -> dict[str, tuple[int, int]]:
    results = {}
    with contextlib.ExitStack() as stack:
        running = {mode: stack.enter_context(service(mode)) for mode in MODES}
        running |= {mode: stack.enter_context(supervised(mode, tmp)) for mode in RUN_MODES}
        time.sleep(2.0)  # let start-up settle (threads finishing their first steps)
        before = {mode: idle_sample(s.proc.pid) for mode, s in running.items()}
        time.sleep(window)  # the measurement itself: nobody touches the services
        for mode, s in running.items():
            switches, rss = idle_sample(s.proc.pid)
            results[mode] = (switches - before[mode][0], rss)
    return results


# What a scrape would load if prometheus_client wrote the text, as it did before issue 24:
# warden run keeps ssl out of asyncio (src/warden/cli/__init__.py); prometheus_client
# imports it (its push gateway).
IMPORTS = """
import sys
def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:"))
sys.modules["ssl"] = None  # as `warden run` does
import asyncio, warden.supervisor._supervisor, warden.observe._server
del sys.modules["ssl"]
base = rss()
import ssl
with_ssl = rss()
import prometheus_client
print(with_ssl - base, rss() - with_ssl)
"""


def measure_imports() -> tuple[int, int]:
    """(KiB resident for ssl, KiB for prometheus_client after it), in a fresh interpreter."""
    out = subprocess.run(
        [PYTHON, "-c", IMPORTS], env=ENV, capture_output=True, text=True, check=True, timeout=60
    )
    ssl_kib, prometheus_kib = map(int, out.stdout.split())
    return ssl_kib, prometheus_kib


# -- (b) scrape latency -------------------------------------------------------------------


def measure_scrapes(count: int, tmp: Path) -> dict[str, list[float]]:
    results = {}
    for mode in ("scraped", "run-scraped", "prometheus"):
        with service(mode) if mode in MODES else supervised(mode, tmp) as s:
            assert s.health is not None
            times = []
            for _ in range(count):
                began = time.perf_counter()
                status, _body = get(f"{s.health}/metrics")
                times.append(time.perf_counter() - began)
                assert status == 200
            results[mode] = times
    return results


# -- (c) SIGTERM -> /readyz 503 under load ------------------------------------------------


def in_flight(url: str, count: int) -> list[socket.socket]:
    """``count`` slow requests sent and not answered yet (the server sleeps 20 s in each)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    socks = []
    for _ in range(count):
        sock = socket.create_connection((host, int(port)))
        sock.sendall(b"GET /slow?ms=20000 HTTP/1.1\r\nHost: x\r\n\r\n")
        socks.append(sock)
    return socks


def first_503(readyz: str, at: list[float], timeout: float = 10.0) -> None:
    """Poll ``readyz`` until it says 503 (its time into ``at``) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, _ = get(readyz)
        except OSError:
            continue
        if status == 503:
            at.append(time.monotonic())
            return


def sigterm_once(s: Service, readyz: str, load: int) -> float | None:
    """Seconds from SIGTERM (to ``s.proc``) to the first 503 of ``readyz``, ``load`` in flight."""
    assert s.url is not None
    socks = in_flight(s.url, load)
    try:
        assert get(readyz)[0] == 200
        seen: list[float] = []
        prober = threading.Thread(target=first_503, args=(readyz, seen))
        prober.start()
        began = time.monotonic()
        os.kill(s.proc.pid, signal.SIGTERM)
        prober.join(15)
        return seen[0] - began if seen else None
    finally:
        for sock in socks:
            sock.close()


def measure_sigterm(runs: int, load: int, block: float = 0.0) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"warden": [], "loop": []}
    for _ in range(runs):
        for which, values in results.items():
            with service("health", drain=5.0, block=block) as s:
                assert s.health is not None and s.url is not None
                readyz = f"{s.health}/readyz" if which == "warden" else f"{s.url}/readyz"
                if (took := sigterm_once(s, readyz, load)) is not None:
                    values.append(took)
    return results


def measure_sigterm_run(runs: int, load: int, tmp: Path) -> dict[str, list[float]]:
    """``warden run --health`` supervising the example (no health server of its own)."""
    results: dict[str, list[float]] = {"run": [], "child": []}
    for _ in range(runs):
        for which, values in results.items():
            with supervised("run-health", tmp, example_argv("none", drain=5.0)) as s:
                assert s.health is not None and s.url is not None
                readyz = f"{s.health}/readyz" if which == "run" else f"{s.url}/readyz"
                if (took := sigterm_once(s, readyz, load)) is not None:
                    values.append(took)
    return results


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    window = 5.0 if args.quick else 30.0
    began = time.monotonic()
    global PYTHON, ENV
    with tempfile.TemporaryDirectory(prefix="warden-bench-observe-") as name:
        tmp = Path(name)
        PYTHON, ENV = clean_python(tmp)
        idle = measure_idle(window, tmp)
        print(f"(a) {idle}", file=sys.stderr, flush=True)
        imports = measure_imports()
        scrapes = measure_scrapes(50 if args.quick else 500, tmp)
        print("(b) done", file=sys.stderr, flush=True)
        sigterm = measure_sigterm(1 if args.quick else 5, 1000)
        blocked = measure_sigterm(1 if args.quick else 3, 1000, block=BLOCK)
        run = measure_sigterm_run(1 if args.quick else 5, 1000, tmp)
        print("(c) done", file=sys.stderr, flush=True)
    elapsed = time.monotonic() - began
    section = render(args.quick, elapsed, window, idle, imports, scrapes, sigterm, blocked, run)
    print(section)
    if not args.quick:
        write_section("observe", section)


def p50(values: list[float]) -> str:
    return ms(statistics.median(values)) if values else "none seen"


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def render(
    quick: bool,
    elapsed: float,
    window: float,
    idle: dict[str, tuple[int, int]],
    imports: tuple[int, int],
    scrapes: dict[str, list[float]],
    sigterm: dict[str, list[float]],
    blocked: dict[str, list[float]],
    run: dict[str, list[float]],
) -> str:
    begin, end = markers("observe")
    command = "python bench/bench_observe.py" + (" --quick" if quick else "")
    out = [
        begin,
        "## Observability: health server, /metrics, SIGTERM → /readyz 503 (issue 14)",
        "",
        f"`{command}`, {datetime.date.today().isoformat()}, {elapsed:.0f} s; {machine()}; "
        f"{versions(['prometheus_client'])}.",
        "",
        "Two services: `examples/http_service.py` (a `warden.Lifecycle`, the library's "
        "`serve_health`) and `warden run -- sleep 3600` (`--health` starts the same server on "
        "a thread of the supervisor). Every interpreter is a fresh virtual environment's "
        "(`python -m venv`, warden and prometheus_client on PYTHONPATH), as in the supervisor "
        "section, so no start-up hook of this machine's site-packages counts in resident "
        "memory.",
        "",
        f"### (a) Idle cost over {window:g} s, all seven at once",
        "",
        "| service | wake-ups (context switches, all threads) | resident memory |",
        "|---|---|---|",
    ]
    for base, modes in (("none", MODES), ("run", RUN_MODES)):
        for mode, label in modes.items():
            switches, rss = idle[mode]
            extra = "" if mode == base else f" (+{(rss - idle[base][1]) / 1024:.1f} MiB)"
            out.append(f"| {label} | {switches} | {mib(rss)}{extra} |")
    health_cost = idle["run-health"][1] - idle["run"][1]
    scrape_cost = idle["run-scraped"][1] - idle["run-health"][1]
    ssl_kib, prometheus_kib = imports
    wakeups = {mode: idle[mode][0] for mode in ("health", "scraped", *RUN_MODES)}
    met = (
        "met"
        if not any(wakeups.values())
        else "NOT met: " + ", ".join(f"{mode} {n}" for mode, n in wakeups.items() if n)
    )
    out += [
        "",
        f"Goal: 0 wake-ups with the health server ({met}): its loop has no timer while "
        "idle, where the peer's `serve_forever` polls every 0.5 s. Library rows are relative "
        "to no health server, `warden run` rows to `warden run` without `--health`.",
        "",
        f"- `warden run --health`, never scraped: +{mib(health_cost)} (the server's thread, "
        "its event loop and the metrics' tallies).",
        f"- The first scrape: +{mib(scrape_cost)} more: the text is warden's own "
        "(`observe/_exposition.py`, byte for byte prometheus_client's), so nothing is "
        "imported for it. Rendering it with prometheus_client instead, as warden did "
        "before, would load, measured apart in a fresh interpreter with warden loaded: ssl "
        f"{mib(ssl_kib)} (`warden run` keeps asyncio from importing it; prometheus_client's "
        f"exposition module imports it for its push gateway), then prometheus_client "
        f"itself {mib(prometheus_kib)}.",
        "",
        "### (b) /metrics scrape latency (a new connection per scrape, sequential)",
        "",
        "| server | p50 | p99 | scrapes |",
        "|---|---|---|---|",
    ]
    labels = {
        "scraped": "warden `serve_health` (library)",
        "run-scraped": "`warden run --health`",
        "prometheus": MODES["prometheus"],
    }
    for mode, times in scrapes.items():
        q = statistics.quantiles(times, n=100)
        out.append(f"| {labels[mode]} | {ms(q[49])} | {ms(q[98])} | {len(times)} |")
    out += [
        "",
        "### (c) SIGTERM → first /readyz 503, with 1,000 requests in flight",
        "",
        "| /readyz served by | p50 | max | runs |",
        "|---|---|---|---|",
    ]
    rows = {
        "warden": "warden's health server (its own thread)",
        "loop": "peer: the service's own endpoint (its event loop)",
        "run": "`warden run --health` (SIGTERM to warden)",
        "child": "peer: the supervised example's own endpoint (the signal forwarded)",
    }
    for case, results in (
        ("library, loop free", sigterm),
        (f"library, loop stuck {BLOCK:g} s at the signal", blocked),
        ("warden run supervising the example", run),
    ):
        for which, values in results.items():
            if values:
                out.append(
                    f"| {rows[which]}, {case} | {ms(statistics.median(values))} "
                    f"| {ms(max(values))} | {len(values)} |"
                )
            else:
                out.append(f"| {rows[which]}, {case} | no 503 seen | | 0 |")
    out += [
        "",
        "From `time.monotonic()` just before `os.kill` to the first 503 a prober thread in the "
        "bench reads, polling /readyz on a new connection each time. The 1,000 requests sleep "
        "in the server (`/slow?ms=20000`): they hold connections, not the CPU. In the second "
        "case a SIGTERM hook blocks the loop (`time.sleep`), as a slow synchronous handler or "
        f"C code holding it would. With the loop free, both answer within milliseconds (p50 "
        f"{p50(sigterm['warden'])} for the thread, {p50(sigterm['loop'])} for the loop): the "
        "health thread may have to get the GIL from the loop thread, which is running the "
        "stop's first steps at that moment (CPython hands the GIL over after at most "
        "`sys.getswitchinterval()`, 5 ms). With the loop stuck, only the thread answers. Under "
        "`warden run` the 1,000 requests are held by the supervised example, not by warden; "
        "the peer is the example's own /readyz, which can only turn 503 once warden has "
        f"forwarded the SIGTERM to it (p50 {p50(run['run'])} for warden's, "
        f"{p50(run['child'])} for the example's).",
        end,
    ]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
