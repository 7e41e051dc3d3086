"""The restart policy and its backoff, with the clock and the random source injected."""

from __future__ import annotations

import signal

import pytest

from warden.lifecycle import ManualClock
from warden.supervisor import ExitKind, ExitReason, RestartPolicy
from warden.supervisor.release._restart import Backoff, Finish, Restart, RestartTracker

FAILED = ExitReason(ExitKind.EXITED, code=3)
CLEAN = ExitReason(ExitKind.EXITED, code=0)
SEGV = ExitReason(ExitKind.KILLED, signum=signal.SIGSEGV)


def tracker(
    policy: RestartPolicy = RestartPolicy.ON_FAILURE,
    *,
    backoff: Backoff | None = None,
    min_uptime: float = 10.0,
    max_restarts: int | None = 5,
    rng: float = 0.0,
) -> tuple[RestartTracker, ManualClock]:
    clock = ManualClock()
    return (
        RestartTracker(
            policy,
            backoff or Backoff(initial=1.0, maximum=30.0, jitter=0.2),
            min_uptime=min_uptime,
            max_restarts=max_restarts,
            clock=clock.now,
            rng=lambda: rng,
        ),
        clock,
    )


def crash_loop(
    t: RestartTracker, clock: ManualClock, runs: int, uptime: float
) -> list[Restart | Finish]:
    decisions: list[Restart | Finish] = []
    for _ in range(runs):
        t.child_started()
        clock.jump(uptime)
        decision = t.child_exited(FAILED)
        decisions.append(decision)
        if isinstance(decision, Restart):
            clock.jump(decision.delay)
    return decisions


def test_backoff_doubles_up_to_the_maximum() -> None:
    t, clock = tracker(max_restarts=None, backoff=Backoff(1.0, 30.0, jitter=0.0))
    delays = [d.delay for d in crash_loop(t, clock, 8, uptime=0.5) if isinstance(d, Restart)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_jitter_is_subtracted_so_the_maximum_holds() -> None:
    backoff = Backoff(initial=1.0, maximum=30.0, jitter=0.2)
    assert backoff.delay(1, lambda: 0.0) == 1.0
    assert backoff.delay(1, lambda: 0.5) == pytest.approx(0.9)
    assert backoff.delay(10, lambda: 0.999999) == pytest.approx(24.0, rel=1e-5)
    assert backoff.delay(10, lambda: 0.0) == 30.0
    # a long loop does not overflow the float
    assert backoff.delay(5000, lambda: 0.0) == 30.0


def test_gives_up_after_max_restarts_quick_failures() -> None:
    t, clock = tracker(max_restarts=3, rng=0.0)
    decisions = crash_loop(t, clock, 4, uptime=0.1)
    assert [type(d) for d in decisions] == [Restart, Restart, Restart, Finish]
    assert [d.attempt for d in decisions[:3] if isinstance(d, Restart)] == [1, 2, 3]
    final = decisions[-1]
    assert isinstance(final, Finish)
    assert final.gave_up
    assert final.exit_code == 3
    assert final.message is not None
    assert final.message.startswith("giving up after 3 restarts")
    assert "4 times in a row" in final.message
    assert "exited(3)" in final.message


def test_a_healthy_run_resets_the_crash_loop() -> None:
    t, clock = tracker(max_restarts=2, backoff=Backoff(1.0, 30.0, jitter=0.0))
    first = crash_loop(t, clock, 2, uptime=0.1)
    assert [d.delay for d in first if isinstance(d, Restart)] == [1.0, 2.0]
    # this run lasts min_uptime: it proves the program works, the loop starts over
    healthy = crash_loop(t, clock, 1, uptime=10.0)
    assert healthy == [Restart(delay=1.0, attempt=1)]
    again = crash_loop(t, clock, 2, uptime=0.1)
    assert again[0] == Restart(delay=2.0, attempt=2)
    assert isinstance(again[1], Finish) and again[1].gave_up


def test_on_failure_does_not_restart_a_clean_exit() -> None:
    t, _ = tracker(RestartPolicy.ON_FAILURE)
    t.child_started()
    assert t.child_exited(CLEAN) == Finish(0)
    t.child_started()
    assert isinstance(t.child_exited(SEGV), Restart)


def test_always_restarts_clean_exits_and_never_gives_up_with_zero() -> None:
    t, _ = tracker(RestartPolicy.ALWAYS, max_restarts=1)
    t.child_started()
    assert isinstance(t.child_exited(CLEAN), Restart)
    t.child_started()
    final = t.child_exited(CLEAN)
    assert isinstance(final, Finish) and final.gave_up
    assert final.exit_code == 1  # a loop of clean exits is still a failure


def test_no_policy_passes_the_code_through() -> None:
    t, _ = tracker(RestartPolicy.NO)
    t.child_started()
    assert t.child_exited(SEGV) == Finish(128 + signal.SIGSEGV)


def test_exec_failure_is_never_restarted() -> None:
    t, _ = tracker(RestartPolicy.ALWAYS, max_restarts=None)
    t.child_started()
    assert t.child_exited(ExitReason.exec_failed(127, "command not found")) == Finish(127)


def test_unlimited_restarts() -> None:
    t, clock = tracker(max_restarts=None)
    assert all(isinstance(d, Restart) for d in crash_loop(t, clock, 50, uptime=0.0))
