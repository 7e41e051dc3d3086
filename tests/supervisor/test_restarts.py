"""Restarts with backoff, a crash loop that gives up loudly, and stops during a backoff."""

from __future__ import annotations

import signal

from ._systemd_peers import closing_reason
from .conftest import Processes

# Each start appends a line to a file, then exits with the code given (or, from the Nth start
# on, with another one).
COUNTING = """
import sys
from pathlib import Path
log = sys.argv[1]
code, later_from, later_code = map(int, sys.argv[2:5])
with open(log, "a") as f:
    f.write("start\\n")
starts = len(Path(log).read_text().splitlines())
print("start", starts, flush=True)
raise SystemExit(later_code if starts >= later_from else code)
"""

FAST = ["--backoff-initial", "20ms", "--backoff-max", "80ms", "--min-uptime", "60s"]


def test_crash_loop_gives_up_with_a_clear_final_line(procs: Processes) -> None:
    log = procs.tmp_path / "starts"
    script = procs.script("crash.py", COUNTING)
    options = ["--restart", "on-failure", *FAST, "--max-restarts", "3"]
    warden = procs.warden(*options, "--", script, str(log), "4", "99", "0")
    assert warden.wait() == 4
    assert log.read_text().splitlines() == ["start"] * 4
    attempts = [e["name"] for e in warden.events("restart")]
    assert attempts == ["attempt 1", "attempt 2", "attempt 3"]
    final = closing_reason(warden.err.text())
    assert final.startswith("giving up after 3 restarts: the program ended 4 times")
    assert "(last: exited(4))" in final


def test_backoff_delays_grow_and_stay_under_the_maximum(procs: Processes) -> None:
    log = procs.tmp_path / "starts"
    script = procs.script("crash.py", COUNTING)
    options = [
        "--restart",
        "always",
        "--backoff-initial",
        "10ms",
        "--backoff-max",
        "40ms",
        "--backoff-jitter",
        "0",
        "--min-uptime",
        "60s",
        "--max-restarts",
        "5",
    ]
    warden = procs.warden(*options, "--", script, str(log), "0", "99", "0")
    assert warden.wait() == 1  # a loop of clean exits is still a failure
    delays = [str(e["detail"]).rsplit(" ", 1)[-1] for e in warden.events("restart")]
    assert delays == ["0.01s", "0.02s", "0.04s", "0.04s", "0.04s"]


def test_restart_until_it_succeeds(procs: Processes) -> None:
    log = procs.tmp_path / "starts"
    script = procs.script("flaky.py", COUNTING)
    warden = procs.warden("--restart", "on-failure", *FAST, "--", script, str(log), "1", "3", "0")
    assert warden.wait() == 0
    assert len(log.read_text().splitlines()) == 3
    exits = [str(e["detail"]) for e in warden.events("child") if "exited" in str(e["detail"])]
    assert exits == ["exited(1)", "exited(1)", "exited(0)"]


def test_env_selects_the_policy(procs: Processes) -> None:
    log = procs.tmp_path / "starts"
    script = procs.script("flaky.py", COUNTING)
    warden = procs.warden(
        "--",
        script,
        str(log),
        "1",
        "2",
        "0",
        env={
            "WARDEN_RESTART": "on-failure",
            "WARDEN_BACKOFF_INITIAL": "10ms",
            "WARDEN_BACKOFF_MAX": "10ms",
        },
    )
    assert warden.wait() == 0
    assert len(log.read_text().splitlines()) == 2


def test_stop_during_backoff_exits_with_the_last_code(procs: Processes) -> None:
    log = procs.tmp_path / "starts"
    script = procs.script("crash.py", COUNTING)
    options = ["--restart", "on-failure", "--backoff-initial", "10m", "--backoff-max", "10m"]
    warden = procs.warden(*options, "--", script, str(log), "6", "99", "0")
    warden.err.wait_for(r'"event": "restart"')
    warden.kill(signal.SIGTERM)
    assert warden.wait() == 6
    assert len(log.read_text().splitlines()) == 1


def test_no_restart_by_default(procs: Processes) -> None:
    log = procs.tmp_path / "starts"
    warden = procs.warden("--", procs.script("crash.py", COUNTING), str(log), "2", "99", "0")
    assert warden.wait() == 2
    assert len(log.read_text().splitlines()) == 1
    assert warden.events("restart") == []
