"""``warden demo`` ended early, however: nothing of it is left running or on disk.

A demo stopped by a signal (^C, SIGTERM, a closed terminal's SIGHUP, ^\\'s SIGQUIT) stops its
warden and service, removes warden's memory cgroup and its own directories, and exits 128+N.
One killed by SIGKILL cannot clean up itself: its warden is tied to it (a pipe whose other end
a watcher waits on), so the watcher stops warden and removes what the demo would have. One
whose output is closed (``warden demo | head -3``) ends quietly, exit 141, cleaned up too.

Each run is the real demo (``python -m warden demo``), signalled once its first step has
resolved: warden, its service and the traffic are then running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._leftovers import Before, processes_naming

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

#: How long what the demo started may take to end once it is gone (warden's graceful stop).
GONE_WITHIN = 30.0


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Before]:
    """The demo's TMPDIR and what existed before; whatever the run left is removed after."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    before = Before(directory)
    yield before
    before.clean_up()


def _demo(scratch: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env.update(TMPDIR=str(scratch), PYTHONIOENCODING="utf-8")
    return subprocess.Popen(
        [sys.executable, "-m", "warden", "demo", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,  # its own process group: ^C goes to it as a terminal sends it
    )


def _until_started(demo: subprocess.Popen[bytes]) -> None:
    """Read the demo's lines up to its resolved start step (warden and traffic run then)."""
    assert demo.stdout is not None and demo.stderr is not None
    lines = []
    for line in demo.stdout:
        lines.append(line)
        if b" start " in line and (b"held" in line or b"broken" in line):
            return
    raise AssertionError(b"".join(lines).decode() + demo.stderr.read().decode())


def _nothing_left(scratch: Before) -> None:
    assert scratch.left(GONE_WITHIN) == []
    assert list(scratch.path.iterdir()) == [], list(scratch.path.iterdir())


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGQUIT])
def test_a_signal_stops_warden_removes_everything_and_exits_128_plus_n(
    scratch: Before, signum: int
) -> None:
    with _demo(scratch.path) as demo:
        _until_started(demo)
        if signum == signal.SIGINT:
            os.killpg(demo.pid, signum)  # ^C: the terminal signals the whole foreground group
        else:
            os.kill(demo.pid, signum)
        out, err = demo.communicate(timeout=60)
    assert demo.returncode == 128 + signum, out.decode() + err.decode()
    assert b"Traceback" not in err, err.decode()
    assert b"interrupted; warden and its service stopped" in err, err.decode()
    _nothing_left(scratch)


def test_sighup_of_a_closed_terminal_cleans_up_as_the_others(scratch: Before) -> None:
    """A closed terminal (or a dropped ssh session): SIGHUP, and nowhere to write any more."""
    with _demo(scratch.path) as demo:
        _until_started(demo)
        assert demo.stdout is not None and demo.stderr is not None
        demo.stdout.close()
        demo.stderr.close()
        os.kill(demo.pid, signal.SIGHUP)
        assert demo.wait(60) == 128 + signal.SIGHUP
    _nothing_left(scratch)


def test_sigkill_of_the_demo_leaves_nothing_for_ever(scratch: Before) -> None:
    """The demo cannot clean up after SIGKILL: its warden, tied to it, is stopped by the
    watcher, which removes the demo's directories."""
    with _demo(scratch.path) as demo:
        _until_started(demo)
        assert len(processes_naming(scratch.path)) >= 2  # warden and its service, at least
        demo.kill()
        demo.wait(10)
    _nothing_left(scratch)


def test_a_closed_output_ends_the_demo_quietly_with_141(scratch: Before) -> None:
    """``warden demo | head -3``: the reader goes away after three lines."""
    with _demo(scratch.path) as demo:
        assert demo.stdout is not None and demo.stderr is not None
        for _ in range(3):
            demo.stdout.readline()
        demo.stdout.close()
        err = demo.stderr.read()
        assert demo.wait(60) == 141, err.decode()
    assert err == b"", err.decode()
    _nothing_left(scratch)
