"""warden exits with the program's code, 128+N for death by signal N, and says why."""

from __future__ import annotations

import os
import signal

import pytest

from .conftest import Processes


@pytest.mark.parametrize(
    ("body", "code", "reason"),
    [
        ("raise SystemExit(0)", 0, "exited(0)"),
        ("raise SystemExit(3)", 3, "exited(3)"),
        ("raise SystemExit(255)", 255, "exited(255)"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", 139, "killed(SIGSEGV"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGUSR2)", 140, "killed(SIGUSR2)"),
    ],
)
def test_exit_code_and_reason(procs: Processes, body: str, code: int, reason: str) -> None:
    warden = procs.warden("--", procs.script("prog.py", body))
    assert warden.wait() == code
    details = [str(e["detail"]) for e in warden.events("child")]
    assert any(d.startswith(reason) for d in details), details


def test_killed_from_outside(procs: Processes) -> None:
    script = procs.script(
        "sleeper.py", "import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(3600)\n"
    )
    warden = procs.warden("--", script)
    pid = int(warden.out.wait_for(r"^(\d+)$").group(1))
    procs.track(pid)
    os.kill(pid, signal.SIGKILL)
    assert warden.wait() == 128 + signal.SIGKILL
    # A SIGKILL without a rise of the cgroup's oom_kill counter is named as such.
    details = [str(e["detail"]) for e in warden.events("child")]
    assert "killed(SIGKILL) — not an OOM kill" in details, details
