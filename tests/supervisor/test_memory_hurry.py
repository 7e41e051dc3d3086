"""Memory at critical during an upgrade: the new release goes in, the old one drains.

A ``--recycle-at`` copy starting beside a leaking release can itself push memory to
``critical`` (its start-up is growth the sentinel projects to the limit). Stopping the old
release where it stands then, with connections still steered to it for the confirmation
window, reset every connection queued on it (the demo measured 4 failed requests, one per
client). Now the upgrade is hurried instead: its window ends as soon as the new release is
ready, the new release is promoted, and the old one drains as in any upgrade.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.supervisor.conftest import Processes, wait_until
from tests.supervisor.test_memory_run import (  # noqa: F401 (fixtures)
    Cgroups,
    PacedLoad,
    cgroups,
    facts,
    finish,
    start,
    status,
)

pytestmark = pytest.mark.timeout(90)

# A release whose size is set by its release file: MiB taken before READY=1, then one more
# MiB per request until it holds CAP MiB. Every socket handed over is served.
HUNGRY = """\
import os, select, signal, socket, sys
from pathlib import Path

name, startup, cap = Path(sys.argv[1]).read_text().split()
MIB = 2**20
held = [b"\\1" * MIB for _ in range(int(startup))]  # written, so resident
wakeup, wakeup_w = os.pipe()
os.set_blocking(wakeup_w, False)
signal.set_wakeup_fd(wakeup_w)
signal.signal(signal.SIGTERM, lambda *_: None)
listeners = [socket.socket(fileno=3 + i) for i in range(int(os.environ["LISTEN_FDS"]))]
for listener in listeners:
    listener.setblocking(False)
print(f"started {name} {os.getpid()}", flush=True)
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
while True:
    readable = select.select([*listeners, wakeup], [], [])[0]
    if wakeup in readable:
        break
    for listener in readable:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:  # the other release took it
            continue
        conn.setblocking(True)
        with conn:
            conn.recv(65536)
            if len(held) < int(cap):
                held.append(b"\\1" * MIB)
            body = f"{name} {os.getpid()}\\n".encode()
            head = f"HTTP/1.1 200 OK\\r\\nContent-Length: {len(body)}\\r\\n"
            conn.sendall(head.encode() + b"Connection: close\\r\\n\\r\\n" + body)
print(f"stopped {name} {os.getpid()}", flush=True)
"""


def test_critical_during_a_recycle_hurries_the_upgrade_and_fails_no_request(
    procs: Processes,
    cgroups: Cgroups,  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    release = tmp_path / "release"
    release.write_text("v1 10 70")  # leaks to 70 MiB under load: recycled at 60
    script = procs.script("hungry.py", HUNGRY)
    warden = start(
        procs, cgroups,
        "--listen", "tcp://127.0.0.1:0", "--ready", "notify",
        "--memory-limit", "200M", "--recycle-at", "60M", "--upgrade-confirm", "5s",
        "--", script, str(release),
    )  # fmt: skip
    warden.out.wait_for(r"^started v1 (\d+)$")
    warden.err.wait_for(r'"event": "state", "state": "ready"')
    port = int(str(status(procs)["sockets"]).split("127.0.0.1:")[1].split(" ")[0].rstrip("'\"]"))
    # The fresh copy takes 85 MiB at once beside the leaking one: above warn, and growing
    # fast enough that the limit is projected within a second: critical.
    release.write_text("v2 85 0")
    with PacedLoad(port, 0.01) as load:
        wait_until(lambda: bool(facts(warden, "upgrade.finished")), "the recycle", timeout=60)
    finished = [json.loads(line) for line in warden.err.lines if '"upgrade.finished"' in line]
    result = finished[0]["data"]
    assert load.failures == [], load.failures[:5]
    assert result["result"] == "ok", result
    hurried = facts(warden, "memory.hurry")
    assert hurried, [
        json.loads(line)["message"] for line in warden.err.lines if '"kind": "memory' in line
    ]
    assert facts(warden, "memory.stop") == []  # the old release was drained, not stopped
    assert any(answer.startswith("v2 ") for answer in load.answers)
    warden.kill(15)
    assert finish(warden, cgroups) == 0
