"""Watching a run's processes: a real master with workers it reaps and respawns itself, as
gunicorn's does, and warden's view of them through /proc and pidfds.

The master writes one line per worker it starts (``worker PID``) to its stdout; the test
kills a worker with SIGKILL and waits for the watch to say so (an event, with a deadline).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.supervisor.conftest import DEADLINE, proc_state, wait_until
from warden.supervisor.process._members import Descendants, exited

#: A master that keeps two workers, respawning one the moment it has reaped it ("prefork").
#: ``reap=0`` on the command line: it never reaps, so an ended worker stays a zombie.
MASTER = """\
import os, signal, sys, time

reap = sys.argv[1] == "1"

def start():
    pid = os.fork()
    if pid == 0:
        signal.pause()
        os._exit(0)
    print(f"worker {pid}", flush=True)

for _ in range(2):
    start()
while True:
    if reap:
        os.wait()
        start()
    else:
        signal.pause()
"""


@pytest.fixture
def master() -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    """The master (reaping and respawning), and the pids of the workers it started."""
    yield from _master("1")


@pytest.fixture
def stingy_master() -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    """A master that never reaps its workers."""
    yield from _master("0")


def _master(reap: str) -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    proc = subprocess.Popen([sys.executable, "-c", MASTER, reap], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    workers = [int(proc.stdout.readline().split()[1]) for _ in range(2)]
    try:
        yield proc, workers
    finally:
        kill = [proc.pid, *workers, *_more_workers(proc)]
        for pid in kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(DEADLINE)
        assert proc.stdout is not None
        proc.stdout.close()


def _more_workers(proc: subprocess.Popen[str]) -> list[int]:
    with contextlib.suppress(OSError), open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
        return [int(pid) for pid in f.read().split()]
    return []


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_a_worker_that_ends_is_seen_even_when_its_master_replaces_it(
    master: tuple[subprocess.Popen[str], list[int]],
) -> None:
    proc, workers = master
    before = fds()
    watch = Descendants(proc.pid)
    try:
        watch.scan()
        assert not watch.changed.is_set() and watch.ended == []
        os.kill(workers[0], signal.SIGKILL)
        async with asyncio.timeout(DEADLINE):
            await watch.changed.wait()
        assert [m.pid for m in watch.ended] == [workers[0]]
        # Named as ps names it: the executable's file name (at most 15 bytes).
        assert str(watch.ended[0]) == f"pid {workers[0]} ({Path(sys.executable).name[:15]})"
        # The master has reaped it and started another: a later scan watches the new one.
        assert proc.stdout is not None
        replacement = int(proc.stdout.readline().split()[1])
        watch.scan()
        os.kill(replacement, signal.SIGKILL)
        async with asyncio.timeout(DEADLINE):
            while len(watch.ended) < 2:
                watch.changed.clear()
                await watch.changed.wait()
        assert [m.pid for m in watch.ended] == [workers[0], replacement]
        assert workers[1] not in [m.pid for m in watch.ended]  # still running
    finally:
        watch.close()
    assert fds() == before  # every pidfd closed


async def test_a_worker_that_ended_before_the_scan_is_an_end_too(
    stingy_master: tuple[subprocess.Popen[str], list[int]],
) -> None:
    """A zombie in the tree (ended, its master not reaping yet) has ended."""
    proc, workers = stingy_master
    os.kill(workers[1], signal.SIGKILL)
    wait_until(lambda: proc_state(workers[1]) == "Z", "the worker's end")
    watch = Descendants(proc.pid)
    try:
        watch.scan()
        assert [m.pid for m in watch.ended] == [workers[1]] and watch.changed.is_set()
    finally:
        watch.close()


async def test_the_run_itself_and_other_processes_are_not_members(
    master: tuple[subprocess.Popen[str], list[int]],
) -> None:
    proc, workers = master
    watch = Descendants(proc.pid)
    try:
        watch.scan()
        assert sorted(watch._watched) == sorted(workers)
    finally:
        watch.close()


def test_exited_does_not_reap() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    assert proc.pid
    wait_until(lambda: proc_state(proc.pid) == "Z", "the child's end")
    assert exited(proc.pid)
    assert exited(proc.pid)  # again: nothing was taken
    assert proc.wait(DEADLINE) == 0  # the status is still there for the one waiter
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert not exited(live.pid)
    finally:
        live.kill()
        live.wait()
