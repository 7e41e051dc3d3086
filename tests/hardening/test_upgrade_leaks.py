"""Issue 19, item 2: nothing a run holds outlives it, across 1,000 upgrades of a real warden.

Each upgrade makes a run: its notify socket, its OOM-kill attribution (the cgroup's counter),
sibling listening sockets steered by a BPF program, a control connection. Every upgrade used
to leave four cgroup files open (a reader per run, never closed), so a warden with
``ulimit -n 1024`` ran out after about 250 upgrades. The release is the smallest program that
says READY=1 (``--upgrade-confirm 0``), so 1,000 upgrades take about half a minute.

Descriptors are counted in ``/proc/PID/fd`` once warden is idle again (the last control
connection closes just after its reply). Memory is warden's resident set: bounded growth once
the timeline's bounded record has filled, not a timing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.supervisor._socket_peers import http_get
from tests.supervisor._systemd_peers import free_port
from tests.supervisor.conftest import Processes, wait_until
from tests.supervisor.test_upgrade import Service
from warden.cli._control import request

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

UPGRADES = 1000
#: The timeline keeps its last 2,000 events (about 8 per upgrade): full well before this.
WARM = 300
#: Resident growth allowed from upgrade WARM to UPGRADES: measured 0.3-1.0 MiB (allocator
#: arenas); a per-run leak of a few KiB (a run's records kept) would cross it.
RSS_GROWTH = 4 * 2**20

RELEASE = """\
import os, signal, socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(os.environ["NOTIFY_SOCKET"])
s.send(b"READY=1")
signal.pause()
"""


def _fds(pid: int) -> dict[str, str]:
    found = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            found[fd] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
    return found


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def _wait_flat(pid: int, baseline: dict[str, str], upgrades: int) -> None:
    """Wait for warden to hold no more descriptors than ``baseline`` (a control connection
    closes just after its reply); say which are new if it never does."""
    try:
        wait_until(lambda: len(_fds(pid)) <= len(baseline), "no descriptor left over")
    except AssertionError:
        now = _fds(pid)
        extra = sorted(target for fd, target in now.items() if baseline.get(fd) != target)
        raise AssertionError(
            f"{len(now)} descriptors after {upgrades} upgrades, {len(baseline)} before; "
            f"new: {extra[:12]}"
        ) from None


def _upgrade(procs: Processes) -> None:
    reply = request(str(procs.control), {"command": "upgrade"}, 60.0)
    assert reply.get("ok") is True, reply


def test_descriptors_and_memory_stay_flat_across_upgrades(procs: Processes) -> None:
    warden = procs.warden(
        "--ready",
        "notify",
        "--upgrade-confirm",
        "0",
        "--listen",
        "tcp://127.0.0.1:0",
        "--",
        sys.executable,
        "-I",
        "-S",
        "-c",
        RELEASE,
    )
    warden.err.wait_for(r'"message": "state ready')
    for _ in range(5):  # whatever is made once (the first steering, the first control reply)
        _upgrade(procs)
    baseline = _fds(warden.pid)
    rss_warm = 0
    for done in range(1, UPGRADES + 1):
        _upgrade(procs)
        if done == WARM:
            rss_warm = _rss(warden.pid)
    _wait_flat(warden.pid, baseline, UPGRADES)
    growth = _rss(warden.pid) - rss_warm
    assert growth < RSS_GROWTH, f"resident set grew {growth / 2**20:.1f} MiB"
    warden.kill(15)
    assert warden.wait() in (0, 143)


HTTP_UPGRADES = 60


def test_an_http_gate_and_its_window_leave_nothing_behind(procs: Processes) -> None:
    """The same with what an ``http`` gate adds per run: a private probe socket, probes in the
    gate and in a confirmation window (a timer each), a watchdog timer; and a health server.
    """
    port = free_port()
    service = Service(
        procs,
        "--upgrade-confirm",
        "0.1",
        "--watchdog",
        "2s",
        "--health",
        f"127.0.0.1:{free_port()}",
        port=port,
        ready=f"http://127.0.0.1:{port}/",
    )
    pid = service.warden.pid
    for n in range(2, 5):
        service.upgrade_to(f"v{n}", ok=True)
    baseline = _fds(pid)
    for _ in range(HTTP_UPGRADES):
        reply = request(str(procs.control), {"command": "upgrade"}, 60.0)
        assert reply.get("ok") is True, reply
    _wait_flat(pid, baseline, HTTP_UPGRADES)
    assert http_get(("127.0.0.1", service.port), "/")[0] == 200
    assert service.stop() == 0
