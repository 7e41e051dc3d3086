"""``warden demo``'s bad input: one line, exit 2, and nothing of the user's touched."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "warden", "demo", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--upgrade-confirm", "-1"], "--upgrade-confirm"),
        (["--upgrade-confirm", "soon"], "--upgrade-confirm"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(args: list[str], says: str) -> None:
    done = demo(*args)
    assert done.returncode == 2
    assert done.stderr.startswith("warden demo: error: "), done.stderr
    assert done.stderr.count("\n") == 1 and says in done.stderr, done.stderr
    assert done.stdout == ""


def test_keep_refuses_a_directory_with_something_in_it(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("mine")
    done = demo("--keep", str(tmp_path))
    assert done.returncode == 2
    assert f"--keep {tmp_path}: the directory is not empty" in done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["precious.txt"]


def test_keep_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("mine")
    done = demo("--keep", str(tmp_path / "a-file"))
    assert done.returncode == 2
    assert "exists and is not a directory" in done.stderr
    assert (tmp_path / "a-file").read_text() == "mine"


def test_help_names_the_demo_and_its_exit_codes() -> None:
    done = demo("--help")
    assert done.returncode == 0
    assert (
        "--keep DIR" in done.stdout and "exit codes: 0 every promise that ran held" in done.stdout
    )
    help_text = " ".join(done.stdout.split())
    for said in ("2 bad usage, or the demo could not run here", "129 SIGHUP", "141 its output"):
        assert said in help_text, help_text
    listed = subprocess.run(
        [sys.executable, "-m", "warden", "--help"], capture_output=True, text=True, check=False
    )
    assert "  demo " in listed.stdout


def test_the_demo_itself_loads_no_event_loop_and_no_supervisor() -> None:
    """The demo drives ``warden run`` as a process: its own process imports the root
    leaves and the memory library (to ask the kernel), not the lifecycle or asyncio; the
    bundled service, a process of its own, is what is built on the library."""
    code = (
        "import json, sys, warden.demo._main, warden.demo._cgroup as c; "
        "c.why_no_memory_cgroup(); "
        "print(json.dumps([m for m in sys.modules if m == 'asyncio' or m.startswith('warden.')]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    loaded = json.loads(done.stdout)
    assert "asyncio" not in loaded
    layers = {name.split(".")[1] for name in loaded}
    assert layers <= {"demo", "memory", "_exceptions", "_version", "_durations", "_lazy"}, layers
