"""Starting the child: one function, ``posix_spawn``, a process group of its own.

Why ``posix_spawn`` and not ``fork``: warden is multi-threaded (the lifecycle's deadline guard
is a thread), and after ``fork`` only the forking thread exists in the child while every lock
another thread held stays locked forever, so running Python between ``fork`` and ``exec`` can
deadlock. glibc's ``posix_spawn`` uses ``clone(CLONE_VM|CLONE_VFORK)`` and runs only
async-signal-safe code before ``execve``; it reports an ``execve`` failure to the parent as an
error code (and reaps that short-lived child itself), which we turn into 127/126 like a shell.

Why not ``subprocess``: it waits on its own child, and warden must be the only code that waits
(the reaper's ``waitpid(-1)`` would steal the status from under ``Popen.wait``).

What the child gets:

* its own process group (``setpgroup=0``): the stop ladder's SIGKILL reaches the whole group,
  and ``--group`` forwards signals to it; as with tini, a terminal's foreground goes to it.
* default dispositions for every signal (``setsigdef``): ``execve`` resets caught signals but
  *keeps ignored ones*, and Python ignores SIGPIPE and SIGXFSZ, warden ignores SIGTTIN and
  SIGTTOU; a child that inherited an ignored SIGPIPE would spin on EPIPE instead of dying.
* an empty signal mask (``setsigmask``): the mask also survives ``execve``.

Listening sockets at fds 3.. need ``LISTEN_PID`` equal to the child's pid, which the parent
cannot know before the spawn: :mod:`._handover` spawns a small exec shim the same way, which
sets the variable and then execs the command.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from ..._exceptions import WardenError
from ..._exitcodes import EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND

#: Errors of a spawn that are a shortage on the machine, not a fault of the command: no
#: descriptor (EMFILE, ENFILE), no kernel memory (ENOMEM, ENOBUFS for a socket), no process
#: slot (EAGAIN: RLIMIT_NPROC, pid_max, a cgroup's pids.max). They pass with time: the restart
#: policy tries again after its backoff.
SHORTAGES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS, errno.EAGAIN})


def is_shortage(exc: BaseException) -> bool:
    """Whether ``exc`` is a spawn error that passes with time (see :data:`SHORTAGES`)."""
    return isinstance(exc, OSError) and exc.errno in SHORTAGES


#: Every signal whose disposition the child gets reset to the default (KILL and STOP cannot
#: be caught or ignored, so they are never anything but the default).
_DEFAULT_IN_CHILD = frozenset(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}


class SpawnError(WardenError, OSError):
    """The command could not be executed; :attr:`exit_code` is 127 (not found) or 126."""

    def __init__(self, command: str, cause: OSError) -> None:
        self.command = command
        self.exit_code, self.why = _explain(command, cause.errno)
        super().__init__(cause.errno, self.why)

    def __str__(self) -> str:
        return f"cannot run {self.command!r}: {self.why}"


def _explain(command: str, code: int | None) -> tuple[int, str]:
    if code in (errno.ENOENT, errno.ENOTDIR):
        if "/" not in command:
            return EXIT_NOT_FOUND, "command not found in PATH"
        return EXIT_NOT_FOUND, "no such file (or its #! interpreter does not exist)"
    if code in (errno.EACCES, errno.EISDIR) and "/" in command and Path(command).is_dir():
        return EXIT_NOT_EXECUTABLE, "is a directory; give the program to run inside it"
    if code == errno.EACCES:
        return EXIT_NOT_EXECUTABLE, "permission denied (not an executable file? chmod +x)"
    if code == errno.ENOEXEC:
        return (
            EXIT_NOT_EXECUTABLE,
            "exec format error (a script without a #! line, or a binary for another machine)",
        )
    return EXIT_NOT_EXECUTABLE, os.strerror(code) if code is not None else "unknown error"


def spawn_child(argv: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    """Start ``argv`` (searched in ``PATH`` like a shell) in a new process group; return its pid.

    The pid is also the process group id. Raises :class:`SpawnError` when ``execve`` fails.
    """
    command = argv[0]
    try:
        return os.posix_spawnp(
            command,
            list(argv),
            dict(os.environ if env is None else env),
            setpgroup=0,
            setsigmask=(),
            setsigdef=_DEFAULT_IN_CHILD,
        )
    except OSError as exc:
        raise SpawnError(command, exc) from exc


class Terminal:
    """Hands a controlling terminal's foreground to the child's process group, as tini does.

    When warden runs in the foreground of a terminal (``docker run -it``, a shell), Ctrl-C,
    Ctrl-Z and reads from the terminal must concern the program, not warden: the kernel sends
    the terminal's signals to its *foreground process group*, and only a foreground process may
    read from it (a background reader gets SIGTTIN, which stops it). So the child's group
    becomes the foreground. warden ignores SIGTTIN/SIGTTOU itself (the supervisor installs
    that), so it can still write its own lines and move the foreground again after a restart.

    tini does ``tcsetpgrp`` in the forked child before ``exec``; ``posix_spawn`` has no such
    step, so warden does it from the parent right after the spawn. If the child touched the
    terminal in that window it was stopped by SIGTTIN; the SIGCONT that follows resumes it (a
    running process ignores SIGCONT by default).
    """

    def __init__(self, fd: int = 0) -> None:
        self._fd = fd
        # Only take the foreground if warden has it: a background warden must not steal it.
        self.owned = False
        try:
            self.owned = os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp()
        except OSError:
            self.owned = False

    def give_to(self, pgid: int) -> None:
        if not self.owned:
            return
        try:
            os.tcsetpgrp(self._fd, pgid)
        except OSError:
            return  # the terminal went away (hang-up); nothing to hand over
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGCONT)


@contextlib.contextmanager
def ignoring_terminal_stops() -> Iterator[None]:
    """Ignore SIGTTIN/SIGTTOU while supervising (tini does the same).

    warden hands the terminal's foreground to the program, after which warden is a background
    process: with ``TOSTOP`` set a write of its own would stop it, and moving the foreground
    again after a restart (``tcsetpgrp`` from the background) sends SIGTTOU.
    """
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGTTIN, signal.SIGTTOU)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
