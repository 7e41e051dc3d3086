"""A memory cgroup of a child's own, with a limit, created by the supervisor and removed after.

Kernel facts:

* v1: a directory made under a memory cgroup is a cgroup; ``memory.limit_in_bytes`` is its
  limit (the kernel rounds it to pages). Memory already charged when a process joins stays
  with the old cgroup unless ``memory.move_charge_at_immigrate`` says otherwise, so a child
  should join *before* it allocates: at spawn (the exec shim writes its own pid to
  :attr:`ChildCgroup.procs_file` before it execs) or right after it.
* v2: the parent must list ``memory`` in ``cgroup.subtree_control``, and the "no internal
  processes" rule forbids enabling it on a cgroup that holds processes (``EBUSY``). A unit
  with systemd's ``Delegate=yes`` starts with warden in the unit's own cgroup and nothing
  enabled below it (measured, systemd 252: writing ``memory.max`` of a new child fails with
  ``EACCES``, the file does not exist). So warden first moves itself into a leaf of its own,
  ``supervisor`` (the name systemd 254's ``DelegateSubgroup=`` gives), then enables
  ``memory`` below; it moves no other process, and refuses if its cgroup holds any.
* ``rmdir`` of a cgroup fails with ``EBUSY`` while a process (even a zombie not yet reaped)
  is in it, so removal kills what is left and retries until the deadline.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import signal
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from ._cgroup import MemoryCgroup, find_memory_cgroup
from ._errors import MemoryCgroupError
from ._readers import reader_for

_names = itertools.count(1)


class ChildCgroup:
    """A memory cgroup for a child, with a limit.

    Example::

        with ChildCgroup.create(512 * 2**20) as group:
            pid = spawn(...)             # the shim joins group.procs_file before exec
            group.attach(pid)            # or after the spawn (idempotent)
            ...
        # removed: what was left in it was killed

    Attributes:
        cgroup: the new cgroup (watch it with ``MemorySentinel(group.cgroup)``).
        limit: the limit in bytes, as the kernel reports it.
    """

    def __init__(self, cgroup: MemoryCgroup, limit: int) -> None:
        self.cgroup = cgroup
        self.limit = limit

    @classmethod
    def create(
        cls, limit: int, *, parent: MemoryCgroup | None = None, name: str | None = None
    ) -> ChildCgroup:
        """Make the cgroup under ``parent`` (default: this process's own) with ``limit``.

        Raises:
            MemoryCgroupError: where warden may not create one (no memory controller,
                read-only cgroupfs, v2 without ``memory`` delegated); the message says why.
        """
        parent = parent if parent is not None else find_memory_cgroup()
        if parent.version == 2:
            _delegate_memory(parent)
        name = name or f"warden-{os.getpid()}-{next(_names)}"
        path = parent.path / name
        try:
            path.mkdir()
        except OSError as exc:
            raise MemoryCgroupError(
                exc.errno,
                f"cannot create memory cgroup {path} ({exc.strerror}); run warden where the "
                "memory cgroup is writable (root, or a delegated cgroup) or drop --memory-limit",
            ) from exc
        cgroup = MemoryCgroup(parent.version, path, parent.mount)
        group = cls(cgroup, limit)
        try:
            group._set_limit(limit)
        except BaseException:
            group.remove()
            raise
        return group

    def _set_limit(self, limit: int) -> None:
        name = "memory.limit_in_bytes" if self.cgroup.version == 1 else "memory.max"
        try:
            self.cgroup.file(name).write_text(str(limit))
            self.limit = int(self.cgroup.file(name).read_text().strip())
        except OSError as exc:
            raise MemoryCgroupError(
                exc.errno,
                f"cannot set {name}={limit} in {self.cgroup.path} ({exc.strerror}); on cgroup "
                "v2 the parent must delegate the memory controller (cgroup.subtree_control)",
            ) from exc

    @property
    def procs_file(self) -> Path:
        """Write a pid here to move that process in (a process may write its own)."""
        return self.cgroup.file("cgroup.procs")

    def attach(self, pid: int) -> None:
        """Move ``pid`` (all its threads) into the cgroup.

        Raises:
            MemoryCgroupError: the kernel refused (the process is gone: ``ESRCH``).
        """
        try:
            self.procs_file.write_text(str(pid))
        except OSError as exc:
            raise MemoryCgroupError(
                exc.errno, f"cannot move pid {pid} into {self.cgroup.path} ({exc.strerror})"
            ) from exc

    def pids(self) -> list[int]:
        """The processes in the cgroup now."""
        try:
            return [int(word) for word in self.procs_file.read_text().split()]
        except OSError:
            return []

    def oom_kills(self) -> int | None:
        """The cgroup's ``oom_kill`` counter."""
        reader = reader_for(self.cgroup)
        try:
            return reader.oom_kills()
        finally:
            reader.close()

    def remove(self, timeout: float = 5.0) -> None:
        """Kill what is left in the cgroup, then remove it (retrying while it is busy).

        Raises:
            MemoryCgroupError: still busy at the deadline (a process that cannot be killed,
                or a zombie its parent does not reap).
        """
        deadline = time.monotonic() + timeout
        while True:
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            try:
                self.cgroup.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise MemoryCgroupError(
                        exc.errno,
                        f"cannot remove memory cgroup {self.cgroup.path} ({exc.strerror}); "
                        f"processes left in it: {self.pids() or 'none (zombies not reaped?)'}",
                    ) from exc
            time.sleep(0.01)  # the kernel needs the killed processes to exit first

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()


#: The leaf warden moves itself into on cgroup v2, so its cgroup may enable ``memory`` below.
SUPERVISOR_LEAF = "supervisor"


def _delegate_memory(parent: MemoryCgroup) -> None:
    """cgroup v2: make ``parent`` hand the memory controller to its children.

    Raises:
        MemoryCgroupError: ``parent`` holds processes other than warden, or the kernel
            refused (a read-only cgroupfs, ``memory`` not available to ``parent``).
    """
    control = parent.file("cgroup.subtree_control")
    try:
        if "memory" in control.read_text().split():
            return
        pids = [int(word) for word in parent.file("cgroup.procs").read_text().split()]
    except OSError as exc:
        raise MemoryCgroupError(
            exc.errno, f"cannot read {control} ({exc.strerror}); drop --memory-limit"
        ) from exc
    others = [pid for pid in pids if pid != os.getpid()]
    if others:
        raise MemoryCgroupError(
            errno.EBUSY,
            f"cannot enable the memory controller below {parent.path}: it holds processes "
            f"other than warden ({', '.join(map(str, others[:5]))}); run warden in a cgroup "
            "of its own (systemd: Delegate=yes) or drop --memory-limit",
        )
    leaf = parent.path / SUPERVISOR_LEAF
    try:
        if pids:  # "no internal processes": warden itself moves to a leaf first
            leaf.mkdir(exist_ok=True)
            (leaf / "cgroup.procs").write_text(str(os.getpid()))
        control.write_text("+memory")
    except OSError as exc:
        raise MemoryCgroupError(
            exc.errno,
            f"cannot enable the memory controller below {parent.path} ({exc.strerror}); "
            "on cgroup v2 warden needs a cgroup of its own it may write (systemd: "
            "Delegate=yes) or drop --memory-limit",
        ) from exc
