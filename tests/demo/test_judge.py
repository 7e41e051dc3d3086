"""The judge's rules on measured records: each clause of a promise can break it.

The end-to-end tests (test_demo.py) run the real demo; these feed the rules records a real
run could produce, one clause broken at a time, to show each clause is checked.
"""

from __future__ import annotations

import dataclasses

import pytest

from warden.demo._clients import Figures
from warden.demo._judge import (
    Leaked,
    Level,
    Stopped,
    Upgraded,
    judge_memory,
    judge_stop,
    judge_upgrade,
)

CLEAN = Figures(served=1000, failed=0, p50=0.001, p99=0.01, start=10.0, end=12.0)


def _stopped(**changes: object) -> Stopped:
    held = Stopped(
        sent=4,
        in_flight=4,
        answered=4,
        readiness_false_after=0.001,
        readyz=(200, 503),
        stop_order=("http", "leak", "writes", "config"),
        start_order=("config", "writes", "leak", "http"),
        stops_ok=True,
        exit_code=0,
        took=1.6,
        writes=250,
        lost=0,
        figures=CLEAN,
    )
    return dataclasses.replace(held, **changes)  # type: ignore[arg-type]


def test_a_clean_stop_holds() -> None:
    report = judge_stop(_stopped())
    assert report.verdict == "held", report.checks


@pytest.mark.parametrize(
    ("changes", "clause"),
    [
        ({"readiness_false_after": 0.5}, "readiness false within milliseconds"),
        ({"readyz": (200, 200)}, "readiness false within milliseconds"),
        ({"answered": 3}, "every in-flight request answered"),
        ({"in_flight": 0, "answered": 0}, "every in-flight request answered"),
        ({"in_flight": 0}, "every in-flight request answered"),  # answered, never in hand
        ({"start_order": None}, "components stopped in order"),  # not seen whole
        ({"stop_order": None}, "components stopped in order"),
        ({"start_order": ("config", "writes")}, "components stopped in order"),
        ({"stop_order": ("writes", "http", "leak", "config")}, "components stopped in order"),
        ({"stops_ok": False}, "components stopped in order"),
        ({"exit_code": 143}, "exit 0"),
        ({"lost": 1}, "every acknowledged write on disk"),
    ],
)
def test_each_clause_of_the_stop_can_break_it(changes: dict[str, object], clause: str) -> None:
    report = judge_stop(_stopped(**changes))
    assert report.verdict == "broken"
    assert [c.what for c in report.checks if not c.held] == [clause]


def test_the_stop_says_what_was_sent_not_more_answered_than_held() -> None:
    """A service whose facts were not seen: 4 sent, 4 answered, 0 seen in hand; the
    summary counts what was sent ("4 of 4"), never "4 of 0"."""
    report = judge_stop(_stopped(in_flight=0))
    assert "4 of 4 in flight answered" in report.summary
    measured = next(c.measured for c in report.checks if not c.held)
    assert measured == "4 of 4 answered; 0 of them were in the service's hands at SIGTERM"


def test_one_failed_request_breaks_an_upgrade() -> None:
    ok = Upgraded("ok", "pid 1 -> 2", 1.2, 1, 2, 500, 0, CLEAN)
    assert judge_upgrade(ok).verdict == "held"
    one = dataclasses.replace(ok, figures=dataclasses.replace(CLEAN, failed=1))
    report = judge_upgrade(one)
    assert report.verdict == "broken"
    assert [c.measured for c in report.checks if not c.held] == ["1 of 1,001 failed"]


def test_a_moved_oom_kill_counter_breaks_the_memory_promise() -> None:
    warn = Level("warn", 300 * 2**20, 384 * 2**20, 8.9)
    held = Leaked(
        limit=384 * 2**20,
        leaking_pid=7,
        jump=272 * 2**20,
        rate=8 * 2**20,
        levels=(warn,),
        recycled=True,
        recycle_reason="...",
        upgrade="pid 7 -> 8",
        ended="exited(0)",
        oom_killed=False,
        oom_before=0,
        oom_after=0,
        cgroup="/sys/fs/cgroup/memory/x",
        writes=100,
        lost=0,
        figures=CLEAN,
    )
    assert judge_memory(held).verdict == "held"
    report = judge_memory(dataclasses.replace(held, oom_after=1))
    assert [c.what for c in report.checks if not c.held] == ["oom_kill counter unchanged"]
    killed = judge_memory(dataclasses.replace(held, ended="oom-killed", oom_killed=True))
    assert "recycled or stopped gracefully before the OOM killer" in [
        c.what for c in killed.checks if not c.held
    ]
