"""The living children of this process, as the kernel lists them."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def child_pids() -> list[int]:
    """The pids of this process's living children (zombies not yet reaped included).

    ``/proc/self/task/<tid>/children`` lists the children of one thread (Linux >= 3.5, with
    ``CONFIG_PROC_CHILDREN``); a child belongs to the thread that forked it, and an orphan is
    re-parented to one of a subreaper's threads, so every thread is read. A thread that exits
    while we list is skipped.
    """
    pids: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):
                text = Path(f"/proc/self/task/{task}/children").read_text()
                pids.extend(int(pid) for pid in text.split())
    return pids
