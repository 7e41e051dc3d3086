"""AF_UNIX socket files: the address limit, the stale-socket probe, removal of our own file.

Standard library only, so the CLI client could use it without loading asyncio. Kernel facts:

* ``struct sockaddr_un.sun_path`` is 108 bytes on Linux (``man 7 unix``); a path must leave
  room for its terminating NUL, which most clients copy, and an abstract name for its
  leading NUL: 107 usable bytes.
* A socket file outlives its listener: after a crash the file stays and ``bind()`` fails with
  ``EADDRINUSE`` although nobody listens. ``connect()`` tells the two apart: ``ECONNREFUSED``
  means nobody listens (the file is stale); a listener accepts, or, with a full backlog, a
  non-blocking ``connect()`` fails with ``EAGAIN`` (still live: never wait on it).
* A path is not a file: another process may replace the file under it. Only the
  ``(st_dev, st_ino)`` recorded when we bound it says the file at the path is still ours.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat

__all__ = [
    "SUN_PATH_MAX",
    "clear_stale_socket",
    "file_identity",
    "is_listening",
    "path_bytes",
    "unlink_if_ours",
]

SUN_PATH_MAX = 107
"""Bytes of an AF_UNIX path (or abstract name with its ``@``) the kernel can take."""


def path_bytes(path: str) -> int:
    """The length of ``path`` as the kernel counts it (bytes of the file system encoding)."""
    return len(os.fsencode(path))


def is_listening(path: str) -> bool:
    """Whether a process listens on the AF_UNIX stream socket file at ``path``.

    A non-blocking ``connect()``: refused (or the file gone) means nobody listens; accepted or
    ``EAGAIN`` (a listener whose backlog is full) means somebody does. Any other failure
    (``EACCES``...) is raised as the :class:`OSError` it is.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as probe:
        probe.setblocking(False)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except BlockingIOError:
            pass  # EAGAIN: the backlog is full
        return True


def clear_stale_socket(path: str) -> None:
    """Remove a socket file nobody listens on; refuse anything else at ``path``.

    Nothing at ``path`` is fine. Raises :class:`OSError` with ``EEXIST`` for a file that is not
    a socket, ``EADDRINUSE`` for a live listener, and the cause's errno when the path cannot be
    checked (``ENOTDIR``, ``EACCES``...).
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise OSError(errno.EEXIST, "exists and is not a socket", path)
    if is_listening(path):
        raise OSError(errno.EADDRINUSE, "a process listens on it", path)
    # Gone meanwhile (its owner removed it) is what we wanted.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # noqa: PTH108 (pathlib costs the CLI client 10 ms to import)


def file_identity(path: str) -> tuple[int, int]:
    """``(st_dev, st_ino)`` of the file at ``path`` (not following a symlink)."""
    info = os.lstat(path)
    return info.st_dev, info.st_ino


def unlink_if_ours(path: str, identity: tuple[int, int] | None) -> bool:
    """Remove ``path`` if it still names the file of ``identity``; whether it was removed.

    A successor (a new warden, an upgraded program) may have bound the same path since: its
    file must stay. Errors (the path gone, a directory we may not write) count as not removed.
    """
    if identity is None:
        return False
    try:
        if file_identity(path) != identity:
            return False
        os.unlink(path)  # noqa: PTH108
    except OSError:
        return False
    return True
