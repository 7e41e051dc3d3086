"""A run that fails with no log says why on stderr, instead of exiting 1 in silence.

Python prints a traceback for an uncaught exception; a Lifecycle catches main's exception (and
a component's) to stop in order, so without ``log_events`` nothing at all said why.
"""

from __future__ import annotations

import subprocess
import sys

SERVICE = """
import sys, warden
lc = warden.Lifecycle()
lc.add("db", stop=(lambda: None) if "three" in sys.argv else (lambda: 1 / 0))
if "log" in sys.argv:
    warden.log_events(lc)
def main():
    if "three" in sys.argv:
        return 3
    raise ConnectionRefusedError("db at 127.0.0.1:5432 refused")
sys.exit(lc.run(main))
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SERVICE, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def test_a_failed_run_without_a_log_says_why_on_stderr() -> None:
    done = _run()
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "warden: main failed: ConnectionRefusedError: db at 127.0.0.1:5432 refused",
        "warden: stop db failed: ZeroDivisionError: division by zero",
        "warden: exit 1 (warden.log_events(lc) logs every step)",
    ], done.stderr


def test_with_a_log_it_is_not_said_twice() -> None:
    done = _run("log")
    assert done.returncode == 1
    assert "warden: exit 1" not in done.stderr
    assert "ConnectionRefusedError" in done.stderr  # the log's own line says it


def test_an_exit_code_main_chose_is_no_failure_to_explain() -> None:
    done = _run("three")
    assert done.returncode == 3
    assert done.stderr == ""


def test_with_stderr_closed_the_exit_code_holds() -> None:
    """``2>&-``: nowhere to say it; descriptor 2 is not written (it may be another file)."""
    done = subprocess.run(
        ["sh", "-c", 'exec "$0" -c "$1" 2>&-', sys.executable, SERVICE],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 1
    assert done.stdout == ""
