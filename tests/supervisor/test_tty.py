"""On a terminal: the program gets the foreground, as with tini (Ctrl-C goes to it), and warden
says a handful of lines a person needs; the JSON log keeps every fact."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys

import pytest

from .conftest import Processes

pytestmark = pytest.mark.skipif(shutil.which("script") is None, reason="needs script(1)")

PROGRAM = """
import os, signal, sys
def bye(signum, frame):
    print("got", signal.Signals(signum).name, flush=True)
    sys.exit(0)
signal.signal(signal.SIGINT, bye)
print("foreground", os.tcgetpgrp(0) == os.getpgrp(), flush=True)
signal.pause()
"""


def test_program_owns_the_terminal_and_gets_ctrl_c(procs: Processes) -> None:
    program = procs.script("fg.py", PROGRAM)
    command = shlex.join([sys.executable, "-m", "warden", "run", "--", program])
    # script(1) runs the command as a session leader on a new pseudo-terminal and copies its
    # own stdin to it, so the Ctrl-C byte goes through the terminal's line discipline, which
    # sends SIGINT to the terminal's foreground process group.
    proc = subprocess.Popen(
        ["script", "-qefc", command, "/dev/null"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    procs.track(proc.pid)
    assert proc.stdin is not None and proc.stdout is not None
    seen = b""
    while b"foreground" not in seen:
        line = proc.stdout.readline()
        assert line, seen.decode(errors="replace")
        seen += line
    assert b"foreground True" in seen
    proc.stdin.write(b"\x03")
    proc.stdin.flush()
    rest, _ = proc.communicate(timeout=20)
    assert b"got SIGINT" in rest
    assert proc.returncode == 0


# -- what a person sees on a terminal, and what the JSON log keeps ------------------------

#: A handful: the program started, ready, how it ended (and why warden exits, in one line).
HANDFUL = 6
#: warden's own lines: its log on a terminal (``12:00:01.123 warden ...``) and its last word.
WARDEN_LINE = re.compile(r"^(\d\d:\d\d:\d\d\.\d{3} warden |warden run: )")
#: Internal steps, which a person on a terminal does not need (DEBUG, in the JSON log).
INTERNAL = re.compile(
    r" (start|stop) (sockets|memory|control|child) | main | stop_requested| state |oom_score_adj"
    r"|not an OOM kill"
)

STOPS_ON_TERM = """
import os, signal, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("up", os.getppid(), flush=True)
signal.pause()
"""


class OnATerminal:
    """``warden run`` on a pseudo-terminal of its own (script(1)), as a person runs it."""

    def __init__(self, procs: Processes, *argv: str) -> None:
        warden = [sys.executable, "-m", "warden", "run", "--control", "none", *argv]
        self.proc = subprocess.Popen(
            ["script", "-qefc", "exec " + shlex.join(warden), "/dev/null"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "XDG_RUNTIME_DIR": str(procs.runtime)},
            start_new_session=True,
        )
        procs.track(self.proc.pid)
        assert self.proc.stdout is not None
        self.seen: list[str] = []

    def wait_for(self, pattern: str) -> re.Match[str]:
        assert self.proc.stdout is not None
        while True:
            raw = self.proc.stdout.readline()
            assert raw, "\n".join(self.seen)
            self.seen.append(raw.decode(errors="replace").rstrip("\r\n"))
            if match := re.search(pattern, self.seen[-1]):
                return match

    def finish(self) -> tuple[int, list[str]]:
        rest, _ = self.proc.communicate(timeout=20)
        self.seen += rest.decode(errors="replace").replace("\r\n", "\n").splitlines()
        return self.proc.returncode, [line for line in self.seen if WARDEN_LINE.match(line)]


def _check_handful(lines: list[str]) -> None:
    assert len(lines) <= HANDFUL, "\n".join(lines)
    assert not [line for line in lines if INTERNAL.search(line)], "\n".join(lines)


def test_a_failing_program_takes_a_handful_of_lines(procs: Processes) -> None:
    run = OnATerminal(procs, "--", "sh", "-c", "echo hi; exit 3")
    code, lines = run.finish()
    assert code == 3
    assert "hi" in run.seen
    _check_handful(lines)
    assert any("started: sh -c echo hi; exit 3" in line for line in lines), lines
    exited = [line for line in lines if "child pid" in line and line.endswith("exited(3)")]
    assert len(exited) == 1 and " warning: " in exited[0], lines  # non-zero: a warning
    # The closing line says why warden exits, last, as a warning too.
    assert lines[-1].endswith("warning: exit 3: the program exited(3)"), lines


def test_a_start_and_a_sigterm_stop_take_a_handful_of_lines(procs: Processes) -> None:
    run = OnATerminal(procs, "--", sys.executable, procs.script("term.py", STOPS_ON_TERM))
    warden_pid = int(run.wait_for(r"^up (\d+)$").group(1))
    os.kill(warden_pid, signal.SIGTERM)
    code, lines = run.finish()
    assert code == 0
    _check_handful(lines)
    assert any(line.endswith("exited(0)") and " warning: " not in line for line in lines), lines
    assert any("signal SIGTERM" in line for line in lines), lines  # why it stopped


def test_the_json_log_keeps_every_fact(procs: Processes) -> None:
    run = procs.warden("--", "sh", "-c", "exit 3")
    assert run.wait() == 3
    records = [json.loads(line) for line in run.err.lines if line.startswith("{")]
    # Every fact of the timeline, in order, none left out: the internal steps at debug.
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    levels = {(r["kind"], r.get("name")): r["level"] for r in records}
    assert levels[("start", "sockets")] == levels[("stop", "child")] == "debug"
    assert levels[("main", None)] == levels[("stop_requested", None)] == "debug"
    assert [r["name"] for r in records if r["kind"] == "state"] == [
        "starting", "ready", "draining", "stopping", "stopped",
    ]  # fmt: skip
    assert [r["level"] for r in records if r["kind"] == "child.exited"] == ["warning"]
    assert [r["level"] for r in records if r["kind"] == "child.started"] == ["info"]
