"""Event-driven: while the program runs and nothing happens, warden does not wake up at all.

tini wakes every second (``sigtimedwait`` with a 1 s timeout) and gunicorn's arbiter too;
warden's loop waits in ``epoll`` and its guard thread in ``select``, both without a timeout.
The kernel counts every time a thread is scheduled out in ``/proc/PID/task/TID/status``.
With every option a deployment turns on, too: the health server's thread, the config watch
(an inotify descriptor), the memory sentinel (kernel thresholds, no poll while idle), the
watchdog (a deadline, not a tick) and the control socket.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.memory.conftest import _v1_parent
from tests.observe._http import free_port

from .conftest import Processes, Warden


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
    assert_no_wakeups(warden)
    warden.kill(signal.SIGTERM)
    assert warden.wait() == 128 + signal.SIGTERM


# READY=1 and a first WATCHDOG=1 to warden's notify socket, then nothing within the window
# (the watchdog is 10 minutes: a ping is a datagram, and wakes warden as it should).
NOTIFYING = """\
import os, socket, time
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.connect(os.environ["NOTIFY_SOCKET"])
notify.send(b"READY=1\\nWATCHDOG=1")
print("ready", flush=True)
time.sleep(3600)
"""


def test_no_wakeups_with_every_option_on(procs: Processes) -> None:
    why = _v1_parent()
    if why is not None:
        pytest.skip(f"--memory-limit needs a writable v1 memory cgroup: {why}")
    config = procs.tmp_path / "app.conf"
    config.write_text("a = 1\n")
    port = free_port()
    warden = procs.warden(
        "--health",
        f"127.0.0.1:{port}",
        "--reload-on-change",
        str(config),
        "--memory-limit",
        "64M",
        "--ready",
        "notify",
        "--watchdog",
        "10m",
        "--",
        procs.script("notifying.py", NOTIFYING),
        # Under cgroup v1 the PSI trigger is the host's: memory stalls of other tests on this
        # machine are events, and would wake warden as they should. Not idle cost.
        env={"MEMORY_PRESSURE_WATCH": "/dev/null"},
    )
    warden.out.wait_for("^ready$")
    warden.err.wait_for(r'"state": "ready"')
    warden.err.wait_for('"kind": "config.watching"')
    # Settled once the sentinel has measured the program's start-up growth (a poll or two,
    # at most 2.5 s apart, then none); the window is longer than its old idle poll (10 s).
    assert_no_wakeups(warden, settle=3.0, window=11.0)
    warden.kill(signal.SIGTERM)
    assert warden.wait() == 128 + signal.SIGTERM


def assert_no_wakeups(warden: Warden, settle: float = 0.2, window: float = 2.0) -> None:
    # Let start-up settle: the count must hold still for a moment before the window opens.
    before = context_switches(warden.pid)
    deadline = time.monotonic() + 10
    while True:
        time.sleep(settle)
        now = context_switches(warden.pid)
        if now == before or time.monotonic() > deadline:
            break
        before = now
    # A measurement window, not synchronisation: nothing is awaited here.
    time.sleep(window)
    assert context_switches(warden.pid) - before == 0
