"""The stop ladder: stop signal, deadline, SIGKILL to the group and to adopted orphans."""

from __future__ import annotations

import signal

from .conftest import JUMPED, Processes, proc_state
from .test_upgrade import control

# A program that ignores SIGTERM, with a grandchild in its group that ignores it too, and an
# escaped daemon (its own session, orphaned by an intermediate that exits) that ignores it
# as well: only SIGKILL ends any of them, and only the orphan pass reaches the daemon.
STUBBORN = """
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
def say(text):
    os.write(1, (text + "\\n").encode())
if os.fork() == 0:
    say(f"grandchild {os.getpid()}")
    while True:
        time.sleep(3600)
r, w = os.pipe()
mid = os.fork()
if mid == 0:
    if os.fork() == 0:
        os.setsid()
        say(f"daemon {os.getpid()}")
        os.close(w)
        while True:
            time.sleep(3600)
    os._exit(0)
os.waitpid(mid, 0)
os.close(w)
os.read(r, 1)  # EOF once the daemon has closed its copy: it is running
say("ready")
while True:
    time.sleep(3600)
"""


def test_term_ignored_until_the_timeout_then_everything_is_killed(procs: Processes) -> None:
    script = procs.script("stubborn.py", STUBBORN)
    # On a clock the test jumps: ten minutes of --stop-timeout pass in a moment.
    warden = procs.jumped("--group", "--stop-timeout", "600", "--", script)
    grandchild = int(warden.out.wait_for(r"^grandchild (\d+)$").group(1))
    daemon = int(warden.out.wait_for(r"^daemon (\d+)$").group(1))
    procs.track(grandchild, daemon)
    warden.out.wait_for("^ready$")

    warden.kill(signal.SIGTERM)
    warden.err.wait_for(r'"event": "stop_ladder".*"name": "SIGTERM"')  # its deadline is armed
    assert warden.jump(599.9) == 1599.9
    control(procs.control, "status")  # a round trip: warden ran what the jump woke, if any
    assert warden.jump(0.1) == 1600.0
    assert warden.wait() == 128 + signal.SIGKILL
    # SIGKILL came with the jump to the deadline, not before it.
    lines = warden.err.lines
    jumped = next(i for i, line in enumerate(lines) if line.startswith(f"{JUMPED} 2:"))
    killed = next(i for i, line in enumerate(lines) if '"name": "SIGKILL"' in line)
    assert killed > jumped
    # warden waited for them all: nothing it started is left, not even as a zombie.
    assert proc_state(grandchild) is None
    assert proc_state(daemon) is None
    steps = [(e["name"], str(e["detail"])) for e in warden.events("stop_ladder")]
    assert steps[0][0] == "SIGTERM" and "to process group" in steps[0][1]
    assert steps[-1][0] == "SIGKILL" and steps[-1][1].startswith("deadline")
    exits = [str(e["detail"]) for e in warden.events("child")]
    assert "killed(SIGKILL) — not an OOM kill" in exits


def test_a_second_term_skips_to_sigkill(procs: Processes) -> None:
    script = procs.script("stubborn.py", STUBBORN)
    # A stop timeout far beyond the test's own timeout: only the second signal can end it.
    warden = procs.warden("--stop-timeout", "600", "--", script)
    grandchild = int(warden.out.wait_for(r"^grandchild (\d+)$").group(1))
    daemon = int(warden.out.wait_for(r"^daemon (\d+)$").group(1))
    procs.track(grandchild, daemon)
    warden.out.wait_for("^ready$")

    warden.kill(signal.SIGTERM)
    warden.err.wait_for(r'"event": "stop_ladder".*"name": "SIGTERM"')
    warden.kill(signal.SIGINT)
    assert warden.wait() == 128 + signal.SIGKILL
    assert proc_state(grandchild) is None
    assert proc_state(daemon) is None
    details = [str(e["detail"]) for e in warden.events("stop_ladder")]
    assert any(d.startswith("second stop signal") for d in details), details


def test_prompt_exit_on_term(procs: Processes) -> None:
    script = procs.script(
        "polite.py",
        """
import signal, sys
def bye(signum, frame):
    print("bye", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
print("ready", flush=True)
while True:
    signal.pause()
""",
    )
    warden = procs.warden("--stop-timeout", "600", "--", script)
    warden.out.wait_for("^ready$")
    warden.kill(signal.SIGTERM)
    warden.out.wait_for("^bye$")
    assert warden.wait() == 0
    assert not [e for e in warden.events("stop_ladder") if e["name"] == "SIGKILL"]


def test_orphan_outside_the_group_gets_the_stop_signal_after_the_program(
    procs: Processes,
) -> None:
    # The program exits on TERM at once; its daemon (another session) would be missed by a
    # group signal, so the ladder sends it the stop signal itself and it exits before the
    # deadline.
    script = procs.script(
        "daemonizes.py",
        """
import os, signal, time
def say(text):
    os.write(1, (text + "\\n").encode())
mid = os.fork()
if mid == 0:
    if os.fork() == 0:
        os.setsid()
        def bye(signum, frame):
            say("daemon got TERM")
            os._exit(0)
        signal.signal(signal.SIGTERM, bye)
        say(f"daemon {os.getpid()}")
        while True:
            time.sleep(3600)
    os._exit(0)
os.waitpid(mid, 0)
time.sleep(3600)
""",
    )
    warden = procs.warden("--group", "--stop-timeout", "600", "--", script)
    daemon = int(warden.out.wait_for(r"^daemon (\d+)$").group(1))
    procs.track(daemon)
    warden.kill(signal.SIGTERM)
    warden.out.wait_for("^daemon got TERM$")
    assert warden.wait() == 128 + signal.SIGTERM
    assert proc_state(daemon) is None
