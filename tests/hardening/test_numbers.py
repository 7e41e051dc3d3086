"""Issue 19, item 7: sizes and numbers that cannot work are refused before anything starts.

Each was accepted without a word: ``--memory-limit 1`` (logged as "limit 0 MiB", the program
OOM-killed at start), ``100``, ``4k``; ``--recycle-at 64M`` with ``--memory-limit 64M`` (never
reached: the program is stopped at critical first); ``--recycle-at 99999999T``; ``--recycle-at
1e9`` (is a bare exponent a size? not here: the units are powers of 1024); ``--max-restarts``
past any meaning, or of thousands of digits (a traceback); ``--stop-timeout`` too long for its
SIGKILL step (a traceback); a ``--watchdog`` below 1 µs (the program is told there is none and
killed at once); ``--ready http://HOST:0/``. Each is now one line naming the option, the value
and the fix, exit code 2, whether it comes as a flag, a variable or a keyword.
"""

from __future__ import annotations

import math
import os
from typing import Any

import pytest

import warden
from tests.hardening.conftest import run, warden_argv
from warden._durations import parse_duration
from warden._exceptions import ConfigurationError
from warden._sizes import MAX_SIZE, parse_size
from warden.memory import MemorySentinel, Thresholds, watch_memory
from warden.memory._sizes import parse_size as memory_parse_size
from warden.supervisor import SupervisorOptions

THOUSANDS_OF_DIGITS = "9" * 5000


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--memory-limit", "1"], ["--memory-limit='1'", "below 4 MiB", "256M"]),
        (["--memory-limit", "100"], ["--memory-limit='100'", "below 4 MiB"]),
        (["--memory-limit", "4k"], ["--memory-limit='4k'", "below 4 MiB"]),
        (["--memory-limit", "99999999T"], ["'99999999T'", "larger than any memory"]),
        (["--memory-limit", "1.5"], ["'1.5'", "whole number of bytes", "1.5K"]),
        (
            ["--memory-limit", "64M", "--recycle-at", "64M"],
            ["--recycle-at 64 MiB", "critical", "60.8 MiB", "raise --memory-limit"],
        ),
        (["--memory-limit", "1G", "--recycle-at", "1G"], ["--recycle-at 1024 MiB", "972.8 MiB"]),
        (["--recycle-at", "99999999T"], ["--recycle-at='99999999T'", "larger than any memory"]),
        (["--recycle-at", "1e9"], ["--recycle-at='1e9'", "not a size", "1000000000", "954M"]),
        (["--recycle-at", "100"], ["--recycle-at='100'", "below 4 MiB", "400M"]),
        (["--max-restarts", "1e23"], ["--max-restarts='1e23'", "unlimited"]),
        (["--max-restarts", "1000001"], ["'1000001'", "at most 1,000,000", "unlimited"]),
        (["--max-restarts", THOUSANDS_OF_DIGITS], ["(5002 chars)", "unlimited"]),
        (["--max-restarts", "١٢"], ["not a number of restarts"]),
        (["--stop-timeout", "2147483"], ["--stop-timeout='2147483'", "2147478s"]),
        (["--stop-timeout", THOUSANDS_OF_DIGITS], ["(5002 chars)", "longer than the kernel"]),
        (["--watchdog", "1e-9"], ["--watchdog='1e-9'", "10ms"]),
        (["--watchdog", "5ms"], ["--watchdog='5ms'", "10ms"]),
        (["--ready", "http://127.0.0.1:0/"], ["'http://127.0.0.1:0/'", "1-65535"]),
        (["--ready", "tcp://127.0.0.1:0"], ["'tcp://127.0.0.1:0'", "1-65535"]),
    ],
)
def test_the_cli_refuses_it_in_one_line(args: list[str], words: list[str]) -> None:
    result = run(warden_argv("run", *args, "--", "true"))
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.count("\n") == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert len(result.stderr) < 400, result.stderr  # a value of 5,000 digits is not echoed
    for word in words:
        assert word in result.stderr, result.stderr


def test_a_variable_is_refused_the_same_way() -> None:
    env = {**os.environ, "WARDEN_MEMORY_LIMIT": "4k", "WARDEN_CONTROL": "none"}
    result = run(warden_argv("run", "--", "true"), env=env)
    assert result.returncode == 2
    assert "WARDEN_MEMORY_LIMIT='4k' is below 4 MiB" in result.stderr


@pytest.mark.parametrize(
    ("args", "value"),
    [
        (["--memory-limit", "4M"], 4 << 20),
        (["--memory-limit", "64M", "--ready", "notify", "--recycle-at", "60M"], 60 << 20),
        (["--max-restarts", "1000000"], 1_000_000),
        (["--watchdog", "10ms"], 0.01),
        (["--stop-timeout", "2147478"], 2_147_478.0),
    ],
)
def test_the_edges_are_still_accepted(args: list[str], value: object) -> None:
    field = args[-2].removeprefix("--").replace("-", "_")
    flags = range(0, len(args), 2)
    given = {args[i].removeprefix("--").replace("-", "_"): args[i + 1] for i in flags}
    options = SupervisorOptions.from_inputs(["true"], given, {})
    assert getattr(options, field) == value


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"memory_limit": 1}, "memory_limit=1 is below 4 MiB"),
        ({"memory_limit": 10**400}, "larger than any memory"),
        ({"memory_limit": 2**22 + 0.5}, "not a whole number of bytes"),
        ({"memory_limit": math.nan}, "finite number of bytes"),
        ({"memory_limit": 64 << 20, "recycle_at": 64 << 20}, "critical"),
        ({"max_restarts": 10**23}, "at most 1,000,000"),
        ({"max_restarts": -1}, "not a number of restarts"),
        ({"stop_timeout": 10**400}, "longer than the kernel can wait"),
        ({"watchdog": 0.001}, "shorter than 10ms"),
    ],
)
def test_the_options_built_directly_refuse_it(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        SupervisorOptions(command=("true",), **fields)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1e9", "not a size"),
        ("1.5", "not a whole number of bytes"),
        (1.5, "not a whole number of bytes"),
        ("99999999T", "larger than any memory"),
        (MAX_SIZE, "larger than any memory"),
        (10**400, "larger than any memory"),
        (THOUSANDS_OF_DIGITS, "larger than any memory"),
    ],
)
def test_one_size_rule(value: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_size(value, what="x")
    with pytest.raises(ConfigurationError, match=message):
        memory_parse_size(value)  # type: ignore[arg-type]


def test_sizes_that_still_are_sizes() -> None:
    assert parse_size(MAX_SIZE - 1, what="x") == MAX_SIZE - 1
    assert parse_size(1e9, what="x") == 10**9  # a Python float that is whole: bytes
    assert parse_size("1.5K", what="x") == 1536


@pytest.mark.parametrize("value", [10**400, -(10**400), THOUSANDS_OF_DIGITS])
def test_a_duration_of_thousands_of_digits_is_a_line_not_a_traceback(value: object) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_duration(value, what="x")
    assert len(str(caught.value)) < 200


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"poll_min": 0}, "poll_min=0 must be more than 0"),
        ({"poll_min": math.nan}, "poll_min=nan must be a finite"),
        ({"idle_interval": math.inf}, "idle_interval=inf must be a finite"),
        ({"unarmed_interval": -1}, "unarmed_interval=-1 is negative"),
        ({"history": 1e300}, "history=1e\\+300 is longer than the kernel can wait"),
        ({"flush_budget": True}, "flush_budget=True is not a number"),
        ({"flush_budget": 1e300}, "flush_budget=1e\\+300 is longer"),
        ({"hysteresis": math.nan}, "hysteresis=nan"),
        ({"warn": math.inf}, "must rise strictly between 0 and 1"),
        ({"tracemalloc_lines": -1}, "tracemalloc_lines=-1"),
        ({"tracemalloc_lines": 10**9}, "from 0 \\(none\\) to 1000"),
        ({"tracemalloc_lines": True}, "tracemalloc_lines=True"),
    ],
)
def test_watch_memory_refuses_numbers_that_cannot_work(
    keywords: dict[str, Any], message: str
) -> None:
    lc = warden.Lifecycle()
    with pytest.raises(ConfigurationError, match=message):
        watch_memory(lc, **keywords)


def test_the_sentinel_and_the_thresholds_refuse_them_too() -> None:
    with pytest.raises(ConfigurationError, match="idle_interval=-5"):
        MemorySentinel(None, idle_interval=-5)
    with pytest.raises(ConfigurationError, match="critical=nan"):
        Thresholds(critical=math.nan)
