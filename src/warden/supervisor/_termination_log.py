"""``--termination-log``: why warden exits, where ``kubectl describe pod`` shows it.

The kubelet reads a container's termination message from the file at the pod's
``terminationMessagePath`` (``/dev/termination-log`` by default; it mounts a file of its own
there) once the container has ended, and shows it as the container's ``Message``: "oom-killed:
working set 511 of 512 MiB; warned at 80 % 41 s before" instead of a bare ``Error 137``.
Kernel and kubelet facts this relies on:

* The kubelet reads at most 4096 bytes (``MaxContainerTerminationMessageLength``): a longer
  message is cut here, at a character boundary, so what it shows is valid UTF-8.
* Without ``--termination-log``, the file is written only where it already exists and can be
  written (a container under the kubelet): on any other machine warden creates nothing.
* The path may be in a directory others can write (``/tmp``): the file is opened without
  following a symlink at the last component (``O_NOFOLLOW``: a planted one fails), in a
  directory reached only through ones that nobody but us and root may change, and written
  only if it is a regular file of ours (or root's) with no other name (a planted hard link
  to another file is refused); it is truncated only after those checks.
"""

from __future__ import annotations

import contextlib
import os
import stat

from .._exceptions import WardenError
from .._unix import untrusted_path

DEFAULT_PATH = "/dev/termination-log"
"""Where the kubelet puts the termination message file unless the pod says otherwise."""

LIMIT = 4096
"""Bytes of a termination message the kubelet keeps."""

_OPEN = os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class TerminationLogError(WardenError, OSError):
    """The message could not be written; ``str()`` says why, in one line."""


def termination_message(text: str, limit: int = LIMIT) -> bytes:
    """``text`` as UTF-8, cut to ``limit`` bytes at a character boundary."""
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return data
    return data[:limit].decode("utf-8", errors="ignore").encode("utf-8")


def write_termination_message(text: str, path: str | None) -> str | None:
    """Write ``text`` (cut to :data:`LIMIT` bytes) to ``path``; returns the path written.

    ``path`` None: :data:`DEFAULT_PATH` if it exists and can be written, else nothing
    (returns None). A path given is created if absent (mode 0644).

    Raises:
        TerminationLogError: a path given cannot be written safely; the message says why.
    """
    given = path is not None
    target = path if path is not None else DEFAULT_PATH
    if not given and not os.access(target, os.W_OK):
        return None
    problem = untrusted_path(os.path.dirname(os.path.abspath(target)))  # noqa: PTH100, PTH120
    if problem is not None:
        if not given:
            return None
        raise TerminationLogError(f"not written: {problem}, so another user could redirect it")
    try:
        fd = os.open(target, _OPEN | (os.O_CREAT if given else 0), 0o644)
    except OSError as exc:
        if not given:
            return None
        raise TerminationLogError(f"cannot open it: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TerminationLogError("not written: it is not a regular file")
        if info.st_uid not in (os.geteuid(), 0):
            raise TerminationLogError(f"not written: it belongs to uid {info.st_uid}")
        if info.st_nlink > 1:
            raise TerminationLogError("not written: it has other names (a hard link)")
        os.ftruncate(fd, 0)
        data = termination_message(text)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except TerminationLogError:
        raise
    except OSError as exc:
        raise TerminationLogError(f"cannot write it: {exc.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    return target
