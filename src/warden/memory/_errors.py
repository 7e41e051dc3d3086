"""The memory sentinel's errors, in warden's tree (``WardenError``)."""

from __future__ import annotations

from warden._exceptions import WardenError


class MemoryCgroupError(WardenError, OSError):
    """A memory cgroup cannot be read, created, limited, joined or removed."""


class MemoryUnavailableError(MemoryCgroupError):
    """No memory cgroup of the process is visible; the host's memory is watched instead."""
