"""The store as a lifecycle component: SIGHUP reloads it, its watcher runs on the loop.

Results are published on the lifecycle's timeline from the loop's thread (the timeline's
rule); a reload that ran on another thread hands its facts over with
``call_soon_threadsafe``. Reading and validating a file runs on a daemon thread so that a
large file or a slow validator never blocks the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from warden._exceptions import ConfigurationError
from warden.lifecycle import Fact, Lifecycle, State

from ._events import ConfigReloaded, ConfigReloadFailed, ConfigReloading, ConfigWatchDone
from ._snapshot import ReloadResult
from ._watch import watch_for_changes

if TYPE_CHECKING:
    from ._store import ConfigStore

R = TypeVar("R")
_LOG = logging.getLogger("warden.config")


class Attachment:
    """What ties one store to one lifecycle."""

    def __init__(self, store: ConfigStore[Any], lifecycle: Lifecycle, name: str) -> None:
        self.store = store
        self.lifecycle = lifecycle
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._watcher: asyncio.Task[None] | None = None
        lifecycle.add(name, start=self._start, stop=self._stop)
        lifecycle.on_reload(self._on_reload)

    # -- the component ------------------------------------------------------------------

    async def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        # The first load (in the store's constructor) is said too: the revision serving from
        # the start is on the timeline, in /metrics and /readyz?verbose before any reload.
        snap = self.store.snapshot
        self.lifecycle.publish(
            ConfigReloaded(
                file=snap.path,
                revision=snap.revision,
                digest=snap.digest,
                changed=True,
                took=None,  # not timed: it happened before the lifecycle ran
                trigger="start",
            )
        )
        if not self.store.watch:
            return
        ready = asyncio.Event()
        self._watcher = asyncio.create_task(
            watch_for_changes(
                [self.store.path],
                self._changed,
                debounce=self.store.debounce,
                ready=ready,
                since=self.store.watched_since(),  # a change made before the start is seen
            ),
            name=f"warden:{self.name}:watch",
        )
        self._watcher.add_done_callback(self._watcher_ended)
        armed = asyncio.create_task(ready.wait())
        await asyncio.wait({armed, self._watcher}, return_when=asyncio.FIRST_COMPLETED)
        if self._watcher.done():  # failed to arm: the start fails with its error
            armed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await armed
            self._watcher.result()

    def _watcher_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            # Not silent: a config that stops following its file is a fault to see at once.
            _LOG.error(
                "config %s: the file watcher stopped: %r; reloads now come from SIGHUP only",
                self.store.path,
                task.exception(),
            )

    async def _stop(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    # -- the triggers -------------------------------------------------------------------

    async def _on_reload(self) -> None:
        """SIGHUP: the lifecycle is ``reloading`` already, which systemd hears of."""
        result = await in_daemon_thread(
            lambda: self.store.reload_quietly(trigger="signal"), f"warden:{self.name}:reload"
        )
        self.report(result)
        if not result.ok:
            raise ConfigurationError(result.error)  # the lifecycle's reload fact says failed

    async def _changed(self, _paths: tuple[Path, ...]) -> None:
        """The watcher saw the file change: RELOADING=1, reload, READY=1."""
        path = self.store.path
        # Only from ready: during a SIGHUP reload the lifecycle already said RELOADING, and
        # after a stop began systemd must not hear of a reload.
        bracket = self.lifecycle.state is State.READY
        if bracket:
            self.lifecycle.publish(ConfigReloading(file=path))
        result = await in_daemon_thread(
            lambda: self.store.reload_quietly(trigger="watch"), f"warden:{self.name}:reload"
        )
        self.report(result)
        if bracket:
            self.lifecycle.publish(ConfigWatchDone(file=path, ok=result.ok))

    # -- publishing ---------------------------------------------------------------------

    def report(self, result: ReloadResult) -> None:
        """Publish the result fact, from the loop's thread whatever thread this is."""
        fact = result_fact(self.store.path, result)
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            self.lifecycle.publish(fact)  # before start-up there is no loop to hand it to
            return
        try:
            loop.call_soon_threadsafe(self.lifecycle.publish, fact)
        except RuntimeError:  # the loop is closed: the lifecycle is over
            self.lifecycle.publish(fact)


def result_fact(path: Path, result: ReloadResult) -> Fact:
    """The timeline fact of one reload result."""
    if result.ok:
        return ConfigReloaded(
            file=path,
            revision=result.revision,
            digest=result.digest,
            changed=result.changed,
            took=result.took,
            trigger=result.trigger,
            commit_errors=result.commit_errors,
        )
    return ConfigReloadFailed(
        file=path,
        revision=result.revision,
        error=result.error or "unknown error",
        stage=result.stage or "read",
        took=result.took,
        trigger=result.trigger,
    )


async def in_daemon_thread(fn: Callable[[], R], name: str) -> R:
    """Run ``fn`` on a daemon thread of its own and wait for it without blocking the loop.

    Not the default executor: its threads are not daemons and outlive the call, and the
    lifecycle's leak report would list them after the stop.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[R] = loop.create_future()

    def settle(value: R | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)  # type: ignore[arg-type]

    def target() -> None:
        try:
            value, error = fn(), None
        except BaseException as exc:
            value, error = None, exc
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=target, name=name, daemon=True).start()
    return await future
