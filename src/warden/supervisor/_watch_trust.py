"""Whether another user could change a ``--reload-on-change`` file, and so set off reloads.

A change of the file sends the program SIGHUP or starts an upgrade: whoever can change it
can do that at will. So the rule of the pid file and the control socket holds here too
(:func:`warden._unix.untrusted_path`): from ``/`` to the file, following its symlinks (a
ConfigMap's ``key -> ..data/key`` and ``..data -> ..2024_...``), every directory is ours or
root's and writable by nobody else unless sticky, every symlink and the file itself are
ours or root's; and the file is writable by nobody else. A file that does not exist yet is
fine, unless its directory is one others may write (sticky, like ``/tmp``): they could create
it first. A directory on a read-only mount is writable by nobody, whatever its mode (a
Kubernetes ConfigMap volume is a ``0777`` directory, mounted read-only in the container).

Checked when warden starts (a one-line usage error) and again at each change, before it
counts: a file swapped for one another user owns (a sticky directory lets them create one
where ours was removed) does not set anything off.
"""

from __future__ import annotations

import os
import stat

from .._unix import read_only_mount, untrusted_path

__all__ = ["watch_problem"]

_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


def watch_problem(file: str, *, uid: int | None = None) -> str | None:
    """Why another user could change ``file`` (absolute), or None when only ``uid``
    (default: our effective uid) and root can."""
    problem = untrusted_path(file, uid=uid)
    if problem is not None:
        return problem
    real = os.path.realpath(file)  # every link on the way is trusted now
    try:
        info = os.stat(real)  # noqa: PTH116
    except FileNotFoundError:
        return _missing_problem(file, real)
    except OSError as exc:
        return f"{real} cannot be checked ({exc.strerror})"
    if info.st_mode & _OTHERS_WRITE and not read_only_mount(real):
        return f"{real} is writable by other users (mode {stat.S_IMODE(info.st_mode):04o})"
    return None


def _missing_problem(file: str, real: str) -> str | None:
    directory = os.path.dirname(real)  # noqa: PTH120
    while True:
        try:
            info = os.stat(directory)  # noqa: PTH116
            break
        except FileNotFoundError:
            directory = os.path.dirname(directory)  # noqa: PTH120
        except OSError as exc:
            return f"{directory} cannot be checked ({exc.strerror})"
    if info.st_mode & _OTHERS_WRITE and not read_only_mount(directory):
        return (
            f"{file} does not exist yet and directory {directory} is writable by other "
            "users (sticky: they could create it)"
        )
    return None
