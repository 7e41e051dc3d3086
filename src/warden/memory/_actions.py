"""The default actions per level: give memory back, shed load, stop gracefully."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import tracemalloc
from collections.abc import Callable

from ._sentinel import MemoryStatus

_log = logging.getLogger("warden.memory")


def collect_and_trim(_status: MemoryStatus) -> str:
    """``gc.collect()``, then ``malloc_trim(0)`` so glibc gives freed heap back to the kernel.

    Freed Python objects go back to glibc's heap, not to the kernel, so the working set does
    not fall until the heap is trimmed (not glibc: only the collection is done).
    """
    collected = gc.collect()
    trimmed = "no malloc_trim"
    with contextlib.suppress(AttributeError, OSError):
        trimmed = (
            "malloc_trim released memory"
            if ctypes.CDLL(None).malloc_trim(0)
            else ("malloc_trim had nothing to release")
        )
    return f"gc collected {collected} objects; {trimmed}"


def tracemalloc_top(limit: int) -> Callable[[MemoryStatus], str]:
    """An action that writes the top ``limit`` allocation sites (by line) to the log.

    The Python counterpart of Go's heap profile; it needs ``tracemalloc`` to be tracing
    (``PYTHONTRACEMALLOC=1``, ``-X tracemalloc`` or ``watch_memory(..., trace=True)``).
    """

    def snapshot(_status: MemoryStatus) -> str:
        if not tracemalloc.is_tracing():
            return "tracemalloc is not tracing; start it with PYTHONTRACEMALLOC=1"
        stats = tracemalloc.take_snapshot().statistics("lineno")[:limit]
        for rank, stat in enumerate(stats, 1):
            frame = stat.traceback[0]
            _log.warning(
                "memory top %d: %s:%d %.1f KiB in %d blocks",
                rank,
                frame.filename,
                frame.lineno,
                stat.size / 1024,
                stat.count,
            )
        return f"top {len(stats)} allocation sites written to the log"

    return snapshot


def shed_load(_status: MemoryStatus) -> str:
    """Mark the service as refusing new work (``sentinel.accepting`` is false from here, and
    so is the lifecycle's readiness with :func:`watch_memory`)."""
    return (
        "readiness false; new work is answered 503 with Retry-After until memory falls below high"
    )


def graceful_stop(request_stop: Callable[[str], None]) -> Callable[[MemoryStatus], str]:
    """An action that begins the lifecycle's graceful stop, so acknowledged work is flushed."""

    def stop(status: MemoryStatus) -> str:
        ttl = "" if status.time_to_limit is None else f", {status.time_to_limit:.2f} s to limit"
        reason = (
            f"memory critical: working set {status.working_set / 2**20:.0f} MiB of "
            f"{status.limit / 2**20:.0f} MiB{ttl}"
        )
        request_stop(reason)
        return reason

    return stop
