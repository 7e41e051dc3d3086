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
* Whoever may write a directory on the way to a path (or owns a symlink on it) decides what
  the path names: they can rename, remove or re-point what is there. A sticky directory
  (``S_ISVTX``, like ``/tmp``) lets others add entries but not rename or remove ours. So a
  path is trusted when every directory from ``/`` down, and every symlink followed, is owned
  by us or root, and no such directory is writable by others unless it is sticky.
* ``SO_PEERCRED`` on a connected AF_UNIX socket gives the pid, uid and gid the kernel recorded
  for the other end (at its ``listen()`` or ``connect()``); the peer cannot forge it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import struct

__all__ = [
    "SUN_PATH_MAX",
    "clear_stale_socket",
    "file_identity",
    "is_listening",
    "path_bytes",
    "peer_credentials",
    "read_only_mount",
    "unlink_if_ours",
    "untrusted_path",
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


_UCRED = struct.Struct("iII")  # struct ucred: pid_t pid; uid_t uid; gid_t gid
_MAX_SYMLINKS = 40  # as the kernel's path walk (ELOOP)


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """``(pid, uid, gid)`` of the process at the other end of a connected AF_UNIX socket."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    pid, uid, gid = _UCRED.unpack(raw)
    return pid, uid, gid


def untrusted_path(path: str, *, uid: int | None = None) -> str | None:  # noqa: PLR0911
    """Why another user could change what ``path`` names, or None when nobody but ``uid``
    (default: our effective uid) and root can.

    Walks ``path`` from ``/``, following symlinks as the kernel would: every directory on the
    way must be owned by ``uid`` or root and not writable by group or others unless sticky
    (or on a read-only mount); every symlink must be owned by ``uid`` or root. The last
    component is checked like the others when it exists (a socket or a file: its owner), and
    is fine when it does not.
    """
    me = os.geteuid() if uid is None else uid
    trusted = (me, 0)
    # os.path, not pathlib: pathlib costs the CLI client 10 ms to import.
    todo = [part for part in os.path.abspath(path).split("/") if part]  # noqa: PTH100
    current = "/"
    problem = _directory_problem(current, trusted)
    if problem:
        return problem
    links = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            current = os.path.dirname(current) or "/"  # noqa: PTH120
            continue
        if part == ".":
            continue
        candidate = os.path.join(current, part)  # noqa: PTH118
        try:
            info = os.lstat(candidate)
        except FileNotFoundError:
            return None  # nothing there (yet): whoever creates it is checked by its user
        except OSError as exc:
            return f"{candidate} cannot be checked ({exc.strerror})"
        if info.st_uid not in trusted:
            what = "symlink" if stat.S_ISLNK(info.st_mode) else "it"
            return f"{candidate} is owned by uid {info.st_uid} ({what} could be replaced)"
        if stat.S_ISLNK(info.st_mode):
            links += 1
            if links > _MAX_SYMLINKS:
                return f"{path} has too many symlinks"
            target = os.readlink(candidate)
            todo = [p for p in target.split("/") if p] + todo
            if target.startswith("/"):
                current = "/"
            continue
        if stat.S_ISDIR(info.st_mode):
            problem = _directory_problem(candidate, trusted, info)
            if problem:
                return problem
        elif todo:
            return None  # not a directory: the kernel's lookup fails there (ENOTDIR)
        current = candidate
    return None


def _directory_problem(
    directory: str, trusted: tuple[int, int], info: os.stat_result | None = None
) -> str | None:
    try:
        info = os.stat(directory) if info is None else info  # noqa: PTH116
    except OSError as exc:
        return f"{directory} cannot be checked ({exc.strerror})"
    if info.st_uid not in trusted:
        return f"directory {directory} is owned by uid {info.st_uid}"
    if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX and not read_only_mount(directory):
        return f"directory {directory} is writable by other users and not sticky"
    return None


def read_only_mount(directory: str) -> bool:
    """Whether ``directory`` is on a read-only mount: there nobody writes, whatever the mode
    (a Kubernetes ConfigMap volume is a 0777 directory, mounted read-only in the container)."""
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False
