"""ExitReason from real wait statuses: the kernel's words, stated precisely."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from warden._exitcodes import EXIT_NOT_READY
from warden.supervisor import ExitKind, ExitReason


def _status_of(code: str) -> int:
    """Run ``python -c code`` and return its raw wait status (this test is its only waiter)."""
    pid = os.posix_spawn(sys.executable, [sys.executable, "-c", code], dict(os.environ))
    _, status = os.waitpid(pid, 0)
    return status


def test_exit_status() -> None:
    reason = ExitReason.from_wait_status(_status_of("raise SystemExit(3)"))
    assert str(reason) == "exited(3)"
    assert reason.exit_code == 3
    assert not reason.success


def test_clean_exit_is_the_only_success() -> None:
    reason = ExitReason.from_wait_status(_status_of("pass"))
    assert str(reason) == "exited(0)"
    assert reason.success
    assert reason.exit_code == 0


def test_not_ready_is_a_failure_even_after_a_clean_exit() -> None:
    """A program stopped for missing its gate may exit 0 on the stop signal: still a failure."""
    clean = ExitReason.from_wait_status(_status_of("pass"))
    late = clean.refined(ExitKind.NOT_READY, "1s")
    assert str(late) == "failed to become ready within 1s"
    assert (late.exit_code, late.success) == (EXIT_NOT_READY, False)
    # However it exited on warden's stop signal: the code says "not ready", not its own.
    crashed = ExitReason.from_wait_status(_status_of("raise SystemExit(3)"))
    assert crashed.refined(ExitKind.NOT_READY, "1s").exit_code == EXIT_NOT_READY
    killed = ExitReason(ExitKind.KILLED, signum=15).refined(ExitKind.NOT_READY, "1s")
    assert killed.exit_code == EXIT_NOT_READY


def test_killed_by_signal() -> None:
    reason = ExitReason.from_wait_status(
        _status_of("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    )
    assert str(reason) == "killed(SIGKILL)"
    assert reason.kind is ExitKind.KILLED
    assert reason.exit_code == 128 + signal.SIGKILL


def test_core_dump_is_named() -> None:
    # RLIMIT_CORE must allow a core for the kernel to set WCOREDUMP; where the core pattern
    # pipes to a helper the flag is set too. Build the status the kernel uses: signal | 0x80.
    reason = ExitReason.from_wait_status(signal.SIGSEGV | 0x80)
    assert str(reason) == "killed(SIGSEGV, core dumped)"
    assert reason.exit_code == 139


def test_real_time_signal_name() -> None:
    reason = ExitReason(ExitKind.KILLED, signum=signal.SIGRTMIN + 3)
    assert str(reason) == "killed(SIGRTMIN+3)"


def test_exec_failure() -> None:
    reason = ExitReason.exec_failed(127, "command not found in PATH")
    assert str(reason) == "exec failed(127: command not found in PATH)"
    assert reason.exit_code == 127


def test_refined_by_a_later_observer_keeps_the_exit_code() -> None:
    killed = ExitReason(ExitKind.KILLED, signum=signal.SIGKILL)
    oom = killed.refined(ExitKind.OOM_KILLED)
    assert str(oom) == "oom-killed"
    assert oom.exit_code == 137
    assert str(killed.with_detail("not an OOM kill")) == "killed(SIGKILL) — not an OOM kill"
    assert str(killed.refined(ExitKind.WATCHDOG_TIMEOUT)) == "watchdog timeout"
    not_ready = ExitReason(ExitKind.NOT_READY, signum=signal.SIGKILL, detail="30s")
    assert str(not_ready) == "failed to become ready within 30s"


def test_stopped_status_is_rejected() -> None:
    # 0x7f in the low byte means "stopped"; warden never waits with WUNTRACED.
    with pytest.raises(ValueError, match="neither"):
        ExitReason.from_wait_status((signal.SIGSTOP << 8) | 0x7F)
