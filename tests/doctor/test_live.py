"""``warden doctor --live``: the machine it runs on, as ``warden run`` would see it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from warden.doctor._live import _pid1, _runtime, check_live

IDS = {"live-memory", "live-pid1", "live-nofile", "live-oom-score", "live-runtime"}


def test_this_machine() -> None:
    report = check_live()
    assert {r.check for r in report.results} == IDS
    assert report.title == "this machine"
    memory = next(r for r in report.results if r.check == "live-memory")
    assert memory.message.startswith("cgroup v")  # the cgroup warden would read, named


def test_the_command_prints_the_verdict_first_and_json_for_scripts() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "warden", "doctor", "--live"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode in (0, 1)
    assert done.stdout.startswith("warden doctor: ")
    assert "(this machine)" in done.stdout.splitlines()[0]
    as_json = subprocess.run(
        [sys.executable, "-m", "warden", "doctor", "--live", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = json.loads(as_json.stdout)
    assert found["verdict"] in ("clean", "warnings", "errors")
    assert as_json.returncode == (1 if found["verdict"] == "errors" else 0)


def _proc(tmp_path: Path, argv: list[str], comm: str) -> Path:
    one = tmp_path / "proc" / "1"
    one.mkdir(parents=True)
    (one / "cmdline").write_bytes(b"\0".join(word.encode() for word in argv) + b"\0")
    (one / "comm").write_text(comm + "\n")
    return tmp_path


@pytest.mark.parametrize(
    ("argv", "comm", "status", "words"),
    [
        (["/bin/sh", "-c", "warden run -- app"], "sh", "error", "PID 1 is a shell (sh)"),
        (["/usr/local/bin/warden", "run", "--", "app"], "warden", "ok", "PID 1 is warden run"),
        (["/usr/bin/python3", "-m", "warden", "run", "--", "app"], "python3", "ok", "warden run"),
        (["/sbin/tini", "--", "app"], "tini", "ok", "an init (tini)"),
        (["/usr/bin/app"], "app", "warning", "PID 1 is app, neither warden nor an init"),
    ],
)
def test_pid_1(tmp_path: Path, argv: list[str], comm: str, status: str, words: str) -> None:
    found = _pid1(_proc(tmp_path, argv, comm))
    assert found.status == status and words in found.message


def test_a_control_directory_others_may_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # writable by all, not sticky
    monkeypatch.setenv("WARDEN_CONTROL", str(shared / "control.sock"))
    control = _runtime()[0]
    assert control.status == "error"
    assert "writable by other users and not sticky" in control.message
    monkeypatch.setenv("WARDEN_CONTROL", str(tmp_path / ("x" * 120) / "control.sock"))
    long = _runtime()[0]
    assert long.status == "error" and "above the 107 an AF_UNIX address holds" in long.message
    monkeypatch.setenv("WARDEN_CONTROL", str(tmp_path / "control.sock"))
    assert _runtime()[0].status == "ok"
