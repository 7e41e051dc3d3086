"""The cgroup v2 path: readers and ``memory.events`` on a faithful tree, POLLPRI on kernfs.

How the v2 event path is covered, since this machine's cgroup2 has no memory controller and
kernfs' poll cannot be imitated by a plain file (epoll refuses regular files with EPERM, and
they never signal POLLPRI):

* the *parsing* of ``memory.events`` and the naming of the counters that rose run against a
  faithful file (``MemoryEventsFile.acknowledge``);
* the *waking* runs against the real kernel: ``PriorityEvents`` watches ``cgroup.events`` of
  a real cgroup2 directory, a kernfs file that signals changes with the same
  ``kernfs_notify`` → POLLPRI mechanism as ``memory.events``, and a process moved in
  (``populated 0`` → ``1``) wakes the loop; reading from offset 0 acknowledges it;
* a sentinel on the faithful v2 tree falls back to polling, says so once, and reads levels.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from warden.lifecycle import Fact, ManualClock
from warden.memory import Level, MemoryCgroup, MemorySentinel, MemoryWatchDegraded, Thresholds
from warden.memory._sources import MemoryEventsFile, PriorityEvents

from ._trees import MiB, proc_self, v2_group, write

UNIFIED = Path("/sys/fs/cgroup/unified")


def test_memory_events_names_the_counters_that_rose(tmp_path: Path) -> None:
    v2_group(tmp_path, current=MiB, inactive=0)
    events = MemoryEventsFile(tmp_path / "memory.events")
    try:
        assert events.acknowledge() is None
        text = (tmp_path / "memory.events").read_text()
        write(
            tmp_path / "memory.events",
            text.replace("oom_kill 0", "oom_kill 1").replace("max 0", "max 7"),
        )
        assert events.acknowledge() == "max+7 oom_kill+1"
        assert events.counts["oom_kill"] == 1
    finally:
        os.close(events.fd)


@pytest.fixture
def v2_cgroup() -> Iterator[Path]:
    if not (UNIFIED / "cgroup.procs").exists():
        pytest.skip("no cgroup2 mounted at /sys/fs/cgroup/unified")
    path = UNIFIED / f"warden-test-{os.getpid()}"
    path.mkdir()
    try:
        yield path
    finally:
        for pid in (path / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        for _ in range(500):
            with contextlib.suppress(OSError):
                path.rmdir()
                break
            with contextlib.suppress(OSError):
                os.waitpid(-1, os.WNOHANG)


async def test_kernfs_pollpri_wakes_the_loop(v2_cgroup: Path) -> None:
    loop = asyncio.get_running_loop()
    woken: asyncio.Queue[str] = asyncio.Queue()
    events = PriorityEvents(loop, woken.put_nowait)
    watched = MemoryEventsFile(v2_cgroup / "cgroup.events")
    events.add(watched.fd, "cgroup.events", watched.acknowledge)
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert woken.empty()
        (v2_cgroup / "cgroup.procs").write_text(str(child.pid))
        reason = await asyncio.wait_for(woken.get(), 5)
        assert reason == "cgroup.events: populated+1"
        child.kill()
        child.wait(5)
        # The kernel updates "populated" when the last task has left: a second POLLPRI.
        reason = await asyncio.wait_for(woken.get(), 5)
        assert reason.startswith("cgroup.events")
        assert watched.counts["populated"] == 0
    finally:
        events.close()
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        child.wait(5)


async def test_a_sentinel_on_a_v2_tree_polls_and_reads_levels(tmp_path: Path) -> None:
    proc_self(tmp_path, "0::/app\n", "")
    mount = tmp_path / "sys/fs/cgroup"
    v2_group(mount / "app", current=50 * MiB, inactive=10 * MiB, max_=str(100 * MiB))
    facts: list[Fact] = []
    clock = ManualClock()
    sentinel = MemorySentinel(
        MemoryCgroup(2, mount / "app", mount),
        thresholds=Thresholds(flush_budget=0),
        publish=facts.append,
        psi=False,
        root=tmp_path,
        clock=clock,
    )
    await sentinel.start()
    try:
        assert sentinel.level is Level.OK and sentinel.working_set == 40 * MiB
        assert sentinel.limit == 100 * MiB
        assert any(
            isinstance(f, MemoryWatchDegraded) and "polling instead" in f.reason for f in facts
        )
        write(mount / "app/memory.current", f"{95 * MiB}\n")  # working set 85 MiB: warn
        clock.jump(sentinel.unarmed_interval)  # the next poll, on the sentinel's clock
        status = sentinel.status
        assert status.level is Level.WARN
    finally:
        sentinel.stop()


async def test_polls_come_faster_as_a_ramp_nears_a_level(tmp_path: Path) -> None:
    """Where no kernel threshold guards the levels (v2), the sentinel polls; the interval is
    a quarter of the projected time to the next level at the measured rate, so a ramp is
    sampled faster and faster as it nears ``warn``. Jumped from poll to poll, 4 MiB/s."""
    proc_self(tmp_path, "0::/app\n", "")
    mount = tmp_path / "sys/fs/cgroup"
    v2_group(mount / "app", current=20 * MiB, inactive=0, max_=str(100 * MiB))
    clock = ManualClock()
    sentinel = MemorySentinel(
        MemoryCgroup(2, mount / "app", mount),
        thresholds=Thresholds(flush_budget=0),
        publish=lambda _fact: None,
        psi=False,
        root=tmp_path,
        clock=clock,
    )
    await sentinel.start()
    try:
        intervals = []
        while sentinel.level is Level.OK:
            due = clock.next_deadline
            assert due is not None, "a sentinel that polls has a poll armed"
            intervals.append(round(due - clock.now(), 3))
            grown = sentinel.working_set + int(4 * MiB * (due - clock.now()))
            write(mount / "app/memory.current", f"{grown}\n")
            clock.jump(due - clock.now())
        assert intervals[0] == sentinel.unarmed_interval  # not growing yet: the idle poll
        assert intervals == sorted(intervals, reverse=True), intervals  # ever sooner
        assert intervals[-1] < 1.0, intervals
        assert sentinel.level is Level.WARN and clock.pending == 1
    finally:
        sentinel.stop()
    assert clock.pending == 0  # stopped: no poll left armed
