"""Item 11: an upgrade that runs out of file descriptors is a failed upgrade like any other.

``prlimit --nofile`` lowers a running warden's limit: the new release cannot get its notify
socket. The client gets a one-line failure (not "internal error"), the upgrade is counted as
failed, a systemd above sees the RELOADING=1 closed by READY=1, no notify directory is left,
and the old release keeps serving.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.supervisor._socket_peers import http_get
from tests.supervisor._systemd_peers import Manager
from tests.supervisor.conftest import Processes, manager  # noqa: F401 (a fixture)
from tests.supervisor.test_upgrade import Service
from warden.supervisor import Supervisor, SupervisorOptions
from warden.supervisor.release._child import RunningChild
from warden.supervisor.release._readiness import parse_ready

pytestmark = pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit")


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _client(procs: Processes, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WARDEN_CONTROL": str(procs.control)}
    return subprocess.run(
        [sys.executable, "-m", "warden", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=env,
    )


def test_an_upgrade_out_of_fds_fails_cleanly(
    procs: Processes,
    manager: Manager,  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    service = Service(procs, env={**manager.env, "XDG_RUNTIME_DIR": str(runtime)})
    ready = manager.wait_for("READY", "1")
    before = set(os.listdir(runtime))
    pid = service.warden.pid
    # Room for the control connection, none for a new release's notify socket.
    limit = _open_fds(pid) + 1
    subprocess.run(["prlimit", f"--pid={pid}", f"--nofile={limit}:"], check=True)
    service.deploy("v2")
    result = _client(procs, "upgrade")
    subprocess.run(["prlimit", f"--pid={pid}", "--nofile=1024:"], check=True)
    assert result.returncode == 1, result
    assert result.stderr.count("\n") == 1, result.stderr
    assert "internal error" not in result.stderr
    assert "upgrade failed" in result.stderr
    assert "Too many open files" in result.stderr
    assert f"pid {service.first} keeps serving" in result.stderr
    # The systemd above saw the reload end.
    reloading = manager.wait_for("RELOADING", "1", after=ready)
    manager.wait_for("READY", "1", after=reloading)
    upgrades = service.upgrades()
    assert upgrades["failed"] == 1, upgrades
    assert upgrades["ok"] == 0, upgrades
    assert set(os.listdir(runtime)) == before, (result.stderr, service.warden.err.text()[-3000:])
    # The old release keeps serving.
    assert http_get(("127.0.0.1", service.port), "/") == (200, f"v1 {service.first}\n")
    assert service.stop() == 0


async def test_an_unforeseen_failure_is_a_counted_failed_upgrade(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A spawn that fails in a way no step foresaw (a bug, a new errno).
    supervisor = Supervisor(SupervisorOptions(command=("app",), ready=parse_ready("notify")))
    old = RunningChild(4242, ("app",), 0.0)
    old.ready_at = 0.0
    supervisor.program.start(old)
    launcher = supervisor.upgrader._launcher

    def spawn(sockets: object = None) -> RunningChild:
        raise RuntimeError("something no step foresaw")

    monkeypatch.setattr(launcher, "spawn", spawn)
    result, _ = await supervisor.upgrader.request()
    assert result.result == "failed"
    assert result.detail == (
        "the upgrade failed: RuntimeError: something no step foresaw; pid 4242 keeps serving"
    )
    # Whatever it started is stopped, and RELOADING=1 upward gets its READY=1.
    kinds = [event.kind for event in supervisor.lifecycle.timeline]
    assert kinds == ["upgrade.started", "upgrade.finished"]
    assert supervisor.program.candidate is None
    assert supervisor.upgrader.tally.upgrades["failed"] == 1
