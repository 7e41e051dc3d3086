"""Sizes as people write them (``512M``, ``1.5GiB``, ``67108864``): the one parser, strict."""

from __future__ import annotations

from .. import _durations


def parse_size(value: str | int, *, what: str = "size") -> int:
    """Bytes from ``512M``, ``512MiB``, ``2G``, ``65536`` (units are powers of 1024); not 0.

    The parser is :func:`warden._durations.parse_size`, the one ``warden run`` uses for
    ``--memory-limit``; here a size of 0 bytes is an error, as no memory limit can be 0.

    Raises:
        ConfigurationError: not a positive size; the message names ``what``.
    """
    return _durations.parse_size(value, what=what, allow_zero=False)
