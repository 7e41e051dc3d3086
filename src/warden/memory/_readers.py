"""Reading a cgroup's memory: working set, effective limit, OOM-kill counter (v1, v2, host).

Kernel facts these readers rely on:

* Raw usage counts page cache, which the kernel reclaims before it OOM-kills: with 150 MiB of
  cache, usage crossed 80 % of a limit 9.5 s before a kill while the process held 9 MiB
  (measured, SPEC §6). The *working set* is usage minus ``inactive_file`` (what the kubelet
  evicts on): v1 ``memory.usage_in_bytes`` - ``total_inactive_file`` (the ``total_`` keys,
  like the usage, include the descendants), v2 ``memory.current`` - ``inactive_file``.
* A limit set on an ancestor applies too: the effective limit is the smallest up the
  hierarchy (v1 ``memory.limit_in_bytes``; v2 ``memory.max``, and ``memory.high`` where the
  kernel starts throttling). v1 writes "no limit" as a page-rounded ``LONG_MAX``.
* Without a limit, what can run out is the host: headroom is then ``MemAvailable``
  (``/proc/meminfo``), and with a limit it is the smaller of the two.
* ``oom_kill`` counts the OOM kills in the cgroup: v1 in ``memory.oom_control`` (kernel
  4.13+), v2 in ``memory.events`` (hierarchical; ``memory.events.local`` is this level).

Files are opened once and read with ``pread`` from offset 0: a sample is a few system calls.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ._cgroup import MemoryCgroup

#: v1 reports "unlimited" as LONG_MAX rounded down to a page; anything this large is no limit.
UNLIMITED = 1 << 62


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of a cgroup's memory, in bytes.

    Attributes:
        at: ``time.monotonic()`` of the reading.
        usage: what the kernel charges (anonymous memory, page cache, kernel memory).
        inactive_file: page cache the kernel reclaims first.
        working_set: ``usage - inactive_file``: what cannot be given back cheaply.
        limit: the effective limit: the smallest up the hierarchy, lowered to
            ``working_set + MemAvailable`` when the host has less than that left.
    """

    at: float
    usage: int
    inactive_file: int
    working_set: int
    limit: int

    @property
    def headroom(self) -> int:
        return max(0, self.limit - self.working_set)

    @property
    def ratio(self) -> float:
        return self.working_set / self.limit if self.limit > 0 else 1.0


class MemoryReader(Protocol):
    """What the sentinel reads; one implementation per cgroup version, and the host."""

    #: One line for the log: which files, which limit.
    description: str

    @property
    def cgroup(self) -> MemoryCgroup | None:
        """The cgroup read (``None`` for the host)."""
        ...

    def sample(self, now: float) -> Sample: ...

    def oom_kills(self) -> int | None: ...

    def close(self) -> None: ...


class _Files:
    """Files kept open and re-read from offset 0 (sysfs regenerates them on each read)."""

    def __init__(self) -> None:
        self._fds: dict[Path, int] = {}

    def read(self, path: Path, size: int = 8192) -> str:
        fd = self._fds.get(path)
        if fd is None:
            fd = self._fds[path] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        return os.pread(fd, size, 0).decode()

    def close(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()


def parse_keyed(text: str) -> dict[str, int]:
    """``key value`` lines (memory.stat, memory.events, oom_control) as a dict."""
    found = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            found[key] = int(value.strip())
    return found


def parse_meminfo(text: str) -> dict[str, int]:
    """``/proc/meminfo`` in bytes (``MemAvailable:  123 kB``)."""
    found = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        words = rest.split()
        if words:
            with contextlib.suppress(ValueError):
                found[key] = int(words[0]) * (1024 if len(words) > 1 else 1)
    return found


def _limit_value(text: str) -> int:
    text = text.strip()
    if text == "max" or not text:
        return UNLIMITED
    return min(int(text), UNLIMITED)


class _CgroupReader:
    usage_name = ""
    stat_key = ""
    limit_names: tuple[str, ...] = ()

    def __init__(self, cgroup: MemoryCgroup, *, meminfo: Path = Path("/proc/meminfo")) -> None:
        self._cgroup = cgroup
        self._meminfo = meminfo
        self._files = _Files()
        limits = [
            directory / name
            for directory in cgroup.ancestry()
            for name in self.limit_names
            if (directory / name).exists()
        ]
        self._limits = limits
        self.description = (
            f"cgroup v{cgroup.version} {cgroup.path}, limit {_mib(self.cgroup_limit())}"
        )

    @property
    def cgroup(self) -> MemoryCgroup:
        return self._cgroup

    def cgroup_limit(self) -> int:
        """The smallest limit up the hierarchy (:data:`UNLIMITED` when there is none)."""
        values = [UNLIMITED]
        for path in self._limits:
            with contextlib.suppress(OSError, ValueError):
                values.append(_limit_value(self._files.read(path, 64)))
        return min(values)

    def sample(self, now: float) -> Sample:
        usage = int(self._files.read(self.cgroup.file(self.usage_name), 64))
        stat = parse_keyed(self._files.read(self.cgroup.file("memory.stat")))
        inactive = stat.get(self.stat_key, 0)
        working_set = max(0, usage - inactive)
        limit = self.cgroup_limit()
        available = self._available()
        if available is not None:
            limit = min(limit, working_set + available)
        return Sample(now, usage, inactive, working_set, limit)

    def _available(self) -> int | None:
        try:
            return parse_meminfo(self._files.read(self._meminfo)).get("MemAvailable")
        except OSError:
            return None

    def oom_kills(self) -> int | None:
        raise NotImplementedError

    def close(self) -> None:
        self._files.close()


class V1Reader(_CgroupReader):
    """The v1 ``memory`` controller."""

    usage_name = "memory.usage_in_bytes"
    stat_key = "total_inactive_file"
    limit_names = ("memory.limit_in_bytes",)

    def oom_kills(self) -> int | None:
        try:
            return parse_keyed(self._files.read(self.cgroup.file("memory.oom_control"))).get(
                "oom_kill"
            )
        except OSError:
            return None


class V2Reader(_CgroupReader):
    """cgroup2 with the ``memory`` controller enabled."""

    usage_name = "memory.current"
    stat_key = "inactive_file"
    limit_names = ("memory.max", "memory.high")

    def events(self) -> dict[str, int]:
        """``memory.events``: counts of ``low``, ``high``, ``max``, ``oom``, ``oom_kill``."""
        return parse_keyed(self._files.read(self.cgroup.file("memory.events")))

    def oom_kills(self) -> int | None:
        try:
            return self.events().get("oom_kill")
        except OSError:
            return None


class HostReader:
    """No readable cgroup: the host's memory (working set = MemTotal - MemAvailable)."""

    @property
    def cgroup(self) -> None:
        return None

    def __init__(self, meminfo: Path = Path("/proc/meminfo")) -> None:
        self._meminfo = meminfo
        self._files = _Files()
        self.description = f"host memory ({meminfo}), no memory cgroup"

    def sample(self, now: float) -> Sample:
        info = parse_meminfo(self._files.read(self._meminfo))
        total = info.get("MemTotal", 0)
        available = info.get("MemAvailable", info.get("MemFree", 0))
        inactive = info.get("Inactive(file)", 0)
        working_set = max(0, total - available)
        return Sample(now, working_set + inactive, inactive, working_set, total)

    def oom_kills(self) -> int | None:
        try:
            return parse_keyed(Path("/proc/vmstat").read_text()).get("oom_kill")
        except OSError:
            return None

    def close(self) -> None:
        self._files.close()


def reader_for(
    cgroup: MemoryCgroup | None, *, meminfo: Path = Path("/proc/meminfo")
) -> V1Reader | V2Reader | HostReader:
    """The reader for ``cgroup`` (the host's memory when it is ``None``)."""
    if cgroup is None:
        return HostReader(meminfo)
    if cgroup.version == 1:
        return V1Reader(cgroup, meminfo=meminfo)
    return V2Reader(cgroup, meminfo=meminfo)


def limit_of(cgroup: MemoryCgroup) -> int | None:
    """``cgroup``'s effective memory limit in bytes, read now; None when it has none.

    Raises:
        OSError, ValueError: the limit file cannot be read, or does not hold a number.
    """
    reader = V1Reader(cgroup) if cgroup.version == 1 else V2Reader(cgroup)
    try:
        limit = reader.cgroup_limit()
    finally:
        reader.close()
    return None if limit >= UNLIMITED else limit


def _mib(value: int) -> str:
    return "none" if value >= UNLIMITED else f"{value / 2**20:.0f} MiB"
