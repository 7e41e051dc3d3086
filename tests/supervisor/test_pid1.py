"""warden as PID 1 of a new PID namespace: it reaps, forwards, and passes the exit code on.

``unshare --pid --fork --mount-proc`` needs CAP_SYS_ADMIN (root here). PID 1 is special to
the kernel: a signal without a handler is *not* delivered to it (not even SIGTERM), so
forwarding only works because warden installs handlers for every forwarded signal.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path

import pytest

from .conftest import Processes, children_of, proc_state, wait_until

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare(1) for a new PID namespace",
)

PROGRAM = """
import os, signal, sys
def say(text):
    os.write(1, (text + "\\n").encode())
def release(signum, frame):
    os.close(w)
    say("released")
def bye(signum, frame):
    say("got TERM")
    os._exit(7)
signal.signal(signal.SIGUSR1, release)
signal.signal(signal.SIGTERM, bye)
r, w = os.pipe()
mid = os.fork()
if mid == 0:
    os.close(w)
    for _ in range(200):
        if os.fork() == 0:
            os.read(r, 1)
            os._exit(0)
    os._exit(0)
os.close(r)
os.waitpid(mid, 0)
say(f"pid {os.getpid()} ppid {os.getppid()}")
while True:
    signal.pause()
"""


def test_pid1_reaps_and_forwards(procs: Processes) -> None:
    script = procs.script("pid1.py", PROGRAM)
    warden = procs.warden("--", script, prefix=["unshare", "--pid", "--fork", "--mount-proc"])
    line = warden.out.wait_for(r"^pid (\d+) ppid (\d+)$")
    assert line.group(2) == "1"  # the program's parent is warden, PID 1 of the namespace

    # Seen from outside: unshare -> warden (PID 1 inside) -> program and 200 orphans.
    (warden_pid,) = children_of(warden.pid)
    status = Path(f"/proc/{warden_pid}/status").read_text().splitlines()
    nspid = next(line for line in status if line.startswith("NSpid:")).split()
    assert nspid[-1] == "1"
    cmdline = Path(f"/proc/{warden_pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[:4] == [sys.executable.encode(), b"-m", b"warden", b"run"]
    orphans = children_of(warden_pid)
    assert len(orphans) == 201  # the program and 200 adopted grandchildren

    os.kill(warden_pid, signal.SIGUSR1)  # forwarded to the program: it releases the orphans
    warden.out.wait_for("^released$")
    wait_until(lambda: len(children_of(warden_pid)) == 1, "the 200 orphans reaped by PID 1")
    assert all(proc_state(pid) in (None, "S", "R") for pid in orphans)

    os.kill(warden_pid, signal.SIGTERM)
    warden.out.wait_for("^got TERM$")
    assert warden.wait() == 7  # unshare passes on warden's code, warden the program's
