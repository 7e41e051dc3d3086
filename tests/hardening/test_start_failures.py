"""Item 9: a start that did not run the program is never 0, and says why in one line.

Real ``warden run`` processes with a notify socket path too long for AF_UNIX, or too few file
descriptors (``prlimit --nofile``, as ``ulimit -n`` sets it). The program writes a marker
file: it ran, or warden must say why not.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.hardening.conftest import run, warden_argv
from tests.supervisor._systemd_peers import closing_reason


def _program(marker: Path) -> list[str]:
    return ["touch", str(marker)]  # no descriptor of its own beyond the marker


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env["WARDEN_CONTROL"] = str(tmp_path / "control.sock")
    env.update(extra)
    return env


def _assert_said_why(stderr: str, code: int, *words: str) -> None:
    assert code != 0
    assert "Traceback" not in stderr
    # Out of descriptors before the lifecycle could open its own pipe, warden has no log yet
    # and says it in a plain line; after that, its closing fact says it.
    last = stderr.splitlines()[-1]
    last = closing_reason(stderr) if last.startswith("{") else last.removeprefix("warden run: ")
    assert last.startswith("the program was not started: "), stderr[-2000:]
    for word in words:
        assert word in last


def test_a_notify_socket_path_too_long_is_a_failed_start(tmp_path: Path) -> None:
    runtime = Path("/tmp") / ("w" * 85)  # /tmp/www.../warden-XXXXXXXX/notify: over 107 bytes
    runtime.mkdir(mode=0o700)
    try:
        marker = tmp_path / "ran"
        result = run(
            warden_argv("run", "--ready", "notify", "--", *_program(marker)),
            env=_env(tmp_path, XDG_RUNTIME_DIR=str(runtime)),
        )
        assert not marker.exists()
        _assert_said_why(result.stderr, result.returncode, "notify socket path", "AF_UNIX")
        assert os.listdir(runtime) == []  # nothing left behind
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit")
@pytest.mark.parametrize("limit", [6, 7, 8, 9, 10, 12])
def test_too_few_descriptors_runs_the_program_or_says_why(tmp_path: Path, limit: int) -> None:
    marker = tmp_path / "ran"
    result = run(
        ["prlimit", f"--nofile={limit}:", *warden_argv("run", "--", *_program(marker))],
        env=_env(tmp_path),
    )
    if marker.exists():
        assert result.returncode == 0, result.stderr[-2000:]
    else:
        _assert_said_why(result.stderr, result.returncode, "open files")
