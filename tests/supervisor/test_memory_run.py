"""``warden run`` and memory, end to end: real programs in a real v1 memory cgroup.

Each test runs a real ``warden run --memory-limit``: warden makes the program a memory cgroup
of its own under the test's cgroup and removes it at exit; every test checks it is gone (and
removes any left over, its processes killed first). What is checked:

* a real OOM kill is ``oom-killed`` in the log, in ``warden status`` and as exit code 137;
  a ``kill -9`` is ``killed(SIGKILL) — not an OOM kill``;
* a program that outlives an OOM kill in its cgroup (a worker of its own was the victim) is
  not named after it, whether it then ends by SIGTERM or by a ``kill -9``;
* ``--memory-warn-signal`` reaches the program at ``high``, before the stop signal at
  ``critical`` and before the kernel's kill, in a ramp;
* from ``high`` on, warden's ``/readyz`` says 503, and 200 again once memory falls;
* ``--recycle-at SIZE`` turns a leaking server into repeated zero-downtime upgrades with no
  failed request from a client that opens a new connection per request; ``--recycle-at
  LEVEL`` with no room for a second copy says so and does not recycle.

The programs pace their allocations with sleeps (that makes the ramp); the tests wait only
for lines, log facts and process states, each with a deadline.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import resource
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.memory.conftest import _v1_parent
from tests.supervisor._socket_peers import http_get
from tests.supervisor._systemd_peers import free_port, make_fifo, release
from tests.supervisor.conftest import DEADLINE, Processes, Warden, wait_until
from tests.supervisor.test_health_option import get
from tests.supervisor.test_upgrade import control
from warden.memory import find_memory_cgroup

pytestmark = pytest.mark.timeout(90)

# Allocates MiB by MiB: JUMP MiB at once, a pause (the growth rate settles), then RATE MiB/s
# in 256 KiB steps. Says each signal it gets and how much it holds; ignores the stop signal.
# With a FIFO: holds once the warn signal (SIGUSR1) came, frees all when the FIFO is
# written, then waits for a second write.
RAMP = """\
import os, signal, sys, time
jump, rate = float(sys.argv[1]), float(sys.argv[2])
fifo = sys.argv[3] if len(sys.argv) > 3 else None
step = 2**18
held = []
warned = False
def on_signal(signum, frame):
    global warned
    warned = warned or signum == signal.SIGUSR1
    mib = len(held) * step / 2**20
    # One write per line: a second signal's handler may run inside this one's print.
    os.write(1, f"signal {signal.Signals(signum).name} holding {mib:.1f}\\n".encode())
signal.signal(signal.SIGUSR1, on_signal)
signal.signal(signal.SIGTERM, on_signal)
print(f"started {os.getpid()}", flush=True)
for _ in range(int(jump * 2**20 / step)):
    held.append(b"\\1" * step)
time.sleep(0.5)
while not (fifo and warned):
    held.append(b"\\1" * step)
    time.sleep(step / 2**20 / rate)
print("holding", flush=True)
with open(fifo) as f:
    f.read()
held.clear()
print("freed", flush=True)
with open(fifo) as f:
    f.read()
"""

# A worker of the program's own allocates until the kernel OOM-kills it; the program outlives
# it. Its stop signal is ignored while the worker lives (the sentinel's "critical" sends it),
# then kills it (default action): it ends by SIGTERM.
WORKER = """\
import os, signal, time
worker = os.fork()
if worker == 0:
    held = []
    while True:
        held.append(b"\\1" * 2**20)
        time.sleep(0.004)
done = False
def on_term(signum, frame):
    if done:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
    print("stop signal while the worker lives: ignored", flush=True)
signal.signal(signal.SIGTERM, on_term)
print(f"started {os.getpid()}", flush=True)
_, status = os.waitpid(worker, 0)
done = True
print(f"worker {os.waitstatus_to_exitcode(status)}", flush=True)
while True:
    signal.pause()
"""

# An HTTP server on the sockets warden hands over (LISTEN_FDS) that holds BALLAST MiB from
# its start and leaks LEAK MiB per request; READY=1 when it serves; on SIGTERM it finishes
# the request in hand and exits 0.
LEAKY = """\
import os, select, signal, socket, sys
leak = int(float(sys.argv[1]) * 2**20)
ballast = b"\\1" * int(float(sys.argv[2]) * 2**20)
wakeup, wakeup_w = os.pipe()
os.set_blocking(wakeup_w, False)
signal.set_wakeup_fd(wakeup_w)
signal.signal(signal.SIGTERM, lambda *_: None)
listeners = [socket.socket(fileno=3 + i) for i in range(int(os.environ["LISTEN_FDS"]))]
for listener in listeners:
    listener.setblocking(False)
print(f"started {os.getpid()}", flush=True)
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
leaked = []
while True:
    readable = select.select([*listeners, wakeup], [], [])[0]
    if wakeup in readable:
        break
    for listener in readable:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:  # the other release took it
            continue
        conn.setblocking(True)
        with conn:
            conn.recv(65536)
            leaked.append(b"\\1" * leak)
            body = f"{os.getpid()}\\n".encode()
            head = f"HTTP/1.1 200 OK\\r\\nContent-Length: {len(body)}\\r\\n"
            conn.sendall(head.encode() + b"Connection: close\\r\\n\\r\\n" + body)
print(f"stopped {os.getpid()}", flush=True)
"""


# -- the cgroups --------------------------------------------------------------------------


class Cgroups:
    """The memory cgroups the wardens of one test make (``warden-<pid>-<n>``)."""

    def __init__(self) -> None:
        self.parent = find_memory_cgroup().path
        self.wardens: list[Warden] = []

    def made_by(self, warden: Warden) -> list[Path]:
        return sorted(self.parent.glob(f"warden-{warden.pid}-*"))

    def cleanup(self) -> list[str]:
        """Remove what a warden left (its processes killed first); say what there was."""
        left = []
        for warden in self.wardens:
            for path in self.made_by(warden):
                left.append(str(path))
                deadline = time.monotonic() + 10
                while path.exists():
                    for pid in (path / "cgroup.procs").read_text().split():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(pid), signal.SIGKILL)
                    try:
                        path.rmdir()
                    except OSError as exc:
                        if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                            raise
                        time.sleep(0.01)  # the killed processes must exit first
        return left


@pytest.fixture
def cgroups(procs: Processes) -> Iterator[Cgroups]:
    why = _v1_parent()
    if why is not None:
        pytest.skip(f"needs a writable v1 memory cgroup: {why}")
    made = Cgroups()
    try:
        yield made
    finally:
        procs.cleanup()  # the wardens and their programs first: a busy cgroup stays
        made.cleanup()  # what a warden killed by the cleanup could not remove (finish() checks)


def start(procs: Processes, cgroups: Cgroups, *argv: str) -> Warden:
    warden = procs.warden(*argv)
    cgroups.wardens.append(warden)
    return warden


def facts(warden: Warden, kind: str) -> list[dict[str, object]]:
    """The facts of ``kind`` in warden's JSON log so far."""
    found = []
    for line in list(warden.err.lines):
        if line.startswith("{"):
            data = json.loads(line)
            if data.get("kind") == kind:
                found.append(data)
    return found


def data(fact: dict[str, object]) -> dict[str, object]:
    found = fact["data"]
    assert isinstance(found, dict)
    return found


def wait_fact(warden: Warden, kind: str, pattern: str = "") -> dict[str, object]:
    match = warden.err.wait_for(f'"kind": "{kind}".*{pattern}' if pattern else f'"kind": "{kind}"')
    found = json.loads(match.string)
    assert isinstance(found, dict)
    return found


def ended_with(warden: Warden) -> str:
    """The ``child.exited`` line's reason: what warden's log says last of the program."""
    exited = facts(warden, "child.exited")
    assert exited, warden.err.text()[-3000:]
    return str(exited[-1]["detail"])


def finish(warden: Warden, cgroups: Cgroups) -> int:
    code = warden.wait()
    assert cgroups.made_by(warden) == [], "warden did not remove its memory cgroup"
    return code


def status(procs: Processes) -> dict[str, object]:
    reply = control(procs.control, "status")
    assert reply["ok"] is True, reply
    found = reply["status"]
    assert isinstance(found, dict)
    return found


# -- naming the end -----------------------------------------------------------------------


def test_a_real_oom_kill_is_oom_killed_in_log_status_and_exit_code(
    procs: Processes, cgroups: Cgroups
) -> None:
    script = procs.script("ramp.py", RAMP)
    # Restarts after a long backoff: warden is still there to ask, the program is not.
    warden = start(
        procs,
        cgroups,
        "--memory-limit",
        "64M",
        "--restart",
        "on-failure",
        "--backoff-initial",
        "30s",
        "--",
        script,
        "0",
        "100",
    )
    warden.out.wait_for("^started")
    assert len(cgroups.made_by(warden)) == 1  # its own cgroup, made at start
    wait_fact(warden, "child.exited")
    assert ended_with(warden) == "oom-killed"
    verdict = data(facts(warden, "memory.oom_kill")[-1])
    assert verdict["oom_killed"] is True and verdict["signum"] == signal.SIGKILL
    assert verdict["kills_during_run"] == 1
    assert verdict["timeline"], "the memory of its last seconds is in the log"
    program = status(procs)["program"]
    assert isinstance(program, dict)
    assert program["last_exit"] == "oom-killed"
    warden.kill(signal.SIGTERM)
    # Stopped while waiting to restart: the last run's end is warden's exit code.
    assert finish(warden, cgroups) == 128 + signal.SIGKILL

    # Without a restart, warden passes the death on: 128 + SIGKILL, as a shell says.
    warden = start(procs, cgroups, "--memory-limit", "64M", "--", script, "0", "100")
    assert finish(warden, cgroups) == 128 + signal.SIGKILL
    assert ended_with(warden) == "oom-killed"


@contextlib.contextmanager
def _stack_limit(size: int) -> Iterator[None]:
    """RLIMIT_STACK for the processes started meanwhile: a quarter of it is the most an exec
    may carry in arguments and environment (``ARG_MAX``, at most 6 MiB)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    resource.setrlimit(resource.RLIMIT_STACK, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_STACK, (soft, hard))


def test_an_oom_kill_before_the_spawn_returns_is_oom_killed(
    procs: Processes, cgroups: Cgroups
) -> None:
    """Issue 19, item 7: the run joins its cgroup before its exec, so the kernel can kill it
    before warden's spawn returns. Here the exec's own arguments (4.6 MiB, copied into the
    new process, in its cgroup) do not fit in the smallest limit warden accepts: killed inside
    the exec every time. The counter was read after the spawn, so the kill was already in it:
    ``killed(SIGKILL) — not an OOM kill``, ``oom_kill +0``."""
    arguments = ["x" * 120_000] * 40  # each under the kernel's 128 KiB per argument
    with _stack_limit(64 * 2**20):
        warden = start(
            procs, cgroups, "--memory-limit", "4M", "--", "python3", "-c", "pass", *arguments
        )
    assert finish(warden, cgroups) == 128 + signal.SIGKILL
    assert ended_with(warden) == "oom-killed"
    verdict = data(facts(warden, "memory.oom_kill")[-1])
    assert verdict["oom_killed"] is True and verdict["kills_during_run"] == 1


def test_kill_9_from_outside_is_not_an_oom_kill(procs: Processes, cgroups: Cgroups) -> None:
    script = procs.script("ramp.py", RAMP)
    warden = start(procs, cgroups, "--memory-limit", "64M", "--", script, "8", "1")
    pid = int(warden.out.wait_for(r"^started (\d+)").group(1))
    procs.track(pid)
    os.kill(pid, signal.SIGKILL)
    assert finish(warden, cgroups) == 128 + signal.SIGKILL
    assert ended_with(warden) == "killed(SIGKILL) — not an OOM kill"
    verdict = data(facts(warden, "memory.oom_kill")[-1])
    assert verdict["oom_killed"] is False and verdict["kills_during_run"] == 0


def _outlive_a_worker_oom_kill(procs: Processes, cgroups: Cgroups) -> tuple[Warden, int]:
    script = procs.script("worker.py", WORKER)
    warden = start(procs, cgroups, "--memory-limit", "64M", "--", script)
    pid = int(warden.out.wait_for(r"^started (\d+)").group(1))
    procs.track(pid)
    warden.out.wait_for(f"^worker {-signal.SIGKILL}$")  # the kernel killed the worker
    survived = data(wait_fact(warden, "memory.oom_survived"))
    assert survived == {"pid": pid, "kills": 1}
    return warden, pid


def test_sigterm_after_an_oom_kill_in_the_cgroup_is_not_an_oom_kill(
    procs: Processes, cgroups: Cgroups
) -> None:
    warden, _ = _outlive_a_worker_oom_kill(procs, cgroups)
    warden.kill(signal.SIGTERM)  # the stop signal, forwarded: the program dies of it
    assert finish(warden, cgroups) == 128 + signal.SIGTERM
    assert ended_with(warden) == "killed(SIGTERM)"
    verdict = data(facts(warden, "memory.oom_kill")[-1])
    assert verdict["oom_killed"] is False and verdict["kills_during_run"] == 1


def test_kill_9_after_an_oom_kill_the_program_outlived_is_not_an_oom_kill(
    procs: Processes, cgroups: Cgroups
) -> None:
    """The counter rose during the run and the end is a SIGKILL, yet not the kernel's: the
    kill the program outlived is off its account (per OOM kill, not per cgroup)."""
    warden, pid = _outlive_a_worker_oom_kill(procs, cgroups)
    os.kill(pid, signal.SIGKILL)
    assert finish(warden, cgroups) == 128 + signal.SIGKILL
    assert ended_with(warden) == "killed(SIGKILL) — not an OOM kill"
    verdict = data(facts(warden, "memory.oom_kill")[-1])
    assert verdict["oom_killed"] is False
    assert (verdict["kills_during_run"], verdict["kills_survived"]) == (1, 1)


# -- before the kill ----------------------------------------------------------------------


def test_warn_signal_comes_at_high_before_the_stop_signal_and_the_kill(
    procs: Processes, cgroups: Cgroups
) -> None:
    script = procs.script("ramp.py", RAMP)
    warden = start(
        procs,
        cgroups,
        "--memory-limit",
        "64M",
        "--memory-warn-signal",
        "USR1",
        "--",
        script,
        "30",
        "8",
    )
    assert finish(warden, cgroups) == 128 + signal.SIGKILL
    assert ended_with(warden) == "oom-killed"  # it ignored its stop signal: the kernel's turn
    said = [line for line in warden.out.lines if line.startswith("signal")]
    # Both reached the program. Their order is warden's (the levels' order below): when high
    # and critical come in one sample the two arrive microseconds apart, and the program's
    # Python may run the second handler inside the first.
    assert sorted(line.split()[1] for line in said) == ["SIGTERM", "SIGUSR1"], warden.out.text()
    warning = next(line for line in said if line.split()[1] == "SIGUSR1")
    held_at_warning = float(warning.split()[-1])
    assert held_at_warning > 30  # during the ramp, not at its start
    levels = [str(data(f)["level"]) for f in facts(warden, "memory.level")]
    assert levels[:3] == ["warn", "high", "critical"]
    # high by its ratio (90 %) or on the way to a critical projected time-to-limit.
    high = next(f for f in facts(warden, "memory.level") if data(f)["level"] == "high")
    assert int(str(data(high)["working_set"])) >= 0.8 * 64 * 2**20
    killed = facts(warden, "child.exited")[-1]
    lead = float(str(killed["monotonic"])) - float(str(high["monotonic"]))
    assert lead > 0  # told before the kill (how long before is a benchmark's business)


def test_readiness_is_false_from_high_and_true_again_once_memory_falls(
    procs: Processes, cgroups: Cgroups
) -> None:
    script = procs.script("ramp.py", RAMP)
    fifo = make_fifo(procs.tmp_path / "go")
    port = free_port()
    warden = start(
        procs,
        cgroups,
        "--memory-limit",
        "64M",
        "--memory-warn-signal",
        "USR1",
        "--health",
        f"127.0.0.1:{port}",
        "--",
        script,
        "30",
        "4",
        str(fifo),
    )
    warden.err.wait_for(r'"event": "state", "state": "ready"')
    assert get(port, "/readyz")[0] == 200
    warden.out.wait_for("^holding$")  # it got the warn signal: memory is at high
    code, body = get(port, "/readyz?verbose")
    assert code == 503, body
    assert re.search(r"memory (high|critical): working set .* not accepting new work", body), body
    assert body.endswith("not ready: memory high\n"), body
    assert get(port, "/readyz") == (503, "memory high\n")
    assert get(port, "/livez")[0] == 200  # alive all the same
    seen = len(warden.err.lines)
    release(fifo)
    warden.out.wait_for("^freed$")
    warden.err.wait_for('"kind": "memory.level".*"level": "ok"', start=seen)
    assert get(port, "/readyz")[0] == 200
    warden.kill(signal.SIGTERM)
    # Let it end only once it has the stop signal: one arriving while the interpreter exits
    # (its handlers restored) would kill it.
    warden.out.wait_for("^signal SIGTERM")
    release(fifo)
    assert finish(warden, cgroups) == 0


# -- recycling ----------------------------------------------------------------------------


class PacedLoad:
    """A request every ``interval`` seconds, each on a new connection, counting failures."""

    def __init__(self, port: int, interval: float) -> None:
        self.port = port
        self.interval = interval
        self.answers: list[str] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):  # the pace of the load, not a wait
            try:
                code, body = http_get(("127.0.0.1", self.port), "/")
            except OSError as exc:
                self.failures.append(repr(exc))
                continue
            if code != 200:
                self.failures.append(f"status {code}")
            else:
                self.answers.append(body.strip())

    def __enter__(self) -> PacedLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(DEADLINE)


def _serve_leaky(
    procs: Processes, cgroups: Cgroups, *options: str, leak: float = 1, ballast: float = 0
) -> tuple[Warden, int]:
    script = procs.script("leaky.py", LEAKY)
    warden = start(
        procs,
        cgroups,
        "--listen",
        "tcp://127.0.0.1:0",
        "--ready",
        "notify",
        "--upgrade-confirm",
        "0",
        *options,
        "--",
        script,
        str(leak),
        str(ballast),
    )
    warden.err.wait_for(r'"event": "state", "state": "ready"')
    sockets = status(procs)["sockets"]
    assert isinstance(sockets, list)
    match = re.search(r"tcp://127\.0\.0\.1:(\d+)", str(sockets[0]))
    assert match, sockets
    return warden, int(match.group(1))


def test_recycle_at_size_turns_a_leak_into_rolling_upgrades_without_a_failed_request(
    procs: Processes, cgroups: Cgroups
) -> None:
    warden, port = _serve_leaky(procs, cgroups, "--memory-limit", "256M", "--recycle-at", "48M")
    with PacedLoad(port, 0.02) as load:
        wait_until(
            lambda: len(facts(warden, "upgrade.finished")) >= 3,
            "three recycles",
            timeout=60,
        )
    assert load.failures == [], load.failures[:5]
    recycles = [data(f) for f in facts(warden, "memory.recycle")]
    assert len(recycles) >= 3 and all(r["recycled"] is True for r in recycles), recycles
    assert all(int(str(r["working_set"])) >= 48 * 2**20 for r in recycles)
    assert recycles[0]["at"] == "48.0 MiB" and recycles[0]["fresh"] is not None
    finished = [data(f) for f in facts(warden, "upgrade.finished")]
    assert all(f["result"] == "ok" for f in finished), finished
    served_by = set(load.answers)
    assert len(served_by) >= 3  # the answers came from one release after another
    upgrade = status(procs)["upgrade"]
    assert isinstance(upgrade, dict) and upgrade["ok"] >= 3 and upgrade["failed"] == 0
    warden.kill(signal.SIGTERM)
    assert finish(warden, cgroups) == 0


def test_recycle_at_a_level_recycles_once_the_level_is_reached(
    procs: Processes, cgroups: Cgroups
) -> None:
    # 15 MiB/s: at warn (80 % of 128 MiB) the limit is 1.7 s away, above the flush budget, so
    # warn is reached by its ratio (not made critical by the projection).
    warden, port = _serve_leaky(procs, cgroups, "--memory-limit", "128M", "--recycle-at", "warn")
    first = status(procs)["program"]
    assert isinstance(first, dict)
    with PacedLoad(port, 0.1) as load:
        finished = data(wait_fact(warden, "upgrade.finished"))
    assert load.failures == [], load.failures[:5]
    assert finished["result"] == "ok" and finished["old_pid"] == first["pid"], finished
    recycle = data(facts(warden, "memory.recycle")[0])
    assert recycle["recycled"] is True and recycle["at"] == "warn", str(recycle)
    assert int(str(recycle["working_set"])) >= 0.8 * 128 * 2**20
    warden.kill(signal.SIGTERM)
    assert finish(warden, cgroups) == 0


def test_recycle_without_room_for_a_second_copy_says_so_and_does_not(
    procs: Processes, cgroups: Cgroups
) -> None:
    # A fresh copy holds its 8 MiB of ballast and the interpreter (~12 MiB): 28 MiB with it
    # is above critical (95 % of 40 MiB), so a second copy does not fit.
    warden, port = _serve_leaky(
        procs, cgroups, "--memory-limit", "40M", "--recycle-at", "28M", ballast=8
    )
    with PacedLoad(port, 0.1) as load:
        refused = data(wait_fact(warden, "memory.recycle"))
    assert load.failures == [], load.failures[:5]
    assert refused["recycled"] is False and refused["at"] == "28.0 MiB", str(refused)
    assert "no room for a second copy" in str(refused["reason"])
    assert facts(warden, "upgrade.started") == []
    # The leak goes on to critical: the server gets its stop signal and exits 0 by itself.
    with contextlib.suppress(ProcessLookupError):
        warden.kill(signal.SIGTERM)
    assert finish(warden, cgroups) == 0


def test_recycle_below_a_fresh_copy_says_it_would_never_end_and_does_not(
    procs: Processes, cgroups: Cgroups
) -> None:
    # A fresh copy holds 40 MiB of ballast and the interpreter: above a 32 MiB mark from its
    # start, so every new release would be recycled again as soon as it was alone.
    warden, port = _serve_leaky(
        procs, cgroups, "--memory-limit", "256M", "--recycle-at", "32M", ballast=40
    )
    with PacedLoad(port, 0.1) as load:
        refused = data(wait_fact(warden, "memory.recycle"))
    assert load.failures == [], load.failures[:5]
    assert refused["recycled"] is False, str(refused)
    assert "recycling would never end" in str(refused["reason"]), str(refused)
    assert facts(warden, "upgrade.started") == []
    warden.kill(signal.SIGTERM)
    assert finish(warden, cgroups) == 0
