"""Durations and sizes as warden accepts them: keyword arguments, environment variables, flags.

A duration is seconds as a number, or a string with a unit (``"250ms"``, ``"1.5 s"``,
``"2m"``, ``"1e3ms"``); a size is bytes as a number, or a string with a binary unit
(``"512M"``, ``"1G"``, ``"64KiB"``). One parser of each serves the library, the supervisor and
the CLI client. Standard library only, so ``warden status`` can use it without loading asyncio.
"""

from __future__ import annotations

import math
import re

from ._exceptions import ConfigurationError

__all__ = ["MAX_DURATION", "parse_duration", "parse_size"]

MAX_DURATION = 2_147_483.0
"""The longest duration accepted, in seconds (596 h 31 m, about 24.8 days): ``poll(2)`` and
``epoll_wait(2)`` take their timeout as a C ``int`` of milliseconds, so a longer wait raises
``OverflowError`` in the thread that tries it (measured: it killed the deadline guard).
Every duration warden accepts goes through :func:`parse_duration`, so this is the one place."""

_NUMBER = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(rf"\s*({_NUMBER})\s*(ms|s|m|h)?\s*")
#: Powers of 1024, as the kernel's memory.limit_in_bytes and systemd's MemoryMax= read
#: K, M, G, T; "KiB", "Ki" (Kubernetes) and "KB" mean the same (nobody means 1000 for memory).
_SIZES = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(rf"\s*({_NUMBER})\s*([kmgt]?)(?:i?b?)\s*", re.IGNORECASE)


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
        match = _DURATION.fullmatch(value)
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
    if seconds > MAX_DURATION:
        raise ConfigurationError(
            f"{what}={value!r} is longer than the kernel can wait ({MAX_DURATION:.0f}s, "
            "about 596h); give a shorter duration"
        )
    if seconds == 0 and not allow_zero:
        raise ConfigurationError(f"{what}={value!r} must be more than 0 seconds")
    return seconds


def parse_size(value: object, *, what: str, allow_zero: bool = True) -> int:
    """Return ``value`` as a whole number of bytes, or raise a :class:`ConfigurationError`.

    Units are powers of 1024: ``K``, ``M``, ``G``, ``T`` (``KiB``, ``Mi``, ``GB``... mean the
    same); a fraction of a unit is rounded down to a byte (``1.5G``).

    >>> parse_size("512M", what="--memory-limit")
    536870912
    """
    size: float
    if isinstance(value, bool):
        raise ConfigurationError(f"{what} must be a size in bytes, got {value!r}")
    if isinstance(value, int | float):
        size = float(value)
    elif isinstance(value, str):
        match = _SIZE.fullmatch(value)
        if match is None:
            raise ConfigurationError(
                f"{what}={value!r} is not a size; write bytes or a number with K, M, G or T "
                "(powers of 1024), e.g. 512M"
            )
        size = float(match.group(1)) * _SIZES[match.group(2).lower()]
    else:
        raise ConfigurationError(
            f"{what} must be a size in bytes, got {type(value).__name__} {value!r}"
        )
    if math.isnan(size) or math.isinf(size):
        raise ConfigurationError(f"{what}={value!r} must be a finite number of bytes")
    if size < 0:
        raise ConfigurationError(f"{what}={value!r} is negative; give 0 or more bytes")
    if int(size) == 0 and not allow_zero:
        raise ConfigurationError(f"{what}={value!r} must be more than 0 bytes, e.g. 512M")
    return int(size)
