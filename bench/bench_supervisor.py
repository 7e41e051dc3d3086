"""Supervisor benchmark (issue 3): ``warden run`` next to tini, dumb-init and supervisord.

    python bench/bench_supervisor.py           # about 4 minutes; writes docs/benchmarks.md
    python bench/bench_supervisor.py --quick   # smoke run: small numbers, prints only

All four peers are measured in the same run, on real processes:

(a) Reaping 10,000 orphans. Each peer runs as PID 1 of a new PID namespace
    (``unshare --pid --fork --mount-proc``, what a container gives it), so every orphan is
    re-parented to it. The program has an intermediate process spawn 10,000 ``head -c1``
    processes reading one pipe, and exit (orphaning them all); on a trigger (a FIFO) it closes
    the pipe's write end, and all 10,000 exit at once. Measured: from the trigger until the peer
    has no child left but the program (read from ``/proc/PID/task/*/children``, every ~1 ms).
(b) Idle cost over 60 s, all four peers at once, each supervising ``sleep``: wake-ups (the
    kernel's context-switch counters of every thread, ``/proc/PID/task/*/status``), CPU ticks
    (``utime + stime`` of ``/proc/PID/stat``) and resident memory (``VmRSS``).
(c) Stop latency: SIGTERM to the peer until ``waitpid`` returns for it, with a ``sleep`` child
    that dies at once of the TERM it is given.

Every process started is killed by pid at the end of its run (descendants listed from /proc).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import select
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from _doc import DOC, markers, write_section
from _procs import children, descendants

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BEGIN, END = markers("supervisor")
TINI, DUMB_INIT = "/usr/bin/tini", "/usr/bin/dumb-init"
PEERS = ("warden", "tini", "dumb-init", "supervisord")

# The program of (a): orphans N processes, then releases them when the FIFO is written.
ORPHANER = """
import os, sys
n, marker, fifo = int(sys.argv[1]), sys.argv[2], sys.argv[3]
r, w = os.pipe()
mid = os.fork()
if mid == 0:
    os.close(w)
    devnull = os.open(os.devnull, os.O_WRONLY)
    actions = [(os.POSIX_SPAWN_DUP2, r, 0), (os.POSIX_SPAWN_DUP2, devnull, 1)]
    for _ in range(n):
        os.posix_spawn("/usr/bin/head", ["head", "-c1"], {}, file_actions=actions)
    os._exit(0)
os.close(r)
os.waitpid(mid, 0)
with open(marker, "w") as f:
    f.write("orphaned")
with open(fifo) as f:
    f.read()
os.close(w)
os.kill(os.getpid(), 19)  # SIGSTOP: stay, without a wake-up, until the peer is stopped
"""


# -- processes --------------------------------------------------------------------------------


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def has_sleep(pid: int) -> bool:
    return any(comm(child) == "sleep" for child in descendants(pid))


def wait_for(condition: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.001)


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and every descendant, by pid; reap the process."""
    if proc.poll() is None:
        for pid in [*descendants(proc.pid), proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    proc.wait(30)


def clean_python(tmp: Path) -> str:
    """A fresh virtual environment's interpreter, with warden found through PYTHONPATH.

    What a user's install looks like: none of this machine's site-packages, whose ``.pth``
    start-up hooks (a sandbox here imports certifi in every interpreter) would count in
    warden's resident memory.
    """
    import warden

    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    source = str(Path(warden.__file__).resolve().parent.parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (source, os.environ.get("PYTHONPATH")) if p
    )
    return str(venv / "bin" / "python")


WARDEN_PYTHON = sys.executable


def peer_argv(name: str, command: Sequence[str], tmp: Path) -> list[str]:
    if name == "warden":
        return [WARDEN_PYTHON, "-m", "warden", "run", "--", *command]
    if name == "tini":
        return [TINI, "-s", "--", *command]
    if name == "dumb-init":
        return [DUMB_INIT, *command]
    conf = tmp / f"supervisord-{time.monotonic_ns()}.conf"
    conf.write_text(
        "[supervisord]\n"
        "nodaemon=true\n"
        f"logfile={tmp}/supervisord.log\n"
        f"pidfile={tmp}/supervisord.pid\n"
        f"childlogdir={tmp}\n"
        "[program:app]\n"
        f"command={shlex.join(command)}\n"
        "autostart=true\nautorestart=false\nstartsecs=0\nstopwaitsecs=10\n"
        f"stdout_logfile={tmp}/app.log\nredirect_stderr=true\n"
    )
    return [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(conf)]


def start(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


# -- (a) reaping ------------------------------------------------------------------------------


@dataclass
class ReapResult:
    seconds: float | None  # None: not finished by the cap
    left: int


def measure_reap(name: str, orphans: int, cap: float, tmp: Path) -> ReapResult:
    run = tmp / f"reap-{name}"
    run.mkdir()
    script, marker, fifo = run / "orphaner.py", run / "orphaned", run / "go"
    script.write_text(ORPHANER)
    os.mkfifo(fifo)
    command = [sys.executable, str(script), str(orphans), str(marker), str(fifo)]
    unshare = start(["unshare", "--pid", "--fork", "--mount-proc", *peer_argv(name, command, run)])
    try:
        wait_for(lambda: len(children(unshare.pid)) == 1, f"{name} under unshare", 30)
        (peer,) = children(unshare.pid)
        wait_for(marker.exists, f"{orphans} orphans under {name}", 120)
        wait_for(lambda: len(children(peer)) == orphans + 1, "orphans adopted", 60)
        began = time.monotonic()
        with open(fifo, "w"):
            pass  # opening and closing the FIFO is the trigger
        deadline = began + cap
        while (left := len(children(peer)) - 1) > 0:
            if time.monotonic() > deadline:
                return ReapResult(None, left)
            time.sleep(0.001)
        return ReapResult(time.monotonic() - began, 0)
    finally:
        kill_tree(unshare)


# -- (b) idle ---------------------------------------------------------------------------------


@dataclass
class IdleSample:
    switches: int
    ticks: int
    rss_kib: int


def idle_sample(pid: int) -> IdleSample:
    switches = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        for line in Path(f"/proc/{pid}/task/{task}/status").read_text().splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                switches += int(line.split()[1])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return IdleSample(switches, int(fields[11]) + int(fields[12]), rss)


def measure_idle(window: float, tmp: Path) -> dict[str, tuple[IdleSample, IdleSample]]:
    procs = {name: start(peer_argv(name, ["sleep", "3600"], tmp)) for name in PEERS}
    try:
        for name, proc in procs.items():
            wait_for(lambda: has_sleep(proc.pid), f"{name}'s sleep", 30)  # noqa: B023
        time.sleep(2.0)  # let start-up finish (supervisord logs, warden's first events)
        before = {name: idle_sample(proc.pid) for name, proc in procs.items()}
        time.sleep(window)  # the measurement window itself
        return {name: (before[name], idle_sample(proc.pid)) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            kill_tree(proc)


# -- (c) stop latency -------------------------------------------------------------------------


def measure_stop(name: str, tmp: Path) -> tuple[float, int]:
    proc = start(peer_argv(name, ["sleep", "3600"], tmp))
    try:
        wait_for(lambda: has_sleep(proc.pid), f"{name}'s sleep", 30)
        # Wait on a pidfd, not Popen.wait(timeout): that polls with sleeps doubling from
        # 0.5 ms, so an exit is seen up to ~8 ms late (a bimodal 7.5 / 15.7 ms for warden).
        pidfd = os.pidfd_open(proc.pid)
        try:
            began = time.monotonic()
            os.kill(proc.pid, signal.SIGTERM)
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            if not poller.poll(60_000):
                raise TimeoutError(f"{name} did not exit within 60 s of SIGTERM")
            ended = time.monotonic()
        finally:
            os.close(pidfd)
        return ended - began, proc.wait(10)
    finally:
        kill_tree(proc)


# -- report -----------------------------------------------------------------------------------


def count_tcp_sockets() -> int:
    total = 0
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            total += len(Path(f"/proc/net/{table}").read_text().splitlines()) - 1
    return total


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def versions() -> str:
    import importlib.metadata

    tini = subprocess.run([TINI, "--version"], capture_output=True, text=True, check=False)
    dumb = subprocess.run([DUMB_INIT, "--version"], capture_output=True, text=True, check=False)
    return (
        f"{tini.stdout.strip()}, {(dumb.stdout + dumb.stderr).strip()}, "
        f"supervisor {importlib.metadata.version('supervisor')}, "
        f"warden {importlib.metadata.version('warden')}"
    )


def render(
    reap: dict[str, ReapResult],
    orphans: int,
    cap: float,
    idle: dict[str, tuple[IdleSample, IdleSample]],
    window: float,
    stops: dict[str, list[tuple[float, int]]],
    elapsed: float,
    tcp_sockets: int,
) -> str:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    cpu = platform.processor() or platform.machine()
    out = [
        BEGIN,
        "## Supervisor: reaping, idle cost, stop latency (issue 3)",
        "",
        f"`python bench/bench_supervisor.py` — {stamp}, {elapsed:.0f} s; {os.cpu_count()} CPUs "
        f"({cpu}), Linux {platform.release()}, Python {platform.python_version()}; "
        f"{versions()}.",
        "",
        "Peers: `warden run --`, `tini -s --`, `dumb-init` (its default: the child in a new "
        "session, signals to its group), `supervisord -n` with one `[program]` "
        "(`startsecs=0`, `autorestart=false`). All measured in this one run. warden runs "
        "from a fresh virtual environment (`python -m venv`, warden on PYTHONPATH), as a user "
        "installs it, so no start-up hook of this machine's site-packages counts in its memory. "
        f"TCP sockets in this network namespace when the run began: {tcp_sockets}.",
        "",
        f"### (a) Reaping {orphans:,} orphans as PID 1 of a PID namespace",
        "",
        "| peer | all reaped after | ratio to tini |",
        "|---|---|---|",
    ]
    tini = reap["tini"].seconds
    for name in PEERS:
        result = reap[name]
        if result.seconds is None:
            out.append(f"| {name} | not done after {cap:g} s: {result.left:,} left unreaped | — |")
        else:
            ratio = f"{result.seconds / tini:.2f}x" if tini else "—"
            out.append(f"| {name} | {ms(result.seconds)} | {ratio} |")
    out += [
        "",
        "From the trigger (all orphans exit at once) until the peer has no child left but the "
        "program; polled every ~1 ms from `/proc`, so the resolution is about 1 ms.",
        "",
        f"### (b) Idle cost over {window:g} s, all peers at once, each supervising `sleep`",
        "",
        "| peer | wake-ups (context switches, all threads) | CPU ticks | resident memory |",
        "|---|---|---|---|",
    ]
    for name in PEERS:
        before, after = idle[name]
        out.append(
            f"| {name} | {after.switches - before.switches} | {after.ticks - before.ticks} "
            f"| {after.rss_kib / 1024:.1f} MiB |"
        )
    out += [
        "",
        f"CPU ticks are of `SC_CLK_TCK` = {os.sysconf('SC_CLK_TCK')} per second. "
        "Goal for warden: zero wake-ups while idle and under 20 MiB resident.",
        "",
        "### (c) Stop latency: SIGTERM to the peer → the peer has exited (`waitpid`)",
        "",
        "| peer | p50 | max | exit code | runs |",
        "|---|---|---|---|---|",
    ]
    for name in PEERS:
        samples = stops[name]
        times = [t for t, _ in samples]
        codes = ", ".join(sorted({str(c) for _, c in samples}))
        out.append(
            f"| {name} | {ms(statistics.median(times))} | {ms(max(times))} | {codes} "
            f"| {len(samples)} |"
        )
    out += [
        "",
        "The child is `sleep`, which dies of the SIGTERM forwarded to it; warden's figure "
        "includes the Python interpreter's own exit.",
        "",
        "Reading: " + reading(reap, idle, stops),
        "",
        END,
    ]
    return "\n".join(out) + "\n"


def reading(
    reap: dict[str, ReapResult],
    idle: dict[str, tuple[IdleSample, IdleSample]],
    stops: dict[str, list[tuple[float, int]]],
) -> str:
    parts = []
    w, t = reap["warden"].seconds, reap["tini"].seconds
    if w is not None and t:
        parts.append(f"warden reaps the orphans in {w / t:.2f}x tini's time ({ms(w)} vs {ms(t)})")
    before, after = idle["warden"]
    wakeups = after.switches - before.switches
    parts.append(
        f"idle, warden woke {wakeups} times (goal 0: {'met' if wakeups == 0 else 'missed'}) "
        f"with {after.rss_kib / 1024:.1f} MiB resident "
        f"(goal < 20 MiB: {'met' if after.rss_kib < 20 * 1024 else 'missed'}); "
        + ", ".join(
            f"{n} woke {idle[n][1].switches - idle[n][0].switches} times" for n in PEERS[1:]
        )
    )
    parts.append(
        "stop latency p50: "
        + ", ".join(f"{n} {ms(statistics.median(t for t, _ in stops[n]))}" for n in PEERS)
    )
    return "; ".join(parts) + "."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small numbers; print only")
    args = parser.parse_args()
    orphans, cap, window, stop_runs = (
        (500, 20.0, 5.0, 3) if args.quick else (10_000, 60.0, 60.0, 15)
    )
    for binary in (TINI, DUMB_INIT):
        if not Path(binary).exists():
            raise SystemExit(f"{binary} is missing: apt-get install tini dumb-init")
    began = time.monotonic()
    tcp_sockets = count_tcp_sockets()
    with tempfile.TemporaryDirectory(prefix="warden-bench-") as name:
        tmp = Path(name)
        global WARDEN_PYTHON
        WARDEN_PYTHON = clean_python(tmp)
        reap = {}
        for peer in PEERS:
            reap[peer] = measure_reap(peer, orphans, cap, tmp)
            print(f"(a) {peer}: {reap[peer]}", file=sys.stderr, flush=True)
        idle = measure_idle(window, tmp)
        print(f"(b) {idle}", file=sys.stderr, flush=True)
        stops: dict[str, list[tuple[float, int]]] = {peer: [] for peer in PEERS}
        for _ in range(stop_runs):
            for peer in PEERS:
                stops[peer].append(measure_stop(peer, tmp))
        print(f"(c) {stops}", file=sys.stderr, flush=True)
    section = render(reap, orphans, cap, idle, window, stops, time.monotonic() - began, tcp_sockets)
    print(section)
    if not args.quick:
        write_section("supervisor", section, DOC)
        print(f"written to {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
