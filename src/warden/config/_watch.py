"""Watching files for changes: debounced, digest-checked, through deletions and symlink swaps.

:func:`watch_for_changes` is the one primitive: the config store's watcher and the
supervisor's ``--reload-on-change`` both use it. It imports neither pydantic nor YAML, and
needs nothing beyond the standard library.

How a change is seen, and why so:

* **The directory, not the file.** inotify watches an inode: a file replaced by a rename
  (editors, ``mv``) or deleted and re-created is a new inode, and a watch on the old one sees
  nothing more. A watch on the parent directory sees every name in it come and go.
* **The symlink's target directory too.** inotify does not follow a symlink to its target,
  so a config that is a symlink to a file elsewhere is watched in both directories. In a
  Kubernetes ConfigMap volume, ``/etc/app/config.toml`` is a symlink to ``..data/config.toml``
  and ``..data`` a symlink to a timestamped directory; the kubelet writes a new timestamped
  directory, points ``..data_tmp`` at it and renames it over ``..data``, so the file's name
  never changes. That rename happens in the parent directory, which is watched; after each
  batch the set of directories is computed again and the watches moved if it changed (a
  directory deleted, moved away or unmounted loses its watch and is watched again by path).
* **The digest decides.** After the debounce every file is hashed (sha256); only the files
  whose content changed are reported, so a ``touch``, an editor's swap file, or a rename that
  leaves the same bytes call nothing. A file that cannot be read counts as a content of its own
  ("missing", "unreadable"), so a deletion is reported once, and its return once.
* **Debounce is a quiet window.** A batch is extended until ``debounce`` seconds pass with no
  event at all (up to :data:`MAX_GROUP` seconds under a steady stream), then hashed once, so
  a burst of writes to one file is one report.

The watching itself is an inotify descriptor (:mod:`._inotify`) registered with the calling
event loop (``add_reader``): the loop sleeps in ``epoll`` until the kernel has an event, so an
armed watch costs no wake-up while nothing changes, and no thread. Timers exist only while a
batch is open (the quiet window). Hashing runs on the loop: a config file is small (a
ConfigMap is at most 1 MiB; files are hashed up to 64 MiB).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import os
import stat
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Protocol

from warden._exceptions import ConfigurationError

from ._inotify import (
    DIRECTORY_EVENTS,
    IN_EXCL_UNLINK,
    IN_MOVE_SELF,
    IN_ONLYDIR,
    WATCH_ENDED,
    Inotify,
)

DEFAULT_DEBOUNCE = 0.05
"""Seconds of quiet after the last event before the files are hashed (see docs/config.md)."""

MAX_GROUP = 2.0
"""Seconds after which a batch is processed even if events keep coming."""

_MAX_HASHED = 64 * 1024 * 1024

OnChange = Callable[[tuple[Path, ...]], Awaitable[object] | object]


class _Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


def _sha256_class() -> Callable[[], _Hash]:
    """CPython's own sha256 (``_sha256``; ``_sha2`` from 3.12), else hashlib's.

    ``hashlib`` loads OpenSSL's libcrypto: 3.7 MiB resident in ``warden run`` (measured,
    docs/benchmarks.md) for hashing a config file now and then.
    """
    for name in ("_sha256", "_sha2"):
        with contextlib.suppress(ImportError):
            made: Callable[[], _Hash] = importlib.import_module(name).sha256
            return made
    import hashlib

    return hashlib.sha256


async def watch_for_changes(
    paths: Iterable[str | os.PathLike[str]],
    on_change: OnChange,
    *,
    debounce: float = DEFAULT_DEBOUNCE,
    ready: asyncio.Event | None = None,
    since: Mapping[Path, str] | None = None,
) -> None:
    """Call ``on_change(paths)`` each time the content of some of ``paths`` changes.

    Runs until cancelled. Each call gets the files whose content (sha256) differs from what it
    was at the previous call, or when the watch was armed; a file that vanished or cannot be
    read is reported too (check ``path.exists()`` if that matters). Calls never overlap: changes
    seen while ``on_change`` runs are reported by the next call. ``on_change`` may be sync or
    async; it runs on the calling loop.

    Example::

        async def hup(paths: tuple[Path, ...]) -> None:
            os.kill(child_pid, signal.SIGHUP)

        await watch_for_changes(["/etc/nginx/nginx.conf"], hup)

    Args:
        paths: the files to watch (they need not exist yet; their directories are watched).
        on_change: called with the tuple of changed paths.
        debounce: seconds of quiet after the last filesystem event before hashing.
        ready: set once the watches are armed: a change after that is seen.
        since: the content the caller already has, by path, as the sha256 (hex) of the
            file's bytes: a file that differs from it when the watch is armed is reported
            (after one quiet window, in case it is being written), so a change made before
            the watch existed is not missed.

    Raises:
        ConfigurationError: no paths, or ``debounce`` not a positive number.
        OSError: the kernel refused a watch (``ENOSPC``: ``fs.inotify.max_user_watches``;
            ``EMFILE``: ``fs.inotify.max_user_instances``; ``EACCES`` on a directory).
    """
    files = tuple(dict.fromkeys(Path(p).absolute() for p in paths))
    known = {Path(p).absolute(): digest for p, digest in (since or {}).items()}
    if not files:
        raise ConfigurationError("watch_for_changes() got no paths; give at least one file")
    if not debounce > 0:  # also refuses NaN
        raise ConfigurationError(f"debounce={debounce!r} is not a positive number of seconds")
    with _Watches(asyncio.get_running_loop(), debounce) as watches:
        while watches.arm(watched_dirs(files)):
            pass  # a directory vanished while arming: its nearest existing parent instead
        now = {f: file_digest(f) for f in files}
        digests = {f: known.get(f, now[f]) for f in files}
        if ready is not None:
            ready.set()
        if digests == now:  # else changed before the watch existed: report it, debounced
            await watches.event()  # no timer: the loop sleeps until the kernel has an event
        await watches.quiet()
        while True:
            # Re-arm before hashing: a directory just created (or a symlink repointed) is
            # watched from now on, and what is written into it during one more quiet window
            # is part of this change, not a torn state of it.
            while watches.arm(watched_dirs(files)):
                await watches.quiet()
            changed = _changed(files, digests)
            if changed:
                result = on_change(changed)
                if inspect.isawaitable(result):
                    await result
            await watches.event()
            await watches.quiet()


class _Watches:
    """Directories watched through one inotify descriptor on ``loop``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, debounce: float) -> None:
        self._loop = loop
        self._debounce = debounce
        self._inotify = Inotify()
        self._dirs: dict[Path, int] = {}  # path -> watch descriptor
        self._seen = asyncio.Event()

    def __enter__(self) -> _Watches:
        try:
            self._loop.add_reader(self._inotify.fd, self._read)
        except BaseException:
            self._inotify.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        with contextlib.suppress(Exception):  # a closed loop has let go of it already
            self._loop.remove_reader(self._inotify.fd)
        self._inotify.close()  # the kernel drops every watch with it

    def _read(self) -> None:
        for wd, mask in self._inotify.read():
            if mask & WATCH_ENDED:  # deleted, moved away, unmounted: watch its path again
                self._dirs = {d: w for d, w in self._dirs.items() if w != wd}
                if mask & IN_MOVE_SELF:  # the kernel's watch follows the inode elsewhere
                    self._inotify.rm_watch(wd)
        self._seen.set()

    def arm(self, wanted: frozenset[Path]) -> bool:
        """Watch exactly ``wanted``; True when a directory was added, or vanished first."""
        for gone in self._dirs.keys() - wanted:
            wd = self._dirs.pop(gone)
            if wd not in self._dirs.values():  # two paths of one inode share a descriptor
                self._inotify.rm_watch(wd)
        added = False
        for directory in sorted(wanted - self._dirs.keys()):
            added = True
            # Gone between looking and arming: the caller looks again.
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                self._dirs[directory] = self._inotify.add_watch(
                    str(directory), DIRECTORY_EVENTS | IN_ONLYDIR | IN_EXCL_UNLINK
                )
        return added

    async def event(self) -> None:
        """Until some event arrives (at once if one came since the last quiet window)."""
        await self._seen.wait()

    async def quiet(self) -> None:
        """Until ``debounce`` seconds pass without an event (at most :data:`MAX_GROUP`)."""
        deadline = self._loop.time() + MAX_GROUP
        while True:
            self._seen.clear()
            left = deadline - self._loop.time()
            if left <= 0:
                return
            try:
                async with asyncio.timeout(min(self._debounce, left)):
                    await self._seen.wait()
            except TimeoutError:
                if not self._seen.is_set():  # an event read in the timer's own loop turn
                    return


def _changed(files: tuple[Path, ...], digests: dict[Path, str]) -> tuple[Path, ...]:
    """The files whose digest moved since ``digests`` (which is updated)."""
    changed = []
    for f in files:
        digest = file_digest(f)
        if digest != digests[f]:
            digests[f] = digest
            changed.append(f)
    return tuple(changed)


def watched_dirs(files: Iterable[Path]) -> frozenset[Path]:
    """The directories to watch for ``files``: each one's, and its symlink target's."""
    dirs = set()
    for f in files:
        dirs.add(_existing(f.parent))
        target = Path(os.path.realpath(f))
        if target != f:
            dirs.add(_existing(target.parent))
    return frozenset(dirs)


def _existing(directory: Path) -> Path:
    while not directory.is_dir() and directory != directory.parent:
        directory = directory.parent
    return directory


def file_digest(path: Path) -> str:
    """sha256 of the content, or a word for why there is none (``missing``, ``errno 13``).

    Only a regular file is opened: the path may be a symlink another user can re-point, and
    opening a device can act (a watchdog device arms, a terminal would become the
    controlling terminal of a process without one: ``O_NOCTTY`` besides, for a swap between
    the check and the open).
    """
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            return f"mode {stat.S_IFMT(info.st_mode):o}"
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"errno {exc.errno}"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return f"mode {stat.S_IFMT(info.st_mode):o}"
        digest = _sha256_class()()
        left = _MAX_HASHED
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            digest.update(chunk)
            left -= len(chunk)
        return digest.hexdigest()
    except OSError as exc:
        return f"errno {exc.errno}"
    finally:
        os.close(fd)
