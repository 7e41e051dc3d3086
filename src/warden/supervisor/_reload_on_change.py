"""``--reload-on-change PATH``: a config file's new content does what a SIGHUP to warden does.

For a program that is not Python (nginx, a Go binary) and reloads on SIGHUP: the same watch
as :class:`warden.ConfigStore`'s (:func:`warden.config.watch_for_changes`: the directory and
the symlink's target directory are watched, so an editor's rename, an in-place write and a
Kubernetes ConfigMap ``..data`` swap are all seen; debounced by a quiet window; only a file
whose sha256 changed counts) calls the supervisor's own SIGHUP handler, so the configured
``--on-hup`` action runs (``forward``: SIGHUP to the program; ``upgrade``: a zero-downtime
upgrade), by one code path.

* **A file may be missing**: a ConfigMap key can appear later (its appearance is a change);
  its directory must exist, or a typo in it would watch nothing, silently, for ever.
* **Only when asked**: without the option nothing here runs and ``warden.config`` is not
  imported (it is imported in :meth:`ReloadOnChange.start`). Armed, the watch is an inotify
  descriptor on warden's event loop: no thread, and no wake-up until a watched directory
  changes (docs/benchmarks.md, "--reload-on-change").
* **Armed after the program**: the component starts once the program passed its readiness
  gate (with a gate, no SIGHUP reaches a program that has not installed its handler yet:
  SIGHUP's default action ends it) and stops before the stop ladder. A change made while
  the program started is not missed: the digests are taken when warden starts, and the
  first report compares with them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from .._exceptions import ConfigurationError
from ..lifecycle import Fact
from ._declare import paths
from ._events import ConfigChanged, ConfigChangeRefused, ConfigWatchFailed, ConfigWatching
from ._watch_trust import watch_problem


def watched_files(value: object, what: str) -> tuple[str, ...]:
    """The ``--reload-on-change`` converter: absolute file paths, each in a directory that
    exists (the file itself may appear later), not a directory."""
    files: dict[str, None] = {}
    for given in paths(value, what):
        file = Path(given).absolute()
        if file.is_dir():
            raise ConfigurationError(
                f"{what} {given!r} is a directory; give the file to watch in it, "
                f"e.g. {what} {Path(given) / 'app.conf'}"
            )
        if not file.parent.is_dir():
            raise ConfigurationError(
                f"{what} {given!r}: its directory {file.parent} does not exist; create it or "
                "fix the path (the file itself may appear later, its directory must exist)"
            )
        _refuse_untrusted(file, given, what)
        files[str(file)] = None
    return tuple(files)


def _refuse_untrusted(file: Path, given: str, what: str) -> None:
    """Refuse a file another user could change (``_watch_trust``): they could set off
    reloads at will."""
    problem = watch_problem(str(file))
    if problem is not None:
        raise ConfigurationError(
            f"{what} {given!r}: {problem}, so another user could change it and set off "
            "reloads at will; keep it where only this user (or root) can write, or in a "
            "sticky directory as a file of this user's"
        )


class ReloadOnChange:
    """Watches ``files`` from :meth:`start` to :meth:`stop`; each change calls ``reload``.

    Args:
        files: absolute paths (as :func:`watched_files` gives them).
        reload: what a SIGHUP to warden does (the supervisor's own handler).
        action: the ``--on-hup`` action ``reload`` takes, for the facts.
        publish: the timeline.
    """

    def __init__(
        self,
        files: tuple[str, ...],
        *,
        reload: Callable[[], None],
        action: Literal["upgrade", "forward"],
        publish: Callable[[Fact], object],
    ) -> None:
        from ..config import _file_digest as file_digest

        self.files = files
        self._reload = reload
        self._action = action
        self._publish = publish
        # Before the program starts: a change from now until the watch is armed is reported.
        self._since = {Path(f): file_digest(Path(f)) for f in files}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Arm the watch; returns once a change is seen. Raises :class:`ConfigurationError`
        (one line) when the files cannot be watched."""
        from ..config import watch_for_changes

        ready = asyncio.Event()
        task = asyncio.create_task(
            watch_for_changes(self.files, self._changed, ready=ready, since=self._since),
            name="warden:reload-on-change",
        )
        armed = asyncio.create_task(ready.wait(), name="warden:reload-on-change-armed")
        try:
            await asyncio.wait({task, armed}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled: warden is stopping while the watch arms
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            raise
        finally:
            armed.cancel()
        if task.done():
            error = task.exception() if not task.cancelled() else None
            raise ConfigurationError(
                f"--reload-on-change {' '.join(self.files)}: cannot watch: {error}"
            )
        task.add_done_callback(self._ended)
        self._task = task
        self._publish(ConfigWatching(paths=self.files, action=self._action))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.remove_done_callback(self._ended)
        task.cancel()
        # An error it ended with was reported when it ended.
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task  # the watch thread is joined: no thread or inotify descriptor left

    def _changed(self, changed: tuple[Path, ...]) -> None:
        trusted = []
        for path in changed:  # checked again now: a file may be swapped for another's
            problem = watch_problem(str(path))
            if problem is None:
                trusted.append(str(path))
            else:
                self._publish(ConfigChangeRefused(path=str(path), reason=problem))
        if trusted:
            self._publish(ConfigChanged(paths=tuple(trusted), action=self._action))
            self._reload()

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        self._publish(
            ConfigWatchFailed(
                paths=self.files,
                error="the watch ended" if error is None else f"{type(error).__name__}: {error}",
            )
        )
