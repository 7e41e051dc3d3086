"""Work in flight on a server: what is running, since when, for the report of what was cut.

Thread-safe: a sync gRPC handler begins and ends its work on a pool thread, while the stop
waits on the event loop. The stop waits for the set to empty with :meth:`InFlight.wait_idle`,
which is woken through ``call_soon_threadsafe`` (no thread is parked on a lock for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from dataclasses import dataclass, field

from ._events import Cut


@dataclass(slots=True)
class Work:
    """One request or RPC under way."""

    method: str
    peer: str
    streaming: bool
    began: float = field(default_factory=time.monotonic)
    thread: threading.Thread | None = None


class InFlight:
    """The set of work a server has begun and not finished."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._work: dict[int, Work] = {}
        self._ids = itertools.count(1)
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def begin(self, work: Work) -> int:
        with self._lock:
            token = next(self._ids)
            self._work[token] = work
            return token

    def end(self, token: int) -> None:
        with self._lock:
            self._work.pop(token, None)
            if self._work or not self._waiters:
                return
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle, future)

    def __len__(self) -> int:
        with self._lock:
            return len(self._work)

    def cut(self, now: float | None = None) -> tuple[Cut, ...]:
        """What is in flight now, oldest first, as the report names it."""
        now = time.monotonic() if now is None else now
        with self._lock:
            works = sorted(self._work.values(), key=lambda w: w.began)
        return tuple(
            Cut(
                method=w.method,
                peer=w.peer,
                age=now - w.began,
                streaming=w.streaming,
                thread_held=w.thread is not None and w.thread.is_alive(),
            )
            for w in works
        )

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is in flight; ``False`` if ``timeout`` passed first."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if not self._work:
                return True
            self._waiters.append((loop, future))
        try:
            await asyncio.wait_for(future, max(timeout, 0.0))
        except TimeoutError:
            return False
        finally:
            with self._lock, contextlib.suppress(ValueError):
                self._waiters.remove((loop, future))
        return True


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
