"""``warden run``, tied to the demo: if the demo dies without its cleanup, nothing is left.

    python -m warden.demo._tether --tie FD [--remove DIR]... -- COMMAND...

The demo starts this instead of COMMAND (``python -m warden run ...``); FD is the read end of
a pipe whose only write end the demo holds (:class:`Tie`). The tether forks a watcher (twice,
so that it is no one's child: not one warden would adopt and stop, nor one the demo waits
for), then becomes COMMAND by ``exec``: the same pid and the same pipes, so the demo sees
warden as its own child and signals it directly.

The watcher waits on the pipe. When the demo has cleaned up itself it writes one byte, and
the watcher leaves. When the pipe ends without it, the demo is gone (SIGKILL, a crash): the
watcher does what the demo would have done. SIGTERM to warden, whose graceful stop stops the
service and removes its memory cgroup; SIGKILL to warden and to the processes it had started
if it is not gone within :data:`STOP_WAIT`, and its memory cgroup removed; then the demo's
directories, each only if it is still the directory the demo made (not one planted at its
name since).

Layering: standard library only at import (the tether starts before warden does); the
watcher, a process of its own, imports the demo's helpers once it runs.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

#: What the demo writes to the pipe once it has cleaned up itself.
DONE = b"."

#: Seconds warden has for its graceful stop once the demo is gone, before SIGKILL.
STOP_WAIT = 20.0

_MODULE = "warden.demo._tether"


class Tie:
    """The demo's side: the pipe its warden's watcher waits on, and what to remove.

    Example::

        tie = Tie([runtime, workspace])
        proc = subprocess.Popen(tie.wrap(argv), pass_fds=tie.fds, ...)
        tie.launched()
        ...  # the demo's own cleanup
        tie.release()
    """

    def __init__(self, remove: Sequence[Path]) -> None:
        self._read, self._write = os.pipe()  # both close on exec: pass_fds hands one over
        self.remove = tuple(remove)

    @property
    def fds(self) -> tuple[int, ...]:
        """The descriptors the tether inherits (``Popen(pass_fds=...)``)."""
        return (self._read,)

    def wrap(self, command: Sequence[str]) -> list[str]:
        """``command`` started through the tether."""
        argv = [sys.executable, "-m", _MODULE, "--tie", str(self._read)]
        for path in self.remove:
            argv += ["--remove", str(path)]
        return [*argv, "--", *command]

    def launched(self) -> None:
        """The tether has started: only it needs the read end."""
        if self._read >= 0:
            os.close(self._read)
            self._read = -1

    def release(self) -> None:
        """The demo has cleaned up itself: the watcher leaves without doing anything."""
        self.launched()
        if self._write >= 0:
            with contextlib.suppress(OSError):
                os.write(self._write, DONE)
            os.close(self._write)
            self._write = -1


def _parse(argv: list[str]) -> tuple[int, list[Path], list[str]]:
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1 :]
    tie, remove = -1, []
    for flag, value in zip(options[::2], options[1::2], strict=True):
        if flag == "--tie":
            tie = int(value)
        elif flag == "--remove":
            remove.append(Path(value))
        else:
            raise ValueError(f"unknown option {flag}")
    if tie < 0 or not command:
        raise ValueError("--tie FD and a command are needed")
    return tie, remove, command


def main(argv: list[str]) -> NoReturn:
    """Fork the watcher, then become the command."""
    try:
        tie, remove, command = _parse(argv)
    except ValueError as exc:
        sys.stderr.write(f"warden demo tether: {exc}\n")
        os._exit(2)
    warden = os.getpid()  # warden's, once this process has become it
    pidfd = _pidfd(warden)
    first = os.fork()
    if first == 0:  # the watcher's parent, for a moment: the watcher must be no one's child
        os.setsid()
        if os.fork() == 0:
            try:
                _watch(tie, warden, pidfd, remove)
            finally:
                os._exit(0)
        os._exit(0)
    os.waitpid(first, 0)
    os.close(tie)
    if pidfd >= 0:
        os.close(pidfd)
    try:
        os.execv(command[0], command)
    except OSError as exc:
        sys.stderr.write(f"warden demo tether: cannot run {command[0]}: {exc.strerror}\n")
        os._exit(127)


def _watch(tie: int, warden: int, pidfd: int, remove: list[Path]) -> None:
    """Wait for the demo's end; if it ends without its byte, clean up after it."""
    _detach(keep={tie, pidfd})
    made = {path: _identity(path) for path in remove}
    while chunk := os.read(tie, 64):
        if DONE in chunk:
            return  # the demo cleaned up itself
    _stop(warden, pidfd)
    for path, identity in made.items():
        if identity is not None and _identity(path) == identity:
            shutil.rmtree(path, ignore_errors=True)


def _detach(keep: set[int]) -> None:
    """Hold nothing of the demo's: its pipes (warden's readers would never see their end),
    its terminal, its working directory (a mount it could not unmount)."""
    os.chdir("/")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        found = path.lstat()
    except OSError:
        return None
    return (found.st_dev, found.st_ino)


def _stop(warden: int, pidfd: int) -> None:
    """warden's graceful stop (SIGTERM); SIGKILL to it and its processes if it is too long;
    what it left in the memory cgroup removed."""
    from ._cgroup import remove_leftovers
    from ._warden import descendants

    started = [(pid, _pidfd(pid)) for pid in descendants(warden)]  # the service, and more
    _signal(warden, pidfd, signal.SIGTERM)
    if not _ended(warden, pidfd, STOP_WAIT):
        _signal(warden, pidfd, signal.SIGKILL)
        _ended(warden, pidfd, 5.0)
    for pid, fd in started:  # those its stop did not end
        _signal(pid, fd, signal.SIGKILL)
        if fd >= 0:
            os.close(fd)
    remove_leftovers(warden)


def _pidfd(pid: int) -> int:
    """A pidfd for ``pid`` (safe from a reused pid); -1 where the kernel has none (< 5.3) or
    the process is gone."""
    try:
        return os.pidfd_open(pid)
    except OSError:
        return -1


def _signal(pid: int, pidfd: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        if pidfd >= 0:
            signal.pidfd_send_signal(pidfd, signum)
        else:
            os.kill(pid, signum)


def _ended(pid: int, pidfd: int, timeout: float) -> bool:
    """Whether the process has ended, waiting up to ``timeout``: its pidfd turns readable
    (without one, /proc says it is gone or a zombie, asked every 0.1 s)."""
    if pidfd >= 0:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(timeout * 1000))
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            return True
        if state in ("Z", "X") or time.monotonic() >= deadline:
            return state in ("Z", "X")
        time.sleep(0.1)


if __name__ == "__main__":
    main(sys.argv[1:])
