"""Watching for a store without a lifecycle: an event loop on a daemon thread of its own."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import ConfigError
from ._watch import watch_for_changes

if TYPE_CHECKING:
    from ._store import ConfigStore

_ARM_TIMEOUT = 10.0


class WatchThread:
    """Runs :func:`watch_for_changes` for one store until :meth:`stop`.

    The constructor returns once the watch is armed, so a change made after
    ``ConfigStore(..., watch=True)`` returns is seen.
    """

    def __init__(self, store: ConfigStore[Any]) -> None:
        self._store = store
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._armed = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="warden:config:watch", daemon=True)
        self._thread.start()
        if not self._armed.wait(_ARM_TIMEOUT) and self._error is None:
            self.stop()
            raise ConfigError(
                store.path, f"the file watcher did not start within {_ARM_TIMEOUT:g}s"
            )
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc
        finally:
            self._armed.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        ready = asyncio.Event()
        store = self._store
        watcher = asyncio.create_task(
            watch_for_changes(
                [store.path],
                self._changed,
                debounce=store.debounce,
                ready=ready,
                since=store.watched_since(),  # a change made before the watch is seen
            )
        )
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({waiter, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if watcher.done():
            waiter.cancel()
            watcher.result()
            return
        self._armed.set()
        await self._stop.wait()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher

    def _changed(self, _paths: tuple[Path, ...]) -> None:
        self._store.reload(trigger="watch")  # on this thread: the loop here serves no one else

    def stop(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if threading.current_thread() is not self._thread:
            self._thread.join(10.0)
