"""Watch a real ramp in a real cgroup from this process, until the kernel kills it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests._proc import Proc
from warden.lifecycle import Fact
from warden.memory import (
    ChildCgroup,
    Level,
    MemorySentinel,
    MemoryStatus,
    RunAttribution,
)
from warden.memory._events import OomKillAttributed

from .conftest import app


@dataclass
class Watched:
    """What a watched ramp did: when each level was entered, when it died, the verdict."""

    entered: dict[Level, float] = field(default_factory=dict)
    died_at: float = 0.0
    verdict: OomKillAttributed | None = None
    facts: list[Fact] = field(default_factory=list)
    allocations: list[tuple[float, int]] = field(default_factory=list)


async def until_exit(pid: int, timeout: float) -> float:
    """Wait for ``pid`` to exit (a pidfd turns readable), on the loop; the monotonic time."""
    loop = asyncio.get_running_loop()
    pidfd = os.pidfd_open(pid)
    died: asyncio.Future[float] = loop.create_future()

    def readable() -> None:
        if not died.done():
            died.set_result(time.monotonic())

    loop.add_reader(pidfd, readable)
    try:
        return await asyncio.wait_for(died, timeout)
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)


def allocation_log(path: Path) -> list[tuple[float, int]]:
    found = []
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text().splitlines():
            at, _, size = line.partition(" ")
            if size:
                found.append((float(at), int(size)))
    return found


async def watch_ramp(
    group: ChildCgroup, proc_factory: object, tmp_path: Path, rate: float, timeout: float
) -> Watched:
    """Start ``ramp.py`` in ``group`` at ``rate`` MiB/s and watch it with a sentinel."""
    log = tmp_path / "alloc.log"
    spawn = proc_factory
    assert callable(spawn)
    proc: Proc = spawn(
        app("ramp.py", "--join", str(group.procs_file), "--rate", str(rate), "--log", str(log))
    )
    proc.wait_line("^ready")
    attribution = RunAttribution.at_spawn(proc.pid, group.cgroup)
    watched = Watched()

    def enter(level: Level) -> Callable[[MemoryStatus], object]:
        return lambda _status: watched.entered.setdefault(level, time.monotonic())

    sentinel = MemorySentinel(
        group.cgroup,
        on_warn=enter(Level.WARN),
        on_high=enter(Level.HIGH),
        on_critical=enter(Level.CRITICAL),
        publish=watched.facts.append,
        psi=False,
    )
    await sentinel.start()
    try:
        assert proc.popen.stdin is not None
        proc.popen.stdin.write("go\n")
        proc.popen.stdin.flush()
        watched.died_at = await until_exit(proc.pid, timeout)
    finally:
        sentinel.stop()
    returncode = proc.wait()
    watched.verdict = attribution.decide_returncode(
        returncode, timeline=sentinel.timeline(), died_at=watched.died_at
    )
    watched.allocations = allocation_log(log)
    return watched
