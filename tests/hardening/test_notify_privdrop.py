"""Item 13: a program that drops privileges (``setpriv``, as gosu and su-exec do) can still say
READY=1 and ping its watchdog; another user who finds the socket cannot speak for it.

A real second uid (created and removed by the ``other_user`` fixture) runs the program after
``setpriv``; the notify socket lives in a sticky shared directory both users can reach, as
``/run`` is.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.hardening.conftest import User
from tests.supervisor.conftest import Processes

# Says READY=1 (unless told "hang"), prints its notify path, then pings the watchdog every
# 0.2 s; "pinged" after 10 pings (more than a 1 s watchdog lasts without them).
PROGRAM = """
import os, signal, socket, sys, time
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.connect(os.environ["NOTIFY_SOCKET"])
print("uid", os.getuid(), os.environ["NOTIFY_SOCKET"], flush=True)
if sys.argv[1] == "hang":
    signal.pause()
sock.send(b"READY=1")
for n in range(1, 10**6):
    time.sleep(0.2)
    sock.send(b"WATCHDOG=1")
    if n == 10:
        print("pinged", flush=True)
"""

INJECT = """
import socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.connect(sys.argv[1])
sock.send(b"READY=1")
print("sent", flush=True)
"""


def test_a_program_that_drops_privileges_says_ready_and_pings_its_watchdog(
    procs: Processes, other_user: User, shared_dir: Path
) -> None:
    warden = procs.warden(
        "--ready",
        "notify",
        "--watchdog",
        "1s",
        "--",
        *other_user.python(PROGRAM, "serve"),
        env={"XDG_RUNTIME_DIR": str(shared_dir)},
    )
    match = warden.out.wait_for(r"^uid (\d+) (\S+)$")
    assert int(match.group(1)) == other_user.uid
    warden.err.wait_for(r'"outcome": "ready".*"detail": "gate: notify"')
    warden.out.wait_for("^pinged$")
    assert not warden.events("watchdog")
    warden.kill(signal.SIGTERM)
    assert warden.wait() == 0
    assert os.listdir(shared_dir) == []


def test_another_user_cannot_say_ready_for_it(
    procs: Processes, other_user: User, shared_dir: Path
) -> None:
    warden = procs.jumped(  # on a clock the test jumps over the 3 s
        "--ready",
        "notify",
        "--ready-timeout",
        "3s",
        "--",
        *other_user.python(PROGRAM, "hang"),
        env={"XDG_RUNTIME_DIR": str(shared_dir)},
    )
    path = warden.out.wait_for(r"^uid \d+ (\S+)$").group(1)
    # The same uid as the program, but not the program nor one of its processes.
    injected = subprocess.run(
        other_user.python(INJECT, path), capture_output=True, text=True, timeout=20, check=False
    )
    assert injected.stdout == "sent\n", injected.stderr
    # Nobody else can list the directory (nor add to it); the path itself is no secret.
    listed = subprocess.run(
        other_user.argv("ls", str(Path(path).parent)), capture_output=True, timeout=20, check=False
    )
    assert listed.returncode != 0
    warden.jump(3)  # the gate's timeout (armed with the start, before the program said a word)
    assert warden.wait(timeout=30) == 4  # not ready: the injected READY=1 did not count
    assert "failed to become ready within 3s" in warden.err.text()
