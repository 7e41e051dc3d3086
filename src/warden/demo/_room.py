"""Where the demo writes, and whether it can, asked before anything starts.

Its files (releases, the config volume, the writes, every log) go in a new directory under
``$TMPDIR`` (or in ``--keep DIR``); its sockets in a second one, short enough for their paths
(``$TMPDIR`` if it is, else /tmp). A directory without room, read-only or not there would
otherwise show as promises broken for a reason of the demo's own (a log that cannot be
written, writes lost because the service could not append them): here it is one line,
:class:`NoRoom`, naming the directory and where to point the demo instead.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .._exceptions import WardenError

#: Bytes free the demo needs where its files go: a run writes about 1 MiB (with --keep,
#: mostly requests.csv; measured), and a faster machine serves more requests.
ROOM = 8 * 2**20

#: Free inodes it needs there (about 20 files and directories).
INODES = 64

#: The longest directory the sockets' paths fit under: AF_UNIX takes 107 bytes, and warden's
#: notify socket adds about 60 (warden-demo-run-XXXXXXXX/warden-XXXXXXXXXXXX/notify).
_SHORT = 40

#: Where a person may point $TMPDIR instead, in this order, if there is room there.
_ELSEWHERE = ("/var/tmp", "/tmp")


class NoRoom(WardenError):
    """The demo cannot write where it would: the one line that says so."""


def temp_root() -> tuple[Path, str]:
    """The directory the demo's files go under, and how to name it: the one ``$TMPDIR``
    names (taken as given, even if unusable: the person chose it), else Python's default."""
    given = os.environ.get("TMPDIR")
    if given:
        return Path(given), f"$TMPDIR ({given})"
    return Path(tempfile.gettempdir()), f"the temporary directory {tempfile.gettempdir()}"


def make_files_dir(keep: Path | None) -> Path:
    """The directory for the demo's files, checked for room: ``keep`` (not made here: the
    workspace makes it), else a new one under :func:`temp_root`."""
    if keep is not None:
        why = _why_not(_existing(keep))
        if why is not None:
            raise NoRoom(f"--keep {keep}: {why}; give a directory with {_size(ROOM)} free")
        return keep
    root, named = temp_root()
    why = _why_not(root)
    if why is None:
        try:
            return Path(tempfile.mkdtemp(prefix="warden-demo-", dir=root))
        except OSError as exc:
            why = exc.strerror or str(exc)
    raise NoRoom(f"cannot write in {named}: {why}; {_point_elsewhere(root)}")


def make_runtime_dir() -> Path:
    """A new directory for the sockets, with a path short enough for them."""
    root, named = temp_root()
    if len(str(root)) > _SHORT or not os.access(root, os.W_OK):
        root, named = Path("/tmp"), "/tmp"
    try:
        return Path(tempfile.mkdtemp(prefix="warden-demo-run-", dir=root))
    except OSError as exc:
        raise NoRoom(
            f"cannot make a directory for its sockets in {named}: {exc.strerror or exc}; "
            f"{_point_elsewhere(root)}"
        ) from None


def _why_not(directory: Path) -> str | None:
    """None when the demo can write its files in ``directory``; else why not."""
    try:
        found = os.statvfs(directory)
    except OSError as exc:
        return exc.strerror or str(exc)
    if not os.access(directory, os.W_OK | os.X_OK):
        return "not writable"
    free = found.f_bavail * found.f_frsize
    if free < ROOM:
        return f"{_size(free)} free, the demo needs {_size(ROOM)}"
    if found.f_files and found.f_favail < INODES:
        return f"{found.f_favail} inodes free, the demo needs {INODES}"
    return None


def _existing(path: Path) -> Path:
    """``path`` if it is a directory, else the nearest one above it (where it would be made;
    the workspace says what is wrong with a file there)."""
    for candidate in (path, *path.absolute().parents):
        if candidate.is_dir():
            return candidate
    return Path("/")


def _point_elsewhere(failed: Path) -> str:
    advice = f"point TMPDIR at a directory with {_size(ROOM)} free"
    for candidate in map(Path, _ELSEWHERE):
        if candidate != failed and candidate.is_dir() and _why_not(candidate) is None:
            return f"{advice}, e.g. TMPDIR={candidate} warden demo"
    return advice


def _size(size: int) -> str:
    if size < 2**20:
        return f"{size / 2**10:.0f} KiB"
    return f"{size / 2**20:.0f} MiB" if size % 2**20 == 0 else f"{size / 2**20:.1f} MiB"
