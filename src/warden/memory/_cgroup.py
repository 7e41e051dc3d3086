"""Which memory cgroup a process is in, and where its files are on this machine.

``/proc/PID/cgroup`` names the cgroup as a path *inside a hierarchy* (one line per v1
hierarchy, ``ID:CONTROLLERS:PATH``, and ``0::PATH`` for cgroup2); ``/proc/PID/mountinfo``
says where each hierarchy is mounted and which part of it (field 4, the mount's *root*).
Kernel facts this relies on:

* In a cgroup namespace the path is relative to the namespace's root, and a cgroupfs mounted
  inside the namespace has root ``/``: joining the mount point and the path is right.
* A container runtime that bind-mounts the container's own cgroup (Docker without a cgroup
  namespace) shows the full path (``/docker/ID``) in ``/proc/self/cgroup`` and the same
  path as the mount's root: the path is taken relative to that root.
* A process outside its namespace's root sees ``/../..``-style paths; when the joined
  directory does not exist, the mount point itself is the best answer (it is the container's
  cgroup), and it is used if it has the memory files.
* Hybrid machines have both: the v1 ``memory`` hierarchy wins when it is mounted, because
  cgroup2 can then not hold the memory controller (it is enabled on one hierarchy only);
  cgroup2 is used when its ``cgroup.controllers`` lists ``memory``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True, slots=True)
class MemoryCgroup:
    """A memory cgroup as seen from this machine's mount table.

    Attributes:
        version: 1 (the v1 ``memory`` controller) or 2 (cgroup2 with ``memory`` enabled).
        path: the cgroup's directory (``/sys/fs/cgroup/memory/...``).
        mount: the mount point of its hierarchy; the effective limit is looked for from
            :attr:`path` up to here (ancestors above a namespace's root are not visible).
    """

    version: Literal[1, 2]
    path: Path
    mount: Path

    def ancestry(self) -> list[Path]:
        """:attr:`path` and each parent up to and including :attr:`mount`."""
        found = [self.path]
        current = self.path
        while current != self.mount and self.mount in current.parents:
            current = current.parent
            found.append(current)
        return found

    def file(self, name: str) -> Path:
        return self.path / name


@dataclass(frozen=True, slots=True)
class _Mount:
    root: str
    point: str
    fstype: str
    options: frozenset[str]


def find_memory_cgroup(pid: int | str = "self", *, root: Path = Path("/")) -> MemoryCgroup:
    """Find the memory cgroup of ``pid`` (default: this process).

    Args:
        pid: a process id, or ``"self"``.
        root: where ``/proc`` and the cgroup mounts are looked for; tests point it at a
            faithful copy of a machine's files. Mount points are taken under it too.

    Raises:
        MemoryUnavailableError: no memory cgroup is readable (no ``/proc``, no memory
            controller mounted, or the files are not visible); the message says which.
    """
    from ._errors import MemoryUnavailableError

    proc = root / "proc" / str(pid)
    try:
        membership = (proc / "cgroup").read_text()
        mountinfo = (proc / "mountinfo").read_text()
    except OSError as exc:
        raise MemoryUnavailableError(
            f"cannot read {proc}/cgroup or mountinfo ({exc.strerror}); "
            "memory is watched against the host's MemAvailable instead"
        ) from exc
    v1_path, v2_path = _paths(membership)
    mounts = _mounts(mountinfo)
    if v1_path is not None:
        for mount in mounts:
            if mount.fstype == "cgroup" and "memory" in mount.options:
                found = _resolve(root, mount, v1_path, "memory.usage_in_bytes")
                if found is not None:
                    return MemoryCgroup(1, found, root / mount.point.lstrip("/"))
    if v2_path is not None:
        for mount in mounts:
            if mount.fstype != "cgroup2":
                continue
            # memory.current exists only in non-root cgroups with the controller enabled.
            found = _resolve(root, mount, v2_path, "memory.current")
            if found is not None:
                return MemoryCgroup(2, found, root / mount.point.lstrip("/"))
    raise MemoryUnavailableError(
        f"no memory cgroup of process {pid} is visible under {root} (v1 path {v1_path}, "
        f"cgroup2 path {v2_path}); memory is watched against the host's MemAvailable instead"
    )


def _paths(membership: str) -> tuple[str | None, str | None]:
    """The v1 ``memory`` path and the cgroup2 path from ``/proc/PID/cgroup``."""
    v1 = v2 = None
    for line in membership.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            v2 = path
        elif "memory" in controllers.split(","):
            v1 = path
    return v1, v2


def _mounts(mountinfo: str) -> list[_Mount]:
    """Cgroup mounts from ``/proc/PID/mountinfo`` (proc(5): fields up to ``-``, then fs)."""
    found = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        dash = fields.index("-")
        if dash < 5 or len(fields) < dash + 3:
            continue
        fstype = fields[dash + 1]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        options = frozenset(fields[dash + 3].split(",")) if len(fields) > dash + 3 else frozenset()
        found.append(_Mount(_unescape(fields[3]), _unescape(fields[4]), fstype, options))
    return found


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (``\\040``)."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def _resolve(root: Path, mount: _Mount, path: str, probe: str) -> Path | None:
    point = root / mount.point.lstrip("/")
    relative = path
    if mount.root != "/" and (path == mount.root or path.startswith(mount.root + "/")):
        relative = path[len(mount.root) :]  # a bind mount of the container's own cgroup
    outside = ".." in relative.split("/")
    candidate = point / relative.lstrip("/")
    if not outside and (candidate / probe).exists():
        return candidate
    # The mount point stands for the process's cgroup only when the mount is a container's
    # own subtree (a bind mount, or a namespace whose root is above the process); on a host,
    # the mount point is the root cgroup, which is everyone's.
    if (outside or mount.root != "/") and (point / probe).exists():
        return point
    return None
