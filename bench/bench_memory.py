"""Memory sentinel benchmark (issue 13): warden's levels against the theoretical crossings,
next to earlyoom and to no guard at all, on the same ramps, in the same run.

    python bench/bench_memory.py           # full run, about 3 minutes; writes docs/benchmarks.md
    python bench/bench_memory.py --quick   # smoke run: two ramps, 10 s idle, prints only

(a) Lead time. A service (``tests/memory/apps/service.py``) acknowledges records, buffers them
    and flushes them at stop, while a leak grows at 5, 20 or 100 MiB/s in a real v1 memory
    cgroup of its own. The leak logs every 256 KiB chunk with its ``time.monotonic()``, so the
    instant the working set crossed 80 %, 90 %, 95 % and 100 % of the limit is known from the
    allocation log and the working set measured just before the ramp begins (the
    *theoretical* crossing). The sentinel (``watch_memory`` in the service) prints each level's
    ``at``; CLOCK_MONOTONIC is one clock for every process, so the two compare directly.
(b) Who acts, and what survives: the same ramp under ``watch_memory``, under earlyoom, and
    with no guard: when each acts (seconds before the theoretical kill), how the service
    ended, and how many acknowledged records are on disk.
(c) Idle cost over 60 s: wake-ups (voluntary + involuntary context switches of every thread,
    ``/proc/PID/task/*/status``) and CPU time (``/proc/PID/stat``) of an idle service with the
    sentinel, the same service without it, and earlyoom with Debian's default arguments.

Making earlyoom's run fair: earlyoom reads the *host's* MemAvailable (24 GiB here), not a
cgroup, and acts at a percentage or size of it (defaults: SIGTERM at 10 %, SIGKILL at 5 %).
So for each earlyoom run its thresholds are set in KiB (``-M TERM,KILL``) to the host
MemAvailable at which the ramp's cgroup is at 90 % and 95 % of its limit (MemAvailable just
before the ramp minus what the ramp will add), the same fractions as its defaults but of the
limit that will kill the service. Its victim is chosen by name (``--prefer``) and the service's
``oom_score_adj`` is 1000, so it picks the ramp. Its SIGTERM reaches warden's lifecycle, which
flushes like a memory-critical stop does, so a difference in records is only one of timing.
Host MemAvailable also moves with everything else on the machine: that noise is earlyoom's
in real life too.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from _doc import markers, write_section
from _machine import machine

from warden.memory import ChildCgroup, RunAttribution, reader_for
from warden.memory._readers import parse_meminfo

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SERVICE = ROOT / "tests" / "memory" / "apps" / "service.py"
IDLE_APP = BENCH / "apps" / "memory_idle.py"
BEGIN, END = markers("memory")
MiB = 2**20
LIMITS = {5.0: 64, 20.0: 128, 100.0: 256}  # MiB: a ramp of a few seconds at each rate
LEVELS = (("warn", 0.80), ("high", 0.90), ("critical", 0.95))
NAME = "wardenramp"


@dataclass(frozen=True)
class Plan:
    rates: tuple[float, ...]
    idle: float
    quick: bool


FULL = Plan(rates=(5.0, 20.0, 100.0), idle=60.0, quick=False)
QUICK = Plan(rates=(20.0, 100.0), idle=10.0, quick=True)


# -- processes --------------------------------------------------------------------------


class Lines:
    """A child's stdout lines, each with the ``time.monotonic()`` it was read."""

    def __init__(self, popen: subprocess.Popen[str]) -> None:
        self.popen = popen
        self.lines: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._cond:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> str:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for _, line in self.lines:
                    if regex.search(line):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (
                    self.popen.poll() is not None and not self._thread.is_alive()
                ):
                    raise RuntimeError(f"no line matching {pattern!r} within {timeout} s")
                self._cond.wait(min(remaining, 0.5))

    def text(self) -> list[str]:
        with self._cond:
            return [line for _, line in self.lines]


def wait_exit(pid: int, timeout: float) -> float:
    """Wait on a pidfd; the monotonic time the process ended."""
    pidfd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)
        if not ready:
            raise RuntimeError(f"process {pid} still alive after {timeout} s")
        return time.monotonic()
    finally:
        os.close(pidfd)


def stop(popen: subprocess.Popen[str]) -> None:
    if popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(popen.pid, signal.SIGKILL)
    popen.wait(10)


# -- the ramp ---------------------------------------------------------------------------


@dataclass
class Ramp:
    rate: float
    guard: str
    limit: int
    baseline: int = 0
    allocations: list[tuple[float, int]] = field(default_factory=list)
    facts: dict[str, float] = field(default_factory=dict)
    acted_at: float | None = None
    ended_at: float = 0.0
    ended: str = ""
    acked: int = 0
    on_disk: int = 0

    samples: list[tuple[float, int]] = field(default_factory=list)
    rest_slope: float = 0.0
    rest_at: float = 0.0
    log: list[str] = field(default_factory=list)

    def allocated(self, at: float) -> float:
        """Bytes the leak had allocated at ``at`` (interpolated in the allocation log)."""
        previous = self.allocations[0]
        for t, size in self.allocations:
            if t >= at:
                t0, s0 = previous
                return s0 + (size - s0) * (at - t0) / (t - t0) if t > t0 else float(size)
            previous = (t, size)
        return float(self.allocations[-1][1])

    def fit_baseline(self) -> None:
        """What the working set holds besides the leak, measured during the ramp.

        The bench samples the cgroup every ~5 ms; ``working set - allocated`` is the rest
        (interpreter, record buffer, page tables), which grows slowly during the ramp (about
        0.3 MiB/s here). It is fitted as a line in time (least squares), so the theoretical
        crossing solves ``allocated(t) + rest(t) = fraction x limit``.
        """
        start, end = self.allocations[0][0], self.allocations[-1][0]
        points = [(at, ws - self.allocated(at)) for at, ws in self.samples if start < at < end]
        if len(points) < 2:
            return
        mean_t = sum(t for t, _ in points) / len(points)
        mean_r = sum(r for _, r in points) / len(points)
        var = sum((t - mean_t) ** 2 for t, _ in points)
        slope = sum((t - mean_t) * (r - mean_r) for t, r in points) / var if var else 0.0
        self.rest_slope = slope
        self.rest_at = mean_t
        self.baseline = int(mean_r)

    def rest(self, at: float) -> float:
        return self.baseline + self.rest_slope * (at - self.rest_at)

    def crossing(self, fraction: float) -> float:
        """When the working set crossed ``fraction`` of the limit: the allocation log plus the
        fitted rest (extrapolated at the nominal rate past the log's end: a service that
        stopped in time never reaches the limit)."""
        need = fraction * self.limit
        previous = self.allocations[0]
        for at, size in self.allocations:
            total = size + self.rest(at)
            if total >= need:
                t0, s0 = previous
                before = s0 + self.rest(t0)
                return t0 + (need - before) / (total - before) * (at - t0) if total > before else at
            previous = (at, size)
        at, size = self.allocations[-1]
        return at + (need - size - self.rest(at)) / (self.rate * MiB + self.rest_slope)

    @property
    def kill(self) -> float:
        return self.crossing(1.0)


def run_ramp(rate: float, guard: str, work: Path) -> Ramp:
    limit = LIMITS[rate] * MiB
    ramp = Ramp(rate, guard, limit)
    out = work / f"records-{rate:g}-{guard}.txt"
    log = work / f"alloc-{rate:g}-{guard}.log"
    with ChildCgroup.create(limit) as group:
        argv = [sys.executable, str(SERVICE), "--join", str(group.procs_file), "--out", str(out)]
        argv += ["--rate", str(rate), "--log", str(log), "--wait-go", "--name", NAME]
        if guard == "warden":
            argv.append("--watch")
        popen = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        earlyoom: subprocess.Popen[str] | None = None
        try:
            lines = Lines(popen)
            lines.wait_for("^ready", 30)
            reader = reader_for(group.cgroup)
            ramp.baseline = reader.sample(time.monotonic()).working_set
            reader.close()
            if guard == "earlyoom":
                Path(f"/proc/{popen.pid}/oom_score_adj").write_text("1000")
                earlyoom_lines, earlyoom = start_earlyoom(limit, ramp.baseline)
            attribution = RunAttribution.at_spawn(popen.pid, group.cgroup)
            sampling = threading.Event()
            sampler = threading.Thread(target=sample_until, args=(group, sampling, ramp.samples))
            sampler.start()
            assert popen.stdin is not None
            popen.stdin.write("go\n")
            popen.stdin.flush()
            try:
                ramp.ended_at = wait_exit(popen.pid, limit / MiB / rate * 3 + 20)
            finally:
                sampling.set()
                sampler.join(5)
            returncode = popen.wait(10)
            verdict = attribution.decide_returncode(returncode)
            ramp.ended = (
                "OOM-killed"
                if verdict.oom_killed
                else (f"exit {returncode}" if returncode >= 0 else f"signal {-returncode}")
            )
            for at_line in lines.text():
                words = at_line.split()
                if at_line.startswith("fact ") and len(words) == 4:
                    ramp.facts.setdefault(f"{words[1]} {words[2]}", float(words[3]))
                elif at_line.startswith("ack "):
                    ramp.acked = max(ramp.acked, int(words[1]))
            if guard == "warden":
                ramp.acted_at = ramp.facts.get("stop -")
            elif guard == "earlyoom" and earlyoom is not None:
                ramp.acted_at = ramp.facts.get("signal SIGTERM") or earlyoom_acted(earlyoom_lines)
                ramp.log = earlyoom_lines.text()
        finally:
            stop(popen)
            if earlyoom is not None:
                stop(earlyoom)
    ramp.on_disk = len(out.read_text().splitlines()) if out.exists() else 0
    ramp.allocations = [
        (float(a), int(b)) for a, b in (line.split() for line in log.read_text().splitlines())
    ]
    ramp.fit_baseline()
    return ramp


def sample_until(group: ChildCgroup, done: threading.Event, into: list[tuple[float, int]]) -> None:
    """The cgroup's working set every ~5 ms, for the baseline fit (not for any level)."""
    reader = reader_for(group.cgroup)
    try:
        while not done.wait(0.005):
            with contextlib.suppress(OSError, ValueError):
                sample = reader.sample(time.monotonic())
                into.append((sample.at, sample.working_set))
    finally:
        reader.close()


def start_earlyoom(limit: int, baseline: int) -> tuple[Lines, subprocess.Popen[str]]:
    available = parse_meminfo(Path("/proc/meminfo").read_text())["MemAvailable"]
    term = (available - (0.90 * limit - baseline)) / 1024
    kill = (available - (0.95 * limit - baseline)) / 1024
    popen = subprocess.Popen(
        [EARLYOOM, "-M", f"{term:.0f},{kill:.0f}", "--prefer", f"^{NAME}$", "-r", "3600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines = Lines(popen)
    lines.wait_for("(?i)sending|mem avail|min", 10)
    return lines, popen


def earlyoom_acted(lines: Lines) -> float | None:
    for at, line in lines.lines:
        if re.search(r"sending SIG\w+ to process", line):
            return at
    return None


# -- idle cost --------------------------------------------------------------------------


def wakeups_and_cpu(pid: int) -> tuple[int, float]:
    """Context switches of every thread, and CPU seconds (user + system)."""
    switches = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/task/{task}/status").read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    switches += int(line.split()[1])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return switches, (int(fields[11]) + int(fields[12])) / ticks


def idle_cost(seconds: float) -> dict[str, tuple[int, float]]:
    with contextlib.ExitStack() as stack:
        group = stack.enter_context(ChildCgroup.create(256 * MiB))
        procs: dict[str, subprocess.Popen[str]] = {}
        for label, extra in (
            ("warden run with watch_memory", ["--watch"]),
            ("warden lifecycle without it", []),
        ):
            argv = [sys.executable, str(IDLE_APP), *extra]
            if extra:
                argv += ["--join", str(group.procs_file)]
            procs[label] = subprocess.Popen(
                argv, stdout=subprocess.PIPE, text=True, start_new_session=True
            )
        procs["earlyoom (-r 3600, Debian's default)"] = subprocess.Popen(
            [EARLYOOM, "-r", "3600"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        for popen in procs.values():
            stack.callback(stop, popen)
        readers = {label: Lines(p) for label, p in procs.items()}
        for label, lines in readers.items():
            lines.wait_for("^ready" if "warden" in label else "(?i)mem", 20)
        time.sleep(1.0)  # past start-up: only the idle state is measured
        before = {label: wakeups_and_cpu(p.pid) for label, p in procs.items()}
        time.sleep(seconds)
        after = {label: wakeups_and_cpu(p.pid) for label, p in procs.items()}
        sources = next(
            (line for line in readers["warden run with watch_memory"].text() if "sources=" in line),
            "",
        )
    found = {
        label: (after[label][0] - before[label][0], after[label][1] - before[label][1])
        for label in procs
    }
    found["_sources"] = (0, 0.0)
    print(sources)
    return found


# -- report -----------------------------------------------------------------------------


def report(ramps: list[Ramp], idle: dict[str, tuple[int, float]], plan: Plan, command: str) -> str:
    out = [BEGIN, "## Memory sentinel", ""]
    out.append(
        f"`{command}` on {datetime.date.today().isoformat()}, {machine()}, earlyoom "
        f"{earlyoom_version()}; real v1 memory cgroups, no swap."
    )
    out += ["", "### Lead time of each level against the theoretical crossing", ""]
    out.append(
        "Crossing: when the working set passed the level's fraction of the limit, from the "
        "allocation log; delay: level event minus crossing (negative: the time-to-limit "
        "projection fired earlier than the ratio); lead: theoretical kill minus event, and in "
        "brackets the theoretical lead (kill minus crossing)."
    )
    out += [
        "",
        "| ramp | limit | level | delay after crossing | lead before the kill |",
        "|---|---|---|---|---|",
    ]
    for ramp in ramps:
        if ramp.guard != "warden":
            continue
        for level, fraction in LEVELS:
            at = ramp.facts.get(f"memory.level {level}")
            if at is None:
                out.append(
                    f"| {ramp.rate:g} MiB/s | {ramp.limit // MiB} MiB | {level} | not seen | |"
                )
                continue
            crossing = ramp.crossing(fraction)
            out.append(
                f"| {ramp.rate:g} MiB/s | {ramp.limit // MiB} MiB | {level} | "
                f"{(at - crossing) * 1000:+.1f} ms | {ramp.kill - at:.3f} s "
                f"({ramp.kill - crossing:.3f} s) |"
            )
    out += ["", "### Who acts, and how many acknowledged records survive", ""]
    out += [
        "| ramp | guard | acts (s before the theoretical kill) | service ended by "
        "| acknowledged | on disk |",
        "|---|---|---|---|---|---|",
    ]
    for ramp in ramps:
        acts = "never" if ramp.acted_at is None else f"{ramp.kill - ramp.acted_at:.3f} s"
        if ramp.guard == "none":
            acts = "-"
        out.append(
            f"| {ramp.rate:g} MiB/s | {ramp.guard} | {acts} | {ramp.ended} | {ramp.acked} "
            f"| {ramp.on_disk} |"
        )
    out += ["", f"### Idle cost over {plan.idle:g} s", ""]
    out += ["| process | wake-ups (context switches) | CPU |", "|---|---|---|"]
    for label, (switches, cpu) in idle.items():
        if label.startswith("_"):
            continue
        out.append(f"| {label} | {switches} ({switches / plan.idle:.2f}/s) | {cpu * 1000:.0f} ms |")
    out += [
        "",
        "earlyoom's thresholds are set per run from the host's MemAvailable so that it "
        "acts at 90 %/95 % of the ramp's cgroup limit (see the module docstring of "
        "`bench/bench_memory.py` for why that is the fair mapping).",
        END,
    ]
    return "\n".join(out) + "\n"


def earlyoom_version() -> str:
    found = subprocess.run([EARLYOOM, "-v"], capture_output=True, text=True, check=False)
    return (
        (found.stdout + found.stderr).strip().split()[-1]
        if (found.stdout + found.stderr).strip()
        else "?"
    )


EARLYOOM = shutil.which("earlyoom") or "/usr/bin/earlyoom"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    ramps = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        for rate in plan.rates:
            for guard in ("warden", "earlyoom", "none"):
                ramp = run_ramp(rate, guard, Path(tmp))
                print(
                    f"{rate:g} MiB/s {guard}: {ramp.ended}, acked {ramp.acked}, "
                    f"on disk {ramp.on_disk}, baseline {ramp.baseline / MiB:.1f} MiB, "
                    f"facts {ramp.facts}, peer log {ramp.log[-4:]}"
                )
                ramps.append(ramp)
    idle = idle_cost(plan.idle)
    command = "python bench/bench_memory.py" + (" --quick" if plan.quick else "")
    text = report(ramps, idle, plan, command)
    print(text)
    if not plan.quick:
        write_section("memory", text)


if __name__ == "__main__":
    main()
