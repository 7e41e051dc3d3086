"""Items 4 and 8: warden's stderr may be closed, or a pipe nobody reads, and PID 1's duties go
on: the program starts, zombies are reaped, ``warden status`` answers, the stop ends in time
and nothing warden started outlives it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.hardening.conftest import run, warden_argv
from tests.supervisor.conftest import Lines, descendants, proc_state, wait_until

_F_SETPIPE_SZ = 1031


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env["WARDEN_CONTROL"] = str(tmp_path / "control.sock")
    return env


def test_a_closed_stderr_still_runs_the_program(tmp_path: Path) -> None:
    result = subprocess.run(
        # stderr closed in warden (2>&-); the program writes to its own stderr and stdout.
        [
            "sh",
            "-c",
            'exec "$@" 2>&-',
            "sh",
            *warden_argv(
                "run", "--", "sh", "-c", "echo started; echo to-stderr >&2; ls -l /proc/self/fd/2"
            ),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env=_env(tmp_path),
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("started\n")
    assert "/dev/null" in result.stdout  # the program's stderr: /dev/null, not a socket
    assert result.stderr == ""


def test_a_closed_stderr_keeps_the_exit_code_of_a_usage_error(tmp_path: Path) -> None:
    result = run(["sh", "-c", 'exec "$@" 2>&-', "sh", *warden_argv("run", "--bogus", "--", "true")])
    assert result.returncode == 2


# Forks a grandchild that becomes an orphan of warden's and exits once told (a zombie until
# warden reaps it); stdout only: its stderr is the same stalled pipe as warden's.
PROGRAM = """
import os, signal, sys, time
r, w = os.pipe()
status_r, status_w = os.pipe()
if os.fork() == 0:
    orphan = os.fork()
    if orphan == 0:
        os.close(w)
        os.read(r, 1)
        os._exit(0)
    os.write(status_w, str(orphan).encode())
    os._exit(0)
os.wait()
print("ready", os.getpid(), os.read(status_r, 32).decode(), flush=True)
sys.stdin.readline()
os.write(w, b"x")
signal.signal(signal.SIGTERM, lambda s, f: os._exit(0))
while True:
    signal.pause()
"""


def test_a_stderr_nobody_reads_does_not_stop_pid_1(tmp_path: Path) -> None:
    script = tmp_path / "program.py"
    script.write_text(PROGRAM)
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, _F_SETPIPE_SZ, 4096)
    # Fill the pipe before warden writes anything: every blocking write would now wait.
    os.set_blocking(write_end, False)
    try:
        while True:
            os.write(write_end, b"x" * 512)
    except BlockingIOError:
        pass
    os.set_blocking(write_end, True)
    warden = subprocess.Popen(
        warden_argv("run", "--stop-timeout", "3", "--", sys.executable, str(script)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=write_end,
        text=True,
        env=_env(tmp_path),
        start_new_session=True,
    )
    os.close(write_end)
    assert warden.stdout is not None and warden.stdin is not None
    out = Lines(warden.stdout)
    try:
        ready = out.wait_for(r"^ready (\d+) (\d+)$", timeout=15)
        program, orphan = int(ready.group(1)), int(ready.group(2))
        # The orphan exits now: warden must reap it although its stderr is stalled.
        warden.stdin.write("go\n")
        warden.stdin.flush()
        wait_until(lambda: proc_state(orphan) is None, "the orphan reaped", timeout=10)
        status = run(warden_argv("status", "--control", str(tmp_path / "control.sock")))
        assert status.returncode == 0, status.stderr
        assert f"pid {program}" in status.stdout
        began = time.monotonic()
        warden.send_signal(signal.SIGTERM)
        assert warden.wait(15) == 0
        # Within the ladder's own time, far from the deadline (3 s + 5 s).
        assert time.monotonic() - began < 3
        assert proc_state(program) is None
    finally:
        if warden.poll() is None:
            for pid in [warden.pid, *descendants(warden.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            warden.wait(10)
        out.close_wait(5)
        if not out.reading:
            warden.stdout.close()
        warden.stdin.close()
        os.close(read_end)
