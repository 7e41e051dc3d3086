"""Durations as warden accepts them: keyword arguments, environment variables, flags.

A duration is seconds as a number, or a string with a unit (``"250ms"``, ``"1.5 s"``,
``"2m"``, ``"1e3ms"``). One parser serves the library, the supervisor and the CLI client
(sizes have theirs in ``_sizes.py``). Standard library only, so ``warden status`` can use it
without loading asyncio.
"""

from __future__ import annotations

import math
import re

from ._exceptions import ConfigurationError, shown

__all__ = ["MAX_DURATION", "parse_duration"]

MAX_DURATION = 2_147_483.0
"""The longest duration accepted, in seconds (596 h 31 m, about 24.8 days): ``poll(2)`` and
``epoll_wait(2)`` take their timeout as a C ``int`` of milliseconds, so a longer wait raises
``OverflowError`` in the thread that tries it (measured: it killed the deadline guard).
Every duration warden accepts goes through :func:`parse_duration`, so this is the one place."""

_DECIMAL = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)"
_NUMBER = rf"{_DECIMAL}(?:[eE][-+]?[0-9]+)?"
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(rf"\s*({_NUMBER})\s*(ms|s|m|h)?\s*")


def parse_duration(value: object, *, what: str, allow_zero: bool = True) -> float:
    """Return ``value`` as seconds, or raise a :class:`ConfigurationError` naming ``what``.

    Rejects negative, NaN and infinite values (a deadline that never comes is no deadline),
    and zero unless ``allow_zero``.

    >>> parse_duration("250ms", what="drain_delay")
    0.25
    """
    seconds: float
    if isinstance(value, bool):
        raise ConfigurationError(f"{what} must be a duration in seconds, got {shown(value)}")
    if isinstance(value, int) and abs(value) > MAX_DURATION:
        seconds = 2 * MAX_DURATION if value > 0 else -1.0  # never float(): 10**400 overflows
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match is None:
            raise ConfigurationError(
                f"{what}={shown(value)} is not a duration; write seconds like '25' or '1.5s', "
                "or use a unit: ms, s, m, h"
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
        if math.isinf(seconds):  # digits, hundreds of them: a finite text, too long
            seconds = 2 * MAX_DURATION
    else:
        raise ConfigurationError(
            f"{what} must be a duration in seconds, got {type(value).__name__} {shown(value)}"
        )
    if math.isnan(seconds) or math.isinf(seconds):
        raise ConfigurationError(f"{what}={shown(value)} must be a finite number of seconds")
    if seconds < 0:
        raise ConfigurationError(f"{what}={shown(value)} is negative; give 0 or more seconds")
    if seconds > MAX_DURATION:
        raise ConfigurationError(
            f"{what}={shown(value)} is longer than the kernel can wait ({MAX_DURATION:.0f}s, "
            "about 596h); give a shorter duration"
        )
    if seconds == 0 and not allow_zero:
        raise ConfigurationError(f"{what}={shown(value)} must be more than 0 seconds")
    return seconds
