"""Observability benchmark (issue 14): the health server's idle cost, scrape latency, and
SIGTERM -> /readyz 503 under load, next to peers in the same run.

    python bench/bench_observe.py           # about a minute; writes docs/benchmarks.md
    python bench/bench_observe.py --quick   # smoke run; prints only

The service is examples/http_service.py (a warden.Lifecycle), run by bench/apps/
observe_service.py in four modes: without a health server; with warden's (``serve_health``)
never scraped; with warden's scraped once (prometheus_client loaded); and with the peer,
prometheus_client's own ``start_http_server``. ``warden run --health`` is not wired yet, so
the library's server is measured; the supervisor will start the same one.

(a) Idle cost over a window: wake-ups (voluntary + involuntary context switches of every
    thread, from /proc/PID/task/*/status) and resident memory (VmRSS).
(b) /metrics scrape latency: sequential GETs on a new connection each, warden's server vs the
    peer's (which exposes its default registry: process and GC collectors).
(c) SIGTERM -> /readyz 503 while 1,000 requests are in flight on the service's port: the bench
    reads ``time.monotonic()`` just before ``os.kill`` and a prober thread GETs /readyz in a
    tight loop; the figure is when the first 503 arrives. Peer: the example's own /readyz,
    answered by the service's event loop (the one busy with the 1,000 requests).

Every process started is killed by PID at the end of its run; waits are on lines with a
timeout.
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
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from _doc import markers, write_section
from _machine import machine, versions

ROOT = Path(__file__).resolve().parent.parent
APP = Path(__file__).resolve().parent / "apps" / "observe_service.py"
BLOCK = 1.0  # seconds the loop is stuck at the signal in the second SIGTERM case
MODES = {
    "none": "no health server",
    "health": "warden `serve_health`, not scraped",
    "scraped": "warden `serve_health`, after one /metrics scrape",
    "prometheus": "peer: prometheus_client `start_http_server`",
}


@dataclass
class Service:
    proc: subprocess.Popen[str]
    url: str  # the example's own port
    health: str | None


@contextlib.contextmanager
def service(mode: str, drain: float = 5.0, block: float = 0.0) -> Iterator[Service]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(APP),
            mode,
            "--drain-delay",
            str(drain),
            "--block-on-term",
            str(block),
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "WARDEN_SHUTDOWN_TIMEOUT": "30"},
    )
    try:
        health = None if mode == "none" else wait_line(proc, r"health (\S+)").group(1)
        url = wait_line(proc, r"listening on (\S+)").group(1)
        wait_line(proc, r"^idle")
        yield Service(proc, url, health)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()


def wait_line(proc: subprocess.Popen[str], pattern: str, timeout: float = 15.0) -> re.Match[str]:
    """The first line (from here on) matching ``pattern``; raw reads, so select() is exact."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    pending = _PENDING.setdefault(proc.pid, bytearray())
    deadline = time.monotonic() + timeout
    while True:
        while b"\n" in pending:
            line, _, rest = bytes(pending).partition(b"\n")
            pending[:] = rest
            if match := re.search(pattern, line.decode()):
                return match
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        pending += chunk
    raise RuntimeError(f"no line matching {pattern!r} from the service within {timeout}s")


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


def measure_idle(window: float) -> dict[str, tuple[int, int]]:
    results = {}
    with contextlib.ExitStack() as stack:
        running = {mode: stack.enter_context(service(mode)) for mode in MODES}
        time.sleep(0.5)  # let start-up settle (threads finishing their first steps)
        before = {mode: idle_sample(s.proc.pid) for mode, s in running.items()}
        time.sleep(window)  # the measurement itself: nobody touches the services
        for mode, s in running.items():
            switches, rss = idle_sample(s.proc.pid)
            results[mode] = (switches - before[mode][0], rss)
    return results


# -- (b) scrape latency -------------------------------------------------------------------


def measure_scrapes(count: int) -> dict[str, list[float]]:
    results = {}
    for mode in ("scraped", "prometheus"):
        with service(mode) as s:
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


def measure_sigterm(runs: int, load: int, block: float = 0.0) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"warden": [], "loop": []}
    for _ in range(runs):
        for which, values in results.items():
            with service("health", drain=5.0, block=block) as s:
                assert s.health is not None
                readyz = f"{s.health}/readyz" if which == "warden" else f"{s.url}/readyz"
                socks = in_flight(s.url, load)
                try:
                    assert get(readyz)[0] == 200
                    seen: list[float] = []
                    prober = threading.Thread(target=first_503, args=(readyz, seen))
                    prober.start()
                    began = time.monotonic()
                    os.kill(s.proc.pid, signal.SIGTERM)
                    prober.join(15)
                    if seen:
                        values.append(seen[0] - began)
                finally:
                    for sock in socks:
                        sock.close()
    return results


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    window = 5.0 if args.quick else 30.0
    idle = measure_idle(window)
    scrapes = measure_scrapes(50 if args.quick else 500)
    sigterm = measure_sigterm(1 if args.quick else 5, 1000)
    blocked = measure_sigterm(1 if args.quick else 3, 1000, block=BLOCK)

    name = "observe"
    begin, end = markers(name)
    command = "python bench/bench_observe.py" + (" --quick" if args.quick else "")
    out = [
        begin,
        "## Observability: health server, /metrics, SIGTERM → /readyz 503 (issue 14)",
        "",
        f"`{command}`, {datetime.date.today().isoformat()}, {machine()}; "
        f"{versions(['prometheus_client'])}.",
        "",
        "The service is `examples/http_service.py` (a `warden.Lifecycle`). `warden run "
        "--health` is not wired yet: these are the library's `serve_health`, which the "
        "supervisor will start.",
        "",
        f"### (a) Idle cost over {window:g} s, all at once",
        "",
        "| service | wake-ups (context switches, all threads) | resident memory |",
        "|---|---|---|",
    ]
    base = idle["none"][1]
    for mode, label in MODES.items():
        switches, rss = idle[mode]
        extra = "" if mode == "none" else f" (+{(rss - base) / 1024:.1f} MiB)"
        out.append(f"| {label} | {switches} | {rss / 1024:.1f} MiB{extra} |")
    out += [
        "",
        "Goal: 0 wake-ups with the health server (its loop has no timer while idle; the peer's "
        "`serve_forever` polls every 0.5 s). prometheus_client, imported by the first scrape "
        f"only, costs {(idle['scraped'][1] - idle['health'][1]) / 1024:.1f} MiB (the two warden "
        "rows); the server itself, before any scrape, "
        f"{(idle['health'][1] - base) / 1024:.1f} MiB.",
        "",
        "### (b) /metrics scrape latency (a new connection per scrape, sequential)",
        "",
        "| server | p50 | p99 | scrapes |",
        "|---|---|---|---|",
    ]
    for mode, times in scrapes.items():
        q = statistics.quantiles(times, n=100)
        out.append(f"| {MODES[mode]} | {ms(q[49])} | {ms(q[98])} | {len(times)} |")
    out += [
        "",
        "### (c) SIGTERM → first /readyz 503, with 1,000 requests in flight",
        "",
        "| /readyz served by | p50 | max | runs |",
        "|---|---|---|---|",
    ]
    labels = {
        "warden": "warden's health server (its own thread)",
        "loop": "peer: the service's own endpoint (its event loop)",
    }
    for case, results in (
        ("loop free", sigterm),
        (f"loop stuck {BLOCK:g} s at the signal", blocked),
    ):
        for which, values in results.items():
            if values:
                out.append(
                    f"| {labels[which]}, {case} | {ms(statistics.median(values))} "
                    f"| {ms(max(values))} | {len(values)} |"
                )
            else:
                out.append(f"| {labels[which]}, {case} | no 503 seen | | 0 |")
    out += [
        "",
        "From `time.monotonic()` just before `os.kill` to the first 503 a prober thread in the "
        "bench reads, polling /readyz on a new connection each time. The 1,000 requests sleep "
        "in the server (`/slow?ms=20000`): they hold connections, not the CPU. In the second "
        "case a SIGTERM hook blocks the loop (`time.sleep`), as a slow synchronous handler or "
        "C code holding it would. With the loop free, the loop's own endpoint answers first: "
        "the health thread has to get the GIL from the loop thread, which is running the stop's "
        "first steps at that moment (CPython hands the GIL over after at most "
        "`sys.getswitchinterval()`, 5 ms). With the loop stuck, only the thread answers.",
        end,
    ]
    section = "\n".join(out) + "\n"
    print(section)
    if not args.quick:
        write_section(name, section)


if __name__ == "__main__":
    main()
