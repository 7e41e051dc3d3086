"""inotify(7) through ctypes: a file descriptor the event loop waits on, not a timer.

Three system calls (``inotify_init1``, ``inotify_add_watch``, ``inotify_rm_watch``) and the
layout of ``struct inotify_event``; the descriptor is read with :func:`os.read`. The
symbols are looked up in the process itself (``dlopen(NULL)``: the C library the interpreter
is linked against, glibc or musl), never by ``ctypes.util.find_library``, which runs
``ldconfig -p`` in a child process: a PID 1 that reaps every child should not spawn one to
find its own C library.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Iterator

# <sys/inotify.h>
IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_EXCL_UNLINK = 0x04000000

#: What happens to a name in a watched directory, and to the directory itself.
DIRECTORY_EVENTS = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
)

#: The watch is gone, or no longer on the path it was added for.
WATCH_ENDED = IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT

_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len (of the name that follows)
_BUFFER = 64 * 1024


class _Calls:
    """The three system calls, bound once per process on first use."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.init1 = libc.inotify_init1
        self.init1.argtypes = [ctypes.c_int]
        self.init1.restype = ctypes.c_int
        self.add_watch = libc.inotify_add_watch
        self.add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self.add_watch.restype = ctypes.c_int
        self.rm_watch = libc.inotify_rm_watch
        self.rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        self.rm_watch.restype = ctypes.c_int


_calls: _Calls | None = None


def _bound() -> _Calls:
    global _calls
    if _calls is None:
        _calls = _Calls()
    return _calls


#: What the kernel's limits mean, and the fix (its own words say "no space left on device").
_LIMITS = {
    ("inotify_init1", errno.EMFILE): "the limit of inotify instances per user is reached; "
    "raise fs.inotify.max_user_instances",
    ("inotify_add_watch", errno.ENOSPC): "the limit of inotify watches per user is reached; "
    "raise fs.inotify.max_user_watches",
}


def _check(result: int, what: str, path: str | None = None) -> int:
    if result == -1:
        code = ctypes.get_errno()
        reason = _LIMITS.get((what, code), os.strerror(code))
        raise OSError(code, f"{what}: {reason}", path)
    return result


class Inotify:
    """One inotify instance: non-blocking, close-on-exec.

    Raises:
        OSError: the kernel refused (``EMFILE``: the per-user instance limit,
            ``fs.inotify.max_user_instances``; ``ENOSYS`` in a sandbox without inotify).
    """

    def __init__(self) -> None:
        self.fd = _check(_bound().init1(os.O_NONBLOCK | os.O_CLOEXEC), "inotify_init1")

    def add_watch(self, path: str, mask: int) -> int:
        """The watch descriptor of ``path`` (the same one for a path already watched).

        Raises:
            OSError: ``ENOENT``/``ENOTDIR`` (as FileNotFoundError, NotADirectoryError) when
                the path is gone, ``EACCES``, ``ENOSPC`` (``fs.inotify.max_user_watches``).
        """
        encoded = os.fsencode(path)
        while True:
            try:
                return _check(_bound().add_watch(self.fd, encoded, mask), "inotify_add_watch", path)
            except InterruptedError:
                continue

    def rm_watch(self, wd: int) -> None:
        """Remove a watch; one the kernel already dropped (``EINVAL``) is no error."""
        try:
            _check(_bound().rm_watch(self.fd, wd), "inotify_rm_watch")
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise

    def read(self) -> list[tuple[int, int]]:
        """Every event queued now, as (watch descriptor, mask); empty when none is."""
        events: list[tuple[int, int]] = []
        while True:
            try:
                data = os.read(self.fd, _BUFFER)
            except (BlockingIOError, InterruptedError):
                return events
            events.extend(parse(data))

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


def parse(data: bytes) -> Iterator[tuple[int, int]]:
    """(wd, mask) of each ``struct inotify_event`` in ``data``; names are not needed here."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
        offset += _HEADER.size + length
        yield wd, mask
