"""What a ``warden demo`` run could leave behind: processes, memory cgroups, socket dirs.

The tests take a snapshot before a run, check that nothing new is left after it, and clean up
whatever a failing run left (so one failure does not leave a warden serving for ever).
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from warden.memory import ChildCgroup, MemoryCgroup, MemoryCgroupError, find_memory_cgroup


def cgroups() -> set[Path]:
    """The ``warden-*`` memory cgroups next to the ones a demo's warden would make."""
    try:
        return set(find_memory_cgroup().path.glob("warden-*"))
    except MemoryCgroupError:
        return set()


def runtime_dirs() -> set[Path]:
    """The demo's socket directories in /tmp (where a long $TMPDIR sends them)."""
    return set(Path("/tmp").glob("warden-demo-run-*"))


def processes_naming(path: Path) -> list[int]:
    """Every live process whose command line names ``path`` (a demo's warden, its service,
    its watcher, as they name the demo's directory); a zombie names nothing."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if str(path).encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait until every one of ``pids`` has ended (their pidfds say so); those still alive."""
    fds: dict[int, int] = {}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            fds[os.pidfd_open(pid)] = pid
    try:
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        alive = dict(fds)
        deadline = time.monotonic() + timeout
        while alive and (left := deadline - time.monotonic()) > 0:
            for fd, _ in poller.poll(left * 1000):
                alive.pop(fd, None)
                poller.unregister(fd)
        return sorted(alive.values())
    finally:
        for fd in fds:
            os.close(fd)


@dataclass
class Before:
    """What existed before a run, to tell what it left."""

    path: Path  # the run's $TMPDIR (or --keep directory): its processes name it
    cgroups: set[Path] = field(default_factory=cgroups)
    runtime: set[Path] = field(default_factory=runtime_dirs)

    def left(self, within: float) -> list[str]:
        """What the run left once its processes had ``within`` seconds to end."""
        alive = wait_gone(processes_naming(self.path), within)
        found = [f"process {pid}" for pid in alive]
        found += [f"memory cgroup {p}" for p in sorted(cgroups() - self.cgroups)]
        found += [f"directory {p}" for p in sorted(runtime_dirs() - self.runtime)]
        return found

    def clean_up(self) -> None:
        """Kill and remove whatever the run left (a failing test's run)."""
        for pid in processes_naming(self.path):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_gone(processes_naming(self.path), 10)
        for path in cgroups() - self.cgroups:
            parent = find_memory_cgroup()
            with contextlib.suppress(MemoryCgroupError):
                ChildCgroup(MemoryCgroup(parent.version, path, parent.mount), 0).remove()
        for path in runtime_dirs() - self.runtime:
            shutil.rmtree(path, ignore_errors=True)
