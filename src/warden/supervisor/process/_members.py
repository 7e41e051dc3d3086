"""The processes a run has started, each watched until it ends (an upgrade's window).

A server's workers crashing and being replaced is invisible from outside: between two
crashes a respawned worker answers, so probes pass, and only the requests each crash takes
with it fail. So the confirmation window watches every process of the new release, and one
that ends inside it fails the release. Kernel facts this rests on:

* warden is a child subreaper, but a worker's parent is its server's master, which waits for
  it (and respawns it): the kernel reports the worker's end to the master only. warden gets no
  SIGCHLD and no wait status for it; nothing tells warden *how* it ended, only *that* it did.
* ``/proc/PID/task/TID/children`` (Linux 3.5, ``CONFIG_PROC_CHILDREN``, which warden's
  reaping relies on too) lists the children of one thread: the run's tree is read from them,
  thread by thread, and each member's ``/proc/PID/stat`` gives its state, name and start time
  (field 22). A scan costs a few file reads per member, whatever else runs on the machine.
* A pidfd (``pidfd_open``, Linux 5.3) names one process, not a number: it turns readable
  (``POLLIN``) when that process exits, whoever reaps it, and stays so. Each process a scan
  finds is watched through one in the event loop, so an end is seen when it happens, not at
  the next scan, and a master that respawns a worker between two scans cannot hide the first
  one's end.
* A pid is given to another process only once the one it named has been reaped, and the new
  one starts later: its parent's pid in ``stat`` says the process is the one its parent
  listed, and the start time read again *after* ``pidfd_open`` that the pidfd names it.

Not seen: a process born and ended between two scans (a helper run and finished). A
crash-looping worker is: each one lives from its boot to its crash, and the scan before its
crash finds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Member:
    """A process of a run: its pid and its name (``comm``, as ``ps`` shows it)."""

    pid: int
    name: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.name})"


@dataclass(frozen=True, slots=True)
class _Stat:
    ppid: int
    started: int  #: clock ticks after boot
    state: str
    name: str


class Descendants:
    """The descendants of the process ``pid`` (not ``pid`` itself), each watched through a
    pidfd from the :meth:`scan` that finds it; :attr:`ended` lists those that have ended,
    :attr:`changed` is set at the first. :meth:`close` when done (it closes the pidfds).
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.ended: list[Member] = []
        self.changed = asyncio.Event()
        self._watched: dict[int, tuple[int, Member]] = {}  # pid -> (pidfd, member)
        self._loop = asyncio.get_running_loop()

    def scan(self) -> None:
        """Find the descendants not watched yet and watch them; one found already ended (a
        zombie, or gone before its pidfd was open) is an end too."""
        for pid, parent in _tree(self.pid):
            if pid in self._watched:
                continue
            stat = _stat(pid)
            if stat is None or stat.ppid != parent:
                continue  # reaped since its parent listed it (the pid maybe reused): not seen
            member = Member(pid, stat.name)
            if stat.state in ("Z", "X"):
                self._end(member)
                continue
            try:
                pidfd = os.pidfd_open(pid)
            except ProcessLookupError:
                self._end(member)
                continue
            again = _stat(pid)
            if again is None or again.started != stat.started or again.state in ("Z", "X"):
                os.close(pidfd)  # the process the scan saw has ended since
                self._end(member)
                continue
            self._watched[pid] = (pidfd, member)
            self._loop.add_reader(pidfd, self._exited, pid)

    def _exited(self, pid: int) -> None:
        pidfd, member = self._watched.pop(pid)
        self._loop.remove_reader(pidfd)
        os.close(pidfd)
        self._end(member)

    def _end(self, member: Member) -> None:
        if all(m.pid != member.pid for m in self.ended):
            self.ended.append(member)
        self.changed.set()

    def close(self) -> None:
        for pidfd, _ in self._watched.values():
            self._loop.remove_reader(pidfd)
            os.close(pidfd)
        self._watched.clear()


def exited(pid: int) -> bool:
    """Whether warden's child ``pid`` has exited (a zombie, or reaped already); it is not
    reaped here (``WNOWAIT``): the reaper stays the only code that takes a status."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _tree(root: int) -> list[tuple[int, int]]:
    """``root``'s descendants as ``(pid, parent)``, parents before their children."""
    found: list[tuple[int, int]] = []
    parents = [root]
    while parents:
        kids = [(kid, parent) for parent in parents for kid in _children(parent)]
        found.extend(kids)
        parents = [kid for kid, _ in kids]
    return found


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    with contextlib.suppress(OSError):  # gone meanwhile: no children to list
        for task in os.listdir(f"/proc/{pid}/task"):
            with (
                contextlib.suppress(OSError),
                open(f"/proc/{pid}/task/{task}/children", "rb") as file,
            ):
                kids.extend(int(kid) for kid in file.read().split())
    return kids


def _stat(pid: int) -> _Stat | None:
    """``/proc/PID/stat``'s fields, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            raw = file.read()
    except OSError:
        return None
    # The name is between the first "(" and the last ")": it may hold either.
    head, _, rest = raw.rpartition(b")")
    fields = rest.split()
    name = head.partition(b"(")[2].decode(errors="replace")
    return _Stat(ppid=int(fields[1]), started=int(fields[19]), state=fields[0].decode(), name=name)
