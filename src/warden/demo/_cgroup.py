"""The kernel's side of the memory step: can a memory cgroup be made here, and its OOM kills.

``warden run --memory-limit`` makes the program a memory cgroup of its own under the cgroup
it runs in (v1, or a cgroup2 that delegates the memory controller). The demo asks the same
question first, by making one and removing it: where it cannot, the memory step says why and
is not run (it is never simulated). Afterwards the program's cgroup's ``oom_kill`` counter
is read from the kernel, before and after the leak.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..memory import MemoryCgroup, MemoryCgroupError

#: The limit the probe's cgroup gets (it holds no process).
_PROBE_LIMIT = 16 * 2**20


def why_no_memory_cgroup() -> str | None:
    """None when a memory cgroup with a limit can be made here; else the kernel's reason."""
    from ..memory import ChildCgroup, MemoryCgroupError

    try:
        group = ChildCgroup.create(_PROBE_LIMIT, name=f"warden-demo-probe-{os.getpid()}")
    except MemoryCgroupError as exc:
        return _for_the_demo(exc)
    try:
        group.remove()
    except MemoryCgroupError as exc:
        return _for_the_demo(exc)
    return None


def _for_the_demo(exc: MemoryCgroupError) -> str:
    """What happened (the message alone, without "[Errno 13]"), and what the person who ran
    the demo can do: warden's own advice names ``--memory-limit``, which they never gave."""
    what = (exc.strerror or str(exc)).split("; ")[0]
    return f"{what}; run the demo as root, or where a memory cgroup is delegated to this user"


def program_cgroup(pid: int) -> MemoryCgroup | str:
    """The memory cgroup ``pid`` is in (the program's own, under --memory-limit), or why
    it cannot be found."""
    from ..memory import MemoryCgroupError, find_memory_cgroup

    try:
        return find_memory_cgroup(pid)
    except MemoryCgroupError as exc:
        return str(exc)


def oom_kills(cgroup: MemoryCgroup) -> int | None:
    """The cgroup's ``oom_kill`` counter, as the kernel keeps it (None: unreadable)."""
    from ..memory import reader_for

    reader = reader_for(cgroup)
    try:
        return reader.oom_kills()
    finally:
        reader.close()


def remove_leftovers(warden_pid: int) -> None:
    """Remove what a warden killed without its stop ladder left: its ``warden-PID-*`` memory
    cgroups under ours (their processes killed first). A warden that stopped left none."""
    from ..memory import ChildCgroup, MemoryCgroup, MemoryCgroupError, find_memory_cgroup

    try:
        parent = find_memory_cgroup()
    except MemoryCgroupError:
        return
    for path in parent.path.glob(f"warden-{warden_pid}-*"):
        group = ChildCgroup(MemoryCgroup(parent.version, path, parent.mount), 0)
        with contextlib.suppress(MemoryCgroupError):
            group.remove()
