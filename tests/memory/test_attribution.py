"""OOM attribution with real processes in a real v1 memory cgroup (64 MiB).

A run is ``oom-killed`` only when it died by SIGKILL *and* the cgroup's ``oom_kill`` counter
rose during that run: a real OOM kill is; ``kill -9`` is not; a SIGTERM exit, or a
``kill -9``, after an earlier OOM kill in the same cgroup is not (the counter is
cumulative, so it is compared with its value at the run's spawn).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from tests._proc import Proc
from tests.conftest import Spawn
from warden.memory import ChildCgroup, RunAttribution, reader_for
from warden.memory._events import OomKillAttributed

from .conftest import MakeCgroup, MiB, app


def _start(spawn: Spawn, group: ChildCgroup, tmp_path: Path) -> tuple[Proc, RunAttribution]:
    proc = spawn(
        app(
            "ramp.py",
            "--rate",
            "400",
            "--log",
            str(tmp_path / f"alloc-{len(list(tmp_path.iterdir()))}.log"),
        )
    )
    proc.wait_line("^ready")
    group.attach(proc.pid)  # moved in by pid after the spawn, before it allocates
    assert proc.pid in group.pids()
    return proc, RunAttribution.at_spawn(proc.pid, group.cgroup)


def _go(proc: Proc) -> None:
    assert proc.popen.stdin is not None
    proc.popen.stdin.write("go\n")
    proc.popen.stdin.flush()


def _oom_kill(spawn: Spawn, group: ChildCgroup, tmp_path: Path) -> OomKillAttributed:
    proc, attribution = _start(spawn, group, tmp_path)
    _go(proc)
    returncode = proc.wait(timeout=20)
    return attribution.decide_returncode(returncode)


def test_a_real_oom_kill_is_named(memory_cgroup: MakeCgroup, spawn: Spawn, tmp_path: Path) -> None:
    group = memory_cgroup(64 * MiB)
    verdict = _oom_kill(spawn, group, tmp_path)
    assert verdict.oom_killed
    assert verdict.signum == signal.SIGKILL
    assert verdict.kills_during_run == 1
    assert verdict.outcome == "oom-killed"
    assert "killed(SIGKILL)" in verdict.detail


def test_kill_9_is_not_an_oom_kill(memory_cgroup: MakeCgroup, spawn: Spawn, tmp_path: Path) -> None:
    group = memory_cgroup(64 * MiB)
    proc, attribution = _start(spawn, group, tmp_path)
    proc.signal(signal.SIGKILL)
    verdict = attribution.decide_returncode(proc.wait())
    assert not verdict.oom_killed
    assert verdict.signum == signal.SIGKILL and verdict.kills_during_run == 0
    assert verdict.outcome == "not an OOM kill"


def test_after_an_earlier_oom_kill_sigterm_and_kill_9_are_not(
    memory_cgroup: MakeCgroup, spawn: Spawn, tmp_path: Path
) -> None:
    group = memory_cgroup(64 * MiB)
    assert _oom_kill(spawn, group, tmp_path).oom_killed
    assert group.oom_kills() == 1  # the cumulative counter Kubernetes misreads

    proc, attribution = _start(spawn, group, tmp_path)
    proc.signal(signal.SIGTERM)
    verdict = attribution.decide_returncode(proc.wait())
    assert not verdict.oom_killed and verdict.signum == signal.SIGTERM

    proc, attribution = _start(spawn, group, tmp_path)
    proc.signal(signal.SIGKILL)
    verdict = attribution.decide_returncode(proc.wait())
    assert not verdict.oom_killed and verdict.kills_during_run == 0


def test_a_clean_exit_is_not_from_a_wait_status(memory_cgroup: MakeCgroup, tmp_path: Path) -> None:
    group = memory_cgroup(64 * MiB)
    code = "import sys; sys.stdin.readline(); sys.exit(0)"
    read_end, write_end = os.pipe()
    actions = [(os.POSIX_SPAWN_DUP2, read_end, 0)]
    pid = os.posix_spawn(
        sys.executable, [sys.executable, "-c", code], os.environ, file_actions=actions
    )
    os.close(read_end)
    try:
        group.attach(pid)
        attribution = RunAttribution.at_spawn(pid, group.cgroup)
        os.close(write_end)  # stdin at EOF: the child exits 0
        write_end = -1
        _, status = os.waitpid(pid, 0)
    finally:
        if write_end >= 0:
            os.close(write_end)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    verdict = attribution.decide_wait_status(status)
    assert not verdict.oom_killed
    assert verdict.exit_code == 0 and verdict.signum is None
    assert "exited with 0" in verdict.detail


def _open_cgroup_files() -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("/sys/fs/cgroup/"):
            found.append(target)
    return sorted(found)


def test_an_attribution_closes_what_it_opened(memory_cgroup: MakeCgroup) -> None:
    """Issue 19, item 2: a reader per run, never closed, held four cgroup files per upgrade."""
    group = memory_cgroup(64 * MiB)
    before = _open_cgroup_files()
    for _ in range(3):
        attribution = RunAttribution.at_spawn(os.getpid(), group.cgroup)
        assert _open_cgroup_files() != before  # the counter's file and the limits
        attribution.decide(signum=signal.SIGKILL, exit_code=None)
        assert _open_cgroup_files() == before
    never_decided = RunAttribution.at_spawn(os.getpid(), group.cgroup)
    never_decided.close()
    assert _open_cgroup_files() == before


def test_a_lent_reader_stays_open_for_the_next_run(memory_cgroup: MakeCgroup) -> None:
    group = memory_cgroup(64 * MiB)
    before = _open_cgroup_files()
    reader = reader_for(group.cgroup)
    try:
        held: list[str] = []
        for _ in range(3):
            attribution = RunAttribution.at_spawn(os.getpid(), reader)
            attribution.decide(signum=signal.SIGKILL, exit_code=None)
            attribution.close()
            held = held or _open_cgroup_files()
            assert _open_cgroup_files() == held != before  # the reader's files, no more
        assert reader.oom_kills() == 0
    finally:
        reader.close()
    assert _open_cgroup_files() == before
