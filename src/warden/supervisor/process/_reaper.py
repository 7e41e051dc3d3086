"""The reaper: the only code in warden that waits on children.

Kernel facts:

* A process that exits stays a zombie (its pid and exit status held by the kernel) until its
  parent waits on it. When a parent dies first, its children are re-parented to the nearest
  ancestor marked ``PR_SET_CHILD_SUBREAPER``, or to PID 1 of the PID namespace. warden marks
  itself a subreaper, so every orphan of the program becomes warden's child and warden must
  reap it, or it stays a zombie forever (what tini exists to fix).
* SIGCHLD is a standard signal: several exits while it is pending deliver it *once*. So a
  SIGCHLD means "at least one child changed", and one delivery must reap until
  ``waitpid(-1, WNOHANG)`` returns 0 (children left, none exited) or fails with ECHILD (no
  children at all).
* ``waitpid(-1)`` takes the status of *any* child. If another piece of code also waited for
  a specific pid (``subprocess.Popen.wait``), one of the two would lose the status, and
  ``subprocess`` then reports exit code 0 for a child it never saw die. Hence one waiter.
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable

from ...lifecycle import _child_pids as child_pids
from .._tally import Tally

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Mark this process a child subreaper (Linux >= 3.4), so orphans are re-parented to it."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl(PR_SET_CHILD_SUBREAPER) failed: {os.strerror(code)}")


class Reaper:
    """Reaps every child on demand and hands the statuses of watched pids to their callbacks.

    Call :meth:`reap` from the loop whenever SIGCHLD was delivered (and once after start, in
    case a child died before the handler was in place). Orphans are reaped and counted.
    """

    def __init__(self, tally: Tally | None = None) -> None:
        self._watched: dict[int, Callable[[int], None]] = {}
        self.tally = tally or Tally()
        #: True when the last :meth:`reap` found warden with no children at all (ECHILD).
        self.childless = False

    def watch(self, pid: int, on_exit: Callable[[int], None]) -> None:
        """Call ``on_exit(wait_status)`` from :meth:`reap` when ``pid`` is reaped."""
        self._watched[pid] = on_exit

    def reap(self) -> int:
        """Reap every child that has ended; return how many. Never blocks."""
        reaped = 0
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:  # ECHILD: no children at all
                self.childless = True
                break
            if pid == 0:  # children exist, none has ended
                self.childless = False
                break
            reaped += 1
            on_exit = self._watched.pop(pid, None)
            if on_exit is None:
                self.tally.orphans_reaped += 1
            else:
                on_exit(status)
        return reaped

    def kill_children(self, signum: int = signal.SIGKILL) -> int:
        """Send ``signum`` to every living child of warden; return how many were signalled.

        Safe against pid reuse: a child's pid cannot be given to another process until warden
        reaps it, and reaping happens on this same thread.
        """
        sent = 0
        for pid in child_pids():
            try:
                os.kill(pid, signum)
                sent += 1
            except OSError:  # gone, or not ours to signal (EPERM: setuid)
                pass
        return sent
