"""Sizes as warden accepts them: keyword arguments, environment variables, flags.

A size is bytes as a number, or a string with a binary unit (``"512M"``, ``"1G"``,
``"64KiB"``). One parser serves the library (``warden.memory.parse_size``), the supervisor
(``--memory-limit``, ``--recycle-at``) and the CLI. Standard library only.
"""

from __future__ import annotations

import math
import re

from ._exceptions import ConfigurationError, shown

__all__ = ["MAX_SIZE", "parse_size"]

MAX_SIZE = 1 << 62
"""The largest size accepted, 4 EiB: the kernel counts memory in a signed 64-bit number of
bytes, and a cgroup limit this large already means "no limit" (v1 shows none as 2^63 rounded
down to a page). A larger size is a typo (``99999999T``), not a wish."""

_DECIMAL = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)"
#: Powers of 1024, as the kernel's memory.limit_in_bytes and systemd's MemoryMax= read
#: K, M, G, T; "KiB", "Ki" (Kubernetes) and "KB" mean the same (nobody means 1000 for memory).
#: No exponent: ``1e9`` reads as 10^9 bytes to some and as "1 GB" to others, in a field whose
#: units are powers of 1024; the bytes or a unit say it either way.
_SIZES = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(rf"\s*({_DECIMAL})\s*([kmgt]?)(?:i?b?)\s*", re.IGNORECASE)


def parse_size(value: object, *, what: str, allow_zero: bool = True) -> int:
    """Return ``value`` as a whole number of bytes, or raise a :class:`ConfigurationError`.

    Units are powers of 1024: ``K``, ``M``, ``G``, ``T`` (``KiB``, ``Mi``, ``GB``... mean the
    same); a fraction of a unit is rounded down to a byte (``1.5G``). Without a unit, a size is
    whole bytes (``1.5`` and ``1e9`` are refused: say ``1536`` or ``1.5K``, ``1000000000`` or
    ``954M``). At most :data:`MAX_SIZE`.

    >>> parse_size("512M", what="--memory-limit")
    536870912
    """
    size: float
    if isinstance(value, bool):
        raise ConfigurationError(f"{what} must be a size in bytes, got {shown(value)}")
    if isinstance(value, int):
        size = value if value < MAX_SIZE else math.inf  # never float(): 10**400 overflows
    elif isinstance(value, float):
        size = value
        if not math.isfinite(size):
            raise ConfigurationError(f"{what}={shown(value)} must be a finite number of bytes")
        if not size.is_integer():
            raise ConfigurationError(
                f"{what}={shown(value)} is not a whole number of bytes; give bytes (1536) or a "
                "unit (1.5K)"
            )
    elif isinstance(value, str):
        match = _SIZE.fullmatch(value)
        if match is None:
            raise ConfigurationError(
                f"{what}={shown(value)} is not a size; write bytes or a number with K, M, G or T "
                "(powers of 1024), e.g. 512M (no exponent: 1000000000 or 954M for 1e9)"
            )
        number, unit = match.group(1), match.group(2).lower()
        if not unit and "." in number:
            raise ConfigurationError(
                f"{what}={shown(value)} is not a whole number of bytes; give bytes (1536) or a "
                "unit (1.5K)"
            )
        size = float(number) * _SIZES[unit]  # inf for a few hundred digits: too large below
    else:
        raise ConfigurationError(
            f"{what} must be a size in bytes, got {type(value).__name__} {shown(value)}"
        )
    if size < 0:
        more = "0 or more bytes" if allow_zero else "a size of more than 0 bytes, e.g. 512M"
        raise ConfigurationError(f"{what}={shown(value)} is negative; give {more}")
    if size >= MAX_SIZE:
        raise ConfigurationError(
            f"{what}={shown(value)} is larger than any memory (the most is 4 EiB); give a "
            "size such as 512M"
        )
    if int(size) == 0 and not allow_zero:
        raise ConfigurationError(f"{what}={shown(value)} must be more than 0 bytes, e.g. 512M")
    return int(size)
