"""Watching files for changes: debounced, digest-checked, through deletions and symlink swaps.

:func:`watch_for_changes` is the one primitive: the config store's watcher and the
supervisor's ``--reload-on-change`` both use it. It imports neither pydantic nor YAML, and
watchfiles only when called.

How a change is seen, and why so:

* **The directory, not the file.** inotify watches an inode: a file replaced by a rename
  (editors, ``mv``) or deleted and re-created is a new inode, and a watch on the old one sees
  nothing more. A watch on the parent directory sees every name in it come and go.
* **The symlink's target directory too.** inotify does not follow a symlink to its target
  (neither does watchfiles/notify: notify-rs #381), so a config that is a symlink to a file
  elsewhere is watched in both directories. In a Kubernetes ConfigMap volume,
  ``/etc/app/config.toml`` is a symlink to ``..data/config.toml`` and ``..data`` a symlink to a
  timestamped directory; the kubelet writes a new timestamped directory, points
  ``..data_tmp`` at it and renames it over ``..data``, so the file's name never changes.
  That rename happens in the parent directory, which is watched; after each batch the set
  of directories is computed again and the watch re-armed if it moved.
* **The digest decides.** After the debounce every file is hashed (sha256); only the files
  whose content changed are reported, so a ``touch``, an editor's swap file, or a rename that
  leaves the same bytes call nothing. A file that cannot be read counts as a content of its own
  ("missing", "unreadable"), so a deletion is reported once, and its return once.
* **Debounce is a quiet window.** watchfiles groups events by a *set* of (change, path):
  repeated writes to one file do not grow it, so its own grouping ends while a burst to one
  file continues. Here a batch is extended until ``debounce`` seconds pass with no event at all
  (up to :data:`MAX_GROUP` seconds under a steady stream), then hashed once.

The watching itself is watchfiles' ``RustNotify`` (the Rust notify crate over inotify), the
backend ``watchfiles.watch`` is built on, called from a daemon thread of our own: its
``watch()`` blocks, and the construction of a ``RustNotify`` arms the inotify watches, which
lets ``ready`` be set at exactly that moment. It polls its queue of events every ``step``
(here ``debounce``), so an armed watcher wakes ``1/debounce`` times a second while idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import os
import stat
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Protocol

from warden._exceptions import ConfigurationError

from ._errors import MissingExtraError

DEFAULT_DEBOUNCE = 0.05
"""Seconds of quiet after the last event before the files are hashed (see docs/config.md)."""

MAX_GROUP = 2.0
"""Seconds after which a batch is processed even if events keep coming."""

_MAX_HASHED = 64 * 1024 * 1024

OnChange = Callable[[tuple[Path, ...]], Awaitable[object] | object]


class _Notify(Protocol):
    def watch(
        self, debounce_ms: int, step_ms: int, timeout_ms: int, stop_event: threading.Event
    ) -> set[tuple[int, str]] | str: ...
    def close(self) -> None: ...


def require_watchfiles(what: str) -> Callable[..., _Notify]:
    """watchfiles' RustNotify class, or a one-line error naming the extra to install."""
    try:
        from watchfiles._rust_notify import RustNotify
    except ImportError:
        raise MissingExtraError(what, "watch", "watchfiles") from None
    return RustNotify


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
    seen while ``on_change`` runs are merged into the next call. ``on_change`` may be sync or
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
        MissingExtraError: watchfiles is not installed (``pip install 'warden[watch]'``).
        ConfigurationError: no paths, or ``debounce`` not a positive number.
    """
    notify_class = require_watchfiles("watching files for changes")
    files = tuple(dict.fromkeys(Path(p).absolute() for p in paths))
    known = {Path(p).absolute(): digest for p, digest in (since or {}).items()}
    if not files:
        raise ConfigurationError("watch_for_changes() got no paths; give at least one file")
    if not debounce > 0:  # also refuses NaN
        raise ConfigurationError(f"debounce={debounce!r} is not a positive number of seconds")
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[Path, ...] | BaseException | None] = asyncio.Queue()
    stop = threading.Event()

    def post(item: tuple[Path, ...] | BaseException | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def armed() -> None:
        if ready is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(ready.set)

    def run() -> None:
        try:
            _watch_thread(notify_class, files, known, debounce, stop, post, armed)
        except BaseException as exc:
            post(exc)
        else:
            post(None)

    thread = threading.Thread(target=run, name="warden:watch", daemon=True)
    thread.start()
    finished = False
    try:
        while True:
            item = await queue.get()
            changed: set[Path] = set()
            while True:  # merge what queued up while on_change ran
                if item is None or isinstance(item, BaseException):
                    finished = True
                    if item is None:
                        return
                    raise item
                changed.update(item)
                if queue.empty():
                    break
                item = queue.get_nowait()
            result = on_change(tuple(sorted(changed)))
            if inspect.isawaitable(result):
                await result
    finally:
        stop.set()
        # The thread sees the stop within one step (debounce) and says so last: waiting for
        # that keeps the leak report clean and the inotify descriptors closed.
        while not finished:
            item = await queue.get()
            finished = item is None or isinstance(item, BaseException)
        thread.join()  # it has said its last word and is returning: microseconds


def _watch_thread(  # noqa: PLR0917 - private, called once
    notify_class: Callable[..., _Notify],
    files: tuple[Path, ...],
    known: dict[Path, str],
    debounce: float,
    stop: threading.Event,
    post: Callable[[tuple[Path, ...]], None],
    armed: Callable[[], None],
) -> None:
    step = max(1, round(debounce * 1000))
    group = max(step, round(MAX_GROUP * 1000))
    dirs = watched_dirs(files)
    notify = _arm(notify_class, dirs)
    try:
        now_digests = {f: file_digest(f) for f in files}
        digests = {f: known.get(f, now_digests[f]) for f in files}
        armed()
        if digests != now_digests:  # changed before the watch existed: report it, debounced
            if not _wait_for_quiet(notify, step, group, stop):
                return
            _report(files, digests, post)
        while _wait_for_change(notify, step, stop) and _wait_for_quiet(notify, step, group, stop):
            # Re-arm before hashing: a directory just created (or a symlink repointed) is
            # watched from now on, and what is written into it during one more quiet window
            # is part of this change, not a torn state of it.
            while (now := watched_dirs(files)) != dirs:
                notify.close()
                dirs, notify = now, _arm(notify_class, now)
                if not _wait_for_quiet(notify, step, group, stop):
                    return
            _report(files, digests, post)
    finally:
        notify.close()


def _arm(notify_class: Callable[..., _Notify], dirs: frozenset[Path]) -> _Notify:
    """A RustNotify over ``dirs``: the inotify watches exist when it returns."""
    while True:
        try:
            return notify_class(sorted(map(str, dirs)), False, False, 300, False, True)
        except FileNotFoundError:  # a directory vanished between looking and arming
            dirs = _existing_dirs(dirs)


def _existing_dirs(dirs: frozenset[Path]) -> frozenset[Path]:
    return frozenset(_existing(d) for d in dirs)


def _wait_for_change(notify: _Notify, step: int, stop: threading.Event) -> bool:
    """Block until some event; False on stop."""
    # Idle, RustNotify looks at its queue once a step: the fewer wake-ups, the later a first
    # event is noticed (half a step on average).
    while True:
        got = notify.watch(1, step, 0, stop)  # return at the first step that saw an event
        if got == "stop":
            return False
        if isinstance(got, set):
            return True


def _wait_for_quiet(notify: _Notify, step: int, group: int, stop: threading.Event) -> bool:
    """Block until ``step`` ms pass without an event (at most ``group`` ms); False on stop."""
    # Once something happened, a finer step sees the end of a burst sooner; the quiet
    # window itself stays ``step``.
    fine = max(1, step // 5)
    deadline = time.monotonic() + group / 1000
    while time.monotonic() < deadline:
        got = notify.watch(group, fine, step, stop)
        if got == "stop":
            return False
        if got == "timeout":
            return True
    return True


def _report(
    files: tuple[Path, ...], digests: dict[Path, str], post: Callable[[tuple[Path, ...]], None]
) -> None:
    changed = []
    for f in files:
        digest = file_digest(f)
        if digest != digests[f]:
            digests[f] = digest
            changed.append(f)
    if changed:
        post(tuple(changed))


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
        digest = hashlib.sha256()
        left = _MAX_HASHED
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            digest.update(chunk)
            left -= len(chunk)
        return digest.hexdigest()
    except OSError as exc:
        return f"errno {exc.errno}"
    finally:
        os.close(fd)
