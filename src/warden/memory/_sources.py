"""Kernel event sources that wake the sentinel, so that it need not poll while memory is idle.

Each source is a file descriptor the event loop watches; when one fires, the sentinel takes a
sample (the sources say *that* something moved, the sample says *where* memory is). Kernel
facts behind each:

* **v1 thresholds** (``cgroup.event_control``, "<eventfd> <fd of memory.usage_in_bytes>
  <bytes>"): the kernel signals the eventfd when *usage* crosses the value, either way. The
  levels are on the working set, so each is registered at ``level x limit + inactive_file``
  and re-registered when ``inactive_file`` moves (the kubelet does the same). A registration
  lives as long as its eventfd: closing the eventfd removes it (``memcg_event_wake`` on
  EPOLLHUP), so re-arming is "close, register anew".
* **v1 ``memory.pressure_level``** and **``memory.oom_control``** through the same
  ``cgroup.event_control``: reclaim pressure ("medium") and an OOM in the cgroup. Without
  swap they fire 20-240 ms before a kill (SPEC §6): a last word, not a warning.
* **v2 ``memory.events``** (``high``, ``max``, ``oom``, ``oom_kill``): kernfs signals a change
  with ``POLLPRI`` (``kernfs_notify``), and the file stays "readable" always, so it is watched
  for ``EPOLLPRI`` in an epoll set whose own fd the loop watches; reading the file from offset
  0 acknowledges the change.
* **PSI triggers** ("some 100000 2000000" written to ``/proc/pressure/memory``, or to the
  file systemd names in ``$MEMORY_PRESSURE_WATCH`` with ``$MEMORY_PRESSURE_WRITE`` base64):
  also ``EPOLLPRI``. Without ``CAP_SYS_RESOURCE`` the window must be a multiple of 2 s; the
  trigger is removed when its fd is closed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import os
import select
from collections.abc import Callable, Iterable
from pathlib import Path

from ._cgroup import MemoryCgroup
from ._readers import parse_keyed

Wake = Callable[[str], None]

#: The PSI trigger the sentinel arms unless systemd says otherwise: 100 ms of stall in 2 s.
DEFAULT_PSI_TRIGGER = "some 100000 2000000"


class V1Events:
    """v1 ``cgroup.event_control`` registrations: usage thresholds, pressure, OOM."""

    def __init__(self, cgroup: MemoryCgroup, loop: asyncio.AbstractEventLoop, wake: Wake) -> None:
        self._cgroup = cgroup
        self._loop = loop
        self._wake = wake
        self._control = os.open(cgroup.file("cgroup.event_control"), os.O_WRONLY | os.O_CLOEXEC)
        self._usage = os.open(cgroup.file("memory.usage_in_bytes"), os.O_RDONLY | os.O_CLOEXEC)
        self._fixed: list[int] = []
        self._thresholds: int | None = None
        #: The usage values the current thresholds are registered at.
        self.armed: tuple[int, ...] = ()
        self._band: int | None = None
        #: The idle band's usage thresholds (:meth:`arm_band`).
        self.band: tuple[int, ...] = ()
        self.names: list[str] = ["v1 usage thresholds"]
        for name, argument, label in (
            ("memory.pressure_level", "medium", "v1 memory.pressure_level"),
            ("memory.oom_control", None, "v1 memory.oom_control"),
        ):
            with contextlib.suppress(OSError):
                self._fixed.append(self._register_file(name, argument, label))
                self.names.append(label)

    def _register_file(self, name: str, argument: str | None, label: str) -> int:
        target = os.open(self._cgroup.file(name), os.O_RDONLY | os.O_CLOEXEC)
        try:
            efd = self._new_eventfd(label)
            try:
                line = f"{efd} {target}" + (f" {argument}" if argument else "")
                os.write(self._control, line.encode())
            except OSError:
                self._drop(efd)
                raise
        finally:
            os.close(target)  # the registration holds its own reference to the file
        return efd

    def _new_eventfd(self, label: str) -> int:
        efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._loop.add_reader(efd, self._fired, efd, label)
        return efd

    def _fired(self, efd: int, label: str) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.eventfd_read(efd)
        self._wake(label)

    def _drop(self, efd: int) -> None:
        self._loop.remove_reader(efd)
        with contextlib.suppress(OSError):
            os.close(efd)

    def arm(self, usages: Iterable[int]) -> None:
        """Register usage thresholds at ``usages`` (bytes), replacing the previous ones."""
        values = tuple(sorted(set(usages)))
        if values == self.armed:
            return
        old, self._thresholds, self.armed = self._thresholds, None, ()
        self._thresholds, self.armed = self._replace(old, values, "threshold")

    def arm_band(self, usages: Iterable[int]) -> None:
        """Register the idle band's thresholds (an eventfd of their own), replacing the last."""
        values = tuple(sorted(set(usages)))
        if values != self.band:
            old, self._band, self.band = self._band, None, ()
            self._band, self.band = self._replace(old, values, "band")

    def _replace(
        self, old: int | None, values: tuple[int, ...], what: str
    ) -> tuple[int | None, tuple[int, ...]]:
        if old is not None:
            self._drop(old)
        if not values:
            return None, ()
        efd = self._new_eventfd(f"v1 usage {what}")
        try:
            for value in values:
                os.write(self._control, f"{efd} {self._usage} {value}".encode())
        except OSError:
            self._drop(efd)
            raise
        return efd, values

    def close(self) -> None:
        for efd in [*self._fixed, self._thresholds, self._band]:
            if efd is not None:
                self._drop(efd)
        self._fixed.clear()
        self._thresholds = self._band = None
        self.armed = self.band = ()
        for fd in (self._control, self._usage):
            with contextlib.suppress(OSError):
                os.close(fd)


class PriorityEvents:
    """Files that signal with ``POLLPRI`` (kernfs ``memory.events``, PSI triggers).

    One epoll set holds them (``EPOLLPRI``, level-triggered); the loop watches the epoll
    set's own fd, which is readable when any member has an event.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, wake: Wake) -> None:
        self._loop = loop
        self._wake = wake
        self._epoll = select.epoll()
        self._members: dict[int, tuple[str, Callable[[int], str | None]]] = {}
        loop.add_reader(self._epoll.fileno(), self._ready)
        self.names: list[str] = []

    def add(self, fd: int, label: str, acknowledge: Callable[[int], str | None]) -> None:
        """Watch ``fd`` for ``EPOLLPRI``; ``acknowledge(fd)`` clears the event and may say
        what it was (it is appended to the wake reason)."""
        self._epoll.register(fd, select.EPOLLPRI)
        self._members[fd] = (label, acknowledge)
        self.names.append(label)

    def _ready(self) -> None:
        for fd, _mask in self._epoll.poll(0):
            label, acknowledge = self._members[fd]
            what = acknowledge(fd)
            self._wake(f"{label}: {what}" if what else label)

    def close(self) -> None:
        self._loop.remove_reader(self._epoll.fileno())
        for fd in self._members:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._members.clear()
        self._epoll.close()


class MemoryEventsFile:
    """v2 ``memory.events``: remembers the counters, says which ones rose."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.counts = self.read()

    def read(self) -> dict[str, int]:
        return parse_keyed(os.pread(self.fd, 4096, 0).decode())

    def acknowledge(self, _fd: int = -1) -> str | None:
        """Read the file (which clears kernfs' POLLPRI) and name the counters that rose."""
        new = self.read()
        rose = [
            f"{key}+{new[key] - self.counts.get(key, 0)}"
            for key in new
            if new[key] > self.counts.get(key, 0)
        ]
        self.counts = new
        return " ".join(rose) or None


def psi_trigger(
    environ: dict[str, str] | None = None, *, default_path: Path = Path("/proc/pressure/memory")
) -> tuple[Path, bytes] | None:
    """Where to write which PSI trigger: systemd's ``MemoryPressureWatch=`` if it set one.

    systemd (``MemoryPressureWatch=``) passes ``$MEMORY_PRESSURE_WATCH`` (a path; ``/dev/null``
    means "do not watch") and ``$MEMORY_PRESSURE_WRITE`` (what to write, base64).

    Raises:
        ValueError: ``$MEMORY_PRESSURE_WRITE`` is not base64.
    """
    env = os.environ if environ is None else environ
    watch = env.get("MEMORY_PRESSURE_WATCH")
    if watch == "/dev/null":
        return None
    if watch is None:
        return default_path, DEFAULT_PSI_TRIGGER.encode() + b"\0"
    encoded = env.get("MEMORY_PRESSURE_WRITE")
    if encoded is None:
        return Path(watch), DEFAULT_PSI_TRIGGER.encode() + b"\0"
    try:
        return Path(watch), base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise ValueError(
            f"MEMORY_PRESSURE_WRITE={encoded!r} is not base64 ({exc}); "
            "fix the unit's MemoryPressureThresholdSec= or unset it"
        ) from exc


def open_psi_trigger(path: Path, trigger: bytes) -> int:
    """Open ``path`` and write ``trigger``; the returned fd holds the trigger until closed.

    Raises:
        OSError: the kernel refused it (``EINVAL`` for a window that is not a multiple of 2 s
            without ``CAP_SYS_RESOURCE``; ``ENOENT`` without PSI).
    """
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        os.write(fd, trigger)
    except OSError:
        os.close(fd)
        raise
    return fd
