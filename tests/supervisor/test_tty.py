"""On a terminal, the program gets the foreground, as with tini: Ctrl-C goes to it."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys

import pytest

from .conftest import Processes

pytestmark = pytest.mark.skipif(shutil.which("script") is None, reason="needs script(1)")

PROGRAM = """
import os, signal, sys
def bye(signum, frame):
    print("got", signal.Signals(signum).name, flush=True)
    sys.exit(0)
signal.signal(signal.SIGINT, bye)
print("foreground", os.tcgetpgrp(0) == os.getpgrp(), flush=True)
signal.pause()
"""


def test_program_owns_the_terminal_and_gets_ctrl_c(procs: Processes) -> None:
    program = procs.script("fg.py", PROGRAM)
    command = shlex.join([sys.executable, "-m", "warden", "run", "--", program])
    # script(1) runs the command as a session leader on a new pseudo-terminal and copies its
    # own stdin to it, so the Ctrl-C byte goes through the terminal's line discipline, which
    # sends SIGINT to the terminal's foreground process group.
    proc = subprocess.Popen(
        ["script", "-qefc", command, "/dev/null"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    procs.track(proc.pid)
    assert proc.stdin is not None and proc.stdout is not None
    seen = b""
    while b"foreground" not in seen:
        line = proc.stdout.readline()
        assert line, seen.decode(errors="replace")
        seen += line
    assert b"foreground True" in seen
    proc.stdin.write(b"\x03")
    proc.stdin.flush()
    rest, _ = proc.communicate(timeout=20)
    assert b"got SIGINT" in rest
    assert proc.returncode == 0
