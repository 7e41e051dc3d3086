"""``warden demo`` where it cannot write its files: one line, every step not run, exit 2.

A real tmpfs of 16 KiB stands for a full or tiny ``$TMPDIR``: the demo must say so in one
line, naming the directory and where to point it, before it starts anything, and not report
promises broken for a reason of its own.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._leftovers import Before

pytestmark = pytest.mark.timeout(60)

STEPS = ["start", "config reload", "upgrade", "broken release", "memory", "graceful stop"]


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[Path]:
    """A 16 KiB tmpfs, mounted for the test and unmounted after it."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16k,mode=0755", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    before = Before(mount)
    try:
        yield mount
    finally:
        before.clean_up()  # what a demo that did not stop at once left
        subprocess.run(["umount", str(mount)], check=True)


def _demo(tmpdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env.update(TMPDIR=str(tmpdir), PYTHONIOENCODING="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "warden", "demo", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=50,
        check=False,
    )


def test_a_tiny_tmpdir_is_said_in_one_line_and_no_step_runs(tiny: Path) -> None:
    done = _demo(tiny)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    line = done.stderr
    assert line.startswith(f"warden demo: error: cannot write in $TMPDIR ({tiny}): "), line
    assert "TMPDIR=" in line and "free" in line, line
    assert "Traceback" not in done.stdout + done.stderr
    not_run = [line for line in done.stdout.splitlines() if "not run" in line]
    assert [name for name in STEPS if any(f" {name} " in line for line in not_run)] == STEPS
    assert not re.search("[✗x] broken", done.stdout), done.stdout
    assert list(tiny.iterdir()) == []


def test_json_says_not_run_with_the_reason(tiny: Path) -> None:
    done = _demo(tiny, "--json")
    assert done.returncode == 2
    summary = json.loads(done.stdout)
    assert summary["verdict"] == "not run" and summary["not_run"] == len(STEPS)
    assert summary["error"].startswith("cannot write in $TMPDIR")
    assert [s["verdict"] for s in summary["steps"]] == ["not run"] * len(STEPS)


def test_keep_where_there_is_no_room_names_keep(tiny: Path, tmp_path: Path) -> None:
    done = _demo(tmp_path, "--keep", str(tiny / "kept"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(f"warden demo: error: --keep {tiny / 'kept'}: "), done.stderr
    assert done.stderr.count("\n") == 1
    assert not (tiny / "kept").exists()


def test_a_closed_stderr_keeps_the_exit_code(tiny: Path) -> None:
    """Nowhere to say it (``2>&-``): the exit code still says it, and stdout the steps."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env.update(TMPDIR=str(tiny))
    done = subprocess.run(
        ["sh", "-c", f'exec "{sys.executable}" -m warden demo --json 2>&-'],
        capture_output=True,
        text=True,
        env=env,
        timeout=50,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert json.loads(done.stdout)["verdict"] == "not run"
