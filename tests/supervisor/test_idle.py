"""Event-driven: while the program runs and nothing happens, warden does not wake up at all.

tini wakes every second (``sigtimedwait`` with a 1 s timeout) and gunicorn's arbiter too;
warden's loop waits in ``epoll`` and its guard thread in ``select``, both without a timeout.
The kernel counts every time a thread is scheduled out in ``/proc/PID/task/TID/status``.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from .conftest import Processes


def context_switches(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


def test_no_wakeups_while_idle(procs: Processes) -> None:
    script = procs.script("idle.py", "import time\nprint('ready', flush=True)\ntime.sleep(3600)\n")
    warden = procs.warden("--", script)
    warden.out.wait_for("^ready$")
    warden.err.wait_for(r'"state": "ready"')
    # Let start-up settle: the count must hold still for a moment before the window opens.
    before = context_switches(warden.pid)
    deadline = time.monotonic() + 10
    while True:
        time.sleep(0.2)
        now = context_switches(warden.pid)
        if now == before or time.monotonic() > deadline:
            break
        before = now
    # A measurement window, not synchronisation: nothing is awaited here.
    time.sleep(2.0)
    assert context_switches(warden.pid) - before == 0
    warden.kill(signal.SIGTERM)
    assert warden.wait() == 128 + signal.SIGTERM
