"""``--pid-file``: warden's pid, written atomically, removed at exit if it is still ours."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from .._exceptions import ConfigurationError
from .._unix import untrusted_path

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


#: What to do when the pid file cannot be written, by the reason the kernel gave.
_FIXES = {
    errno.ENOENT: "create its directory or choose another path",
    errno.ENOTDIR: "a part of the path is not a directory; choose another path",
    errno.EACCES: "choose a directory warden's user may write, or run as its owner",
    errno.EPERM: "choose a directory warden's user may write, or run as its owner",
    errno.EROFS: "the file system is read-only; choose a writable one (a tmpfs such as /run)",
    errno.ENOSPC: "the file system is full; free space or choose another (a tmpfs such as /run)",
    errno.EDQUOT: "the disk quota is used up; free space or choose another path",
}


class PidFile:
    """A pid file another program may read at any moment: never empty, never half written.

    The pid goes to a temporary file in the same directory, which is then renamed over the
    target (``rename`` is atomic within a filesystem, and replaces a symlink at the target
    instead of following it). warden stays the service's main pid through every upgrade, so
    the file is written once.

    The pid file's directory is often shared (``/run``, ``/tmp``): another user must not be
    able to make root write where they choose. So the temporary name is random (128 bits),
    created with ``O_CREAT|O_EXCL|O_NOFOLLOW`` (it can be neither pre-created nor a symlink
    to follow: a planted one fails the open with ``EEXIST``), and a directory that another
    user may write without the sticky bit (where they could rename our file or swap the
    target) is refused, as is one owned by another user.
    """

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._pid = os.getpid()

    def write(self) -> None:
        self._check_directory()
        # os.urandom, not secrets: secrets loads hashlib, and with it libcrypto (~4 MiB of a
        # PID 1's resident memory, measured); the name only needs to be unguessable.
        tmp = self.path.with_name(f".{self.path.name}.{os.urandom(16).hex()}.tmp")
        try:
            fd = os.open(tmp, _CREATE, 0o644)
        except OSError as exc:
            raise self._cannot(exc) from None
        try:
            try:
                os.fchmod(fd, 0o644)  # the umask may have taken read bits readers need
                os.write(fd, f"{self._pid}\n".encode())
            finally:
                os.close(fd)
            tmp.replace(self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise self._cannot(exc) from None

    def _cannot(self, exc: OSError) -> ConfigurationError:
        fix = _FIXES.get(exc.errno or 0, "choose a path where warden may write")
        return ConfigurationError(
            f"--pid-file {str(self.path)!r}: cannot write it: {exc.strerror}; {fix}"
        )

    def _check_directory(self) -> None:
        directory = self.path.parent
        try:
            info = directory.stat()
        except OSError as exc:
            raise self._cannot(exc) from None
        me = os.geteuid()
        if info.st_uid not in (me, 0):
            problem = f"is owned by uid {info.st_uid}"
        elif info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
            problem = "is writable by other users and not sticky"
        else:
            # And every directory (and symlink) above it: one another user may rename could
            # be swapped for theirs between our write and our remove.
            chain = untrusted_path(str(directory.absolute()))
            if chain is None:
                return
            problem = f"is reached through a path another user controls ({chain})"
        raise ConfigurationError(
            f"--pid-file {str(self.path)!r}: its directory {str(directory)!r} {problem}, so "
            "another user could replace the pid file; use a directory only this user (or "
            "root) can write, or a sticky one like /tmp"
        )

    def remove(self) -> None:
        """Remove the file, unless something else has replaced it since.

        Read without following a symlink or blocking (a FIFO put in its place would hold an
        ``open`` for reading until the deadline), and only if it is a regular file.
        """
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        with contextlib.suppress(OSError):
            fd = os.open(self.path, flags)
            try:
                ours = (
                    stat.S_ISREG(os.fstat(fd).st_mode)
                    and os.read(fd, 64).strip() == str(self._pid).encode()
                )
            finally:
                os.close(fd)
            if ours:
                self.path.unlink()
