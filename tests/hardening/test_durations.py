"""Item 5: a duration the kernel cannot wait for is refused in one place, with one line."""

from __future__ import annotations

import pytest

import warden
from tests.hardening.conftest import run, warden_argv
from warden._durations import MAX_DURATION, parse_duration
from warden._exceptions import ConfigurationError


@pytest.mark.parametrize("value", ["596h32m", "600h", 1e300, "99999999999999h", 2_147_484])
def test_too_long_is_refused(value: object) -> None:
    if value == "596h32m":
        value = MAX_DURATION + 1
    with pytest.raises(ConfigurationError, match="longer than the kernel can wait"):
        parse_duration(value, what="x")


def test_the_longest_accepted_is_still_a_duration() -> None:
    assert parse_duration("596h", what="x") == 596 * 3600.0


def test_the_library_refuses_it() -> None:
    with pytest.raises(ConfigurationError, match="shutdown_timeout"):
        warden.Lifecycle(shutdown_timeout="600h")


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["run", "--stop-timeout", "600h", "--", "true"], "--stop-timeout"),
        (["run", "--watchdog", "1e300", "--", "true"], "--watchdog"),
        (["upgrade", "--timeout", "99999999999999h"], "--timeout"),
    ],
)
def test_the_cli_says_it_in_one_line(args: list[str], flag: str) -> None:
    result = run(warden_argv(*args))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert flag in result.stderr
    assert "596h" in result.stderr
