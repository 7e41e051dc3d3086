"""Sizes as people write them: ``512M``, ``1.5GiB``, ``67108864``."""

from __future__ import annotations

import re

from warden._exceptions import ConfigurationError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_size(value: str | int, *, what: str = "size") -> int:
    """Bytes from ``512M``, ``512MiB``, ``2G``, ``65536`` (units are powers of 1024).

    Raises:
        ConfigurationError: not a positive size; the message names ``what``.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        match = _SIZE.match(str(value))
        if match is None:
            raise ConfigurationError(
                f"{what}={value!r} is not a size; write bytes or a number with K, M, G or T "
                "(powers of 1024), e.g. 512M"
            )
        number = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if number <= 0:
        raise ConfigurationError(f"{what}={value!r} must be more than 0 bytes, e.g. 512M")
    return number
