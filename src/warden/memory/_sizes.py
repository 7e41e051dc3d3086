"""Sizes as people write them (``512M``, ``1.5GiB``, ``67108864``): the one parser, strict."""

from __future__ import annotations

from .. import _sizes


def parse_size(value: str | int, *, what: str = "size") -> int:
    """Bytes from ``512M``, ``512MiB``, ``2G``, ``65536`` (units are powers of 1024); not 0.

    The parser is :func:`warden._sizes.parse_size`, the one ``warden run`` uses for
    ``--memory-limit``; here a size of 0 bytes is an error, as no memory limit can be 0.

    Raises:
        ConfigurationError: not a positive size; the message names ``what``.
    """
    return _sizes.parse_size(value, what=what, allow_zero=False)


MIN_LIMIT = 4 << 20
"""The smallest memory limit a program can start in: 4 MiB.

The kernel charges a process's exec to its cgroup (the new stack with its arguments and
environment, its page tables, the first pages it touches), so below what that takes the program
is killed as it starts, every time. Measured in a v1 memory cgroup (kernel 6.18, 5 runs each):
``true`` is killed at 64 KiB (and once in five at 256 KiB), a bare ``python3 -c pass`` at
2 MiB and starts at 3 MiB, ``python3 -c 'import asyncio, json, ssl'`` needs 10.5 MiB. 4 MiB is
the first power of two a Python interpreter starts in; a smaller limit only turns the program
into an OOM kill at start (a crash loop under ``--restart``)."""
