"""Why the child stopped, stated precisely.

One frozen value per death, built from the raw ``waitpid`` status, so that logs, the final line
and (later) status and metrics all say the same thing::

    exited(0)                      exit(0) or return from main
    exited(3)
    killed(SIGSEGV, core dumped)
    killed(SIGKILL)
    killed(SIGKILL) — not an OOM kill
    exec failed(127: command not found)
    oom-killed                     the memory sentinel saw the cgroup's oom_kill counter rise
    watchdog timeout               the child missed its WATCHDOG=1 ping
    failed to become ready within 30s

The kernel only ever tells a parent "exited with N" or "killed by signal N (maybe with a core)";
the other kinds are *interpretations* a later observer adds with :meth:`ExitReason.refined`
(the memory sentinel turns a ``killed(SIGKILL)`` into ``oom-killed`` only when the ``oom_kill``
counter rose at the same time; the OOM killer always uses SIGKILL and sends no warning).
"""

from __future__ import annotations

import dataclasses
import enum
import os

from ..._exitcodes import EXIT_FAILURE, EXIT_NOT_READY
from ...lifecycle import signal_name


class ExitKind(enum.Enum):
    """What kind of end the child came to."""

    EXITED = "exited"
    KILLED = "killed"
    EXEC_FAILED = "exec failed"
    OOM_KILLED = "oom-killed"
    WATCHDOG_TIMEOUT = "watchdog timeout"
    NOT_READY = "not ready"


@dataclasses.dataclass(frozen=True)
class ExitReason:
    """Why the child stopped; ``str()`` gives the precise one-word-ish form used everywhere.

    Build it with :meth:`from_wait_status` (what the kernel said) or :meth:`exec_failed`, and
    let later observers re-interpret it with :meth:`refined`.

    >>> str(ExitReason.from_wait_status(0x8B))
    'killed(SIGSEGV, core dumped)'
    """

    kind: ExitKind
    #: The exit status for EXITED and EXEC_FAILED, else None.
    code: int | None = None
    #: The terminating signal for KILLED (and for OOM_KILLED / WATCHDOG_TIMEOUT when known).
    signum: int | None = None
    core_dumped: bool = False
    #: Extra words after the reason: ``not an OOM kill``, ``command not found``, ``30s``.
    detail: str | None = None
    #: The memory sentinel sent it its stop signal at ``critical``, before the OOM killer:
    #: whatever it then exited with, the service did not end well (see :attr:`exit_code`).
    stopped_at_critical: bool = False

    @classmethod
    def from_wait_status(cls, status: int) -> ExitReason:
        """Interpret a raw status from ``os.waitpid``.

        Only terminations are meaningful here: warden does not wait with ``WUNTRACED`` or
        ``WCONTINUED``, so the kernel never reports a stop or a continue to it.
        """
        if os.WIFSIGNALED(status):
            return cls(
                ExitKind.KILLED,
                signum=os.WTERMSIG(status),
                core_dumped=os.WCOREDUMP(status),
            )
        if os.WIFEXITED(status):
            return cls(ExitKind.EXITED, code=os.WEXITSTATUS(status))
        raise ValueError(f"wait status {status:#x} is neither an exit nor a death by signal")

    @classmethod
    def exec_failed(cls, code: int, why: str) -> ExitReason:
        """The command could not be executed: 127 not found, 126 not executable."""
        return cls(ExitKind.EXEC_FAILED, code=code, detail=why)

    def refined(self, kind: ExitKind, detail: str | None = None) -> ExitReason:
        """The same death re-interpreted by an observer that knows more (sentinel, watchdog).

        The signal and core flag are kept, so the exit code stays the kernel's.
        """
        return dataclasses.replace(self, kind=kind, detail=detail)

    def with_detail(self, detail: str) -> ExitReason:
        """The same reason with a note, e.g. ``killed(SIGKILL) — not an OOM kill``."""
        return dataclasses.replace(self, detail=detail)

    @property
    def success(self) -> bool:
        """True only for ``exited(0)`` of a program not stopped for its memory: the one end the
        restart policy calls a success."""
        return self.kind is ExitKind.EXITED and self.code == 0 and not self.stopped_at_critical

    @property
    def exit_code(self) -> int:
        """The code warden exits with for this reason: the child's, or 128+signal (shell rule).

        A program that was not ready in time was stopped by warden: whatever it then exited
        with (0, or 143 for the stop signal it got), the code is ``EXIT_NOT_READY``, so
        ``Restart=on-failure`` and CI see a failure that does not read like its own. One the
        memory sentinel stopped at ``critical`` that exited 0 gives ``EXIT_FAILURE`` (1).
        """
        if self.kind is ExitKind.NOT_READY:
            return EXIT_NOT_READY
        if self.stopped_at_critical and self.code == 0:
            # Stopped before the OOM killer, it exited cleanly: still an end the service
            # manager must restart (Restart=on-failure, a Job's OnFailure), not a success.
            return EXIT_FAILURE
        if self.code is not None:
            return self.code
        if self.signum is not None:
            return 128 + self.signum
        return 1

    def __str__(self) -> str:
        kind = self.kind
        if kind is ExitKind.EXITED:
            text = f"exited({self.code})"
        elif kind is ExitKind.KILLED:
            assert self.signum is not None
            core = ", core dumped" if self.core_dumped else ""
            text = f"killed({signal_name(self.signum)}{core})"
        elif kind is ExitKind.EXEC_FAILED:
            return f"exec failed({self.code}: {self.detail})"
        elif kind is ExitKind.NOT_READY:
            return f"failed to become ready within {self.detail}"
        else:
            text = kind.value
        return f"{text} — {self.detail}" if self.detail else text
