"""Validation of the durations warden accepts: timeouts, delays, deadlines.

A duration is seconds as a number, or a string with a unit (``"250ms"``, ``"1.5s"``,
``"2m"``), so the same parser serves keyword arguments, environment variables and the CLI.
"""

from __future__ import annotations

import math
import re

from warden._exceptions import ConfigurationError

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PATTERN = re.compile(r"\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s|m|h)?\s*")


def parse_duration(value: object, *, what: str, allow_zero: bool = True) -> float:
    """Return ``value`` as seconds, or raise a :class:`ConfigurationError` naming ``what``.

    Rejects negative, NaN and infinite values (a deadline that never comes is no deadline),
    and zero unless ``allow_zero``.

    >>> parse_duration("250ms", what="drain_delay")
    0.25
    """
    seconds: float
    if isinstance(value, bool):
        raise ConfigurationError(f"{what} must be a duration in seconds, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _PATTERN.fullmatch(value)
        if match is None:
            raise ConfigurationError(
                f"{what}={value!r} is not a duration; write seconds like '25' or '1.5s', "
                "or use a unit: ms, s, m, h"
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        raise ConfigurationError(
            f"{what} must be a duration in seconds, got {type(value).__name__} {value!r}"
        )
    if math.isnan(seconds) or math.isinf(seconds):
        raise ConfigurationError(f"{what}={value!r} must be a finite number of seconds")
    if seconds < 0:
        raise ConfigurationError(f"{what}={value!r} is negative; give 0 or more seconds")
    if seconds == 0 and not allow_zero:
        raise ConfigurationError(f"{what}={value!r} must be more than 0 seconds")
    return seconds
