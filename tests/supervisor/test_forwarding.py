"""Signals a PID 1 receives for its program reach the program, or its whole group."""

from __future__ import annotations

import signal

import pytest

from warden.supervisor.process._signals import FORWARDED

from .conftest import Processes

# The program (and with --group, a grandchild in its process group) reports every signal it
# receives. Handlers are installed before "ready" is printed, so no signal can beat them.
LISTENER = """
import os, signal, sys
names = sys.argv[1].split(",")
who = "child"
if sys.argv[2] == "group":
    if os.fork() == 0:
        who = "grandchild"
def say(text):
    os.write(1, (text + "\\n").encode())  # one write: lines of two processes never interleave
def report(signum, frame):
    say(f"{who} got {signal.Signals(signum).name}")
for name in names:
    signal.signal(getattr(signal, name), report)
say(f"{who} ready {os.getpid()} pgid {os.getpgrp()}")
while True:
    signal.pause()
"""


@pytest.mark.parametrize("group", [False, True], ids=["child", "group"])
def test_every_forwarded_signal_arrives(procs: Processes, group: bool) -> None:
    named = [signal.Signals(s) for s in FORWARDED if s in signal.Signals._value2member_map_]
    names = [sig.name for sig in named]
    script = procs.script("listener.py", LISTENER)
    mode = "group" if group else "child"
    group_flag = "--group" if group else "--no-group"
    # SIGHUP starts an upgrade by default; --on-hup forward makes it a plain forwarded signal.
    warden = procs.warden(group_flag, "--on-hup", "forward", "--", script, ",".join(names), mode)
    child = warden.out.wait_for(r"^child ready (\d+) pgid (\d+)$")
    procs.track(int(child.group(1)))
    # The program leads a process group of its own (not warden's).
    assert child.group(1) == child.group(2)
    if group:
        grandchild = warden.out.wait_for(r"^grandchild ready (\d+) pgid (\d+)$")
        procs.track(int(grandchild.group(1)))
        assert grandchild.group(2) == child.group(2)

    for sig in named:
        # One at a time: signals of one kind coalesce, and we want to see each arrive.
        warden.kill(sig)
        warden.out.wait_for(f"^child got {sig.name}$")
        if group:
            warden.out.wait_for(f"^grandchild got {sig.name}$")
    if not group:
        assert warden.out.count("grandchild") == 0

    warden.kill(signal.SIGTERM)
    assert warden.wait() == 128 + signal.SIGTERM


def test_stop_signal_is_configurable(procs: Processes) -> None:
    script = procs.script(
        "quit.py",
        """
import signal, sys
def bye(signum, frame):
    print("got", signal.Signals(signum).name, flush=True)
    sys.exit(0)
signal.signal(signal.SIGQUIT, bye)
print("ready", flush=True)
while True:
    signal.pause()
""",
    )
    warden = procs.warden("--stop-signal", "QUIT", "--", script)
    warden.out.wait_for("^ready$")
    warden.kill(signal.SIGTERM)
    warden.out.wait_for("^got SIGQUIT$")
    assert warden.wait() == 0


def test_signal_storm_changes_nothing(procs: Processes) -> None:
    script = procs.script(
        "storm.py",
        """
import signal
seen = 0
def count(signum, frame):
    global seen
    seen += 1
signal.signal(signal.SIGUSR2, count)
def done(signum, frame):
    # A forwarded SIGUSR2 may still be on its way; at exit Python puts back the default
    # action, which would end the program with 140 instead of 0.
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    print("seen some" if seen else "seen none", flush=True)
    raise SystemExit(0)
signal.signal(signal.SIGTERM, done)
print("ready", flush=True)
while True:
    signal.pause()
""",
    )
    warden = procs.warden("--", script)
    warden.out.wait_for("^ready$")
    for _ in range(2000):
        warden.kill(signal.SIGUSR2)
    warden.kill(signal.SIGTERM)
    warden.out.wait_for("^seen some$")
    assert warden.wait() == 0
