"""Calling user code that may be sync or async.

Async callables run on the event loop. Sync callables run on a daemon thread of their own, so
that a timeout can be enforced around them (the loop stays free) and a call that never returns
cannot hold the interpreter at exit (``asyncio.to_thread``'s pool threads are joined at exit).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import Callable

Callback = Callable[[], object]


def is_async(fn: Callback) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


async def call(
    fn: Callback, *, thread_name: str, on_thread: Callable[[threading.Thread], None] | None = None
) -> None:
    """Call ``fn`` and wait for it; an awaitable result is awaited on the loop."""
    if is_async(fn):
        result = fn()
    else:
        result = await _in_daemon_thread(fn, thread_name, on_thread)
    if inspect.isawaitable(result):
        await result


async def _in_daemon_thread(
    fn: Callback, name: str, on_thread: Callable[[threading.Thread], None] | None
) -> object:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[object] = loop.create_future()

    def settle(result: object, error: BaseException | None) -> None:
        if future.done():  # timed out or cancelled meanwhile
            return
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)

    def target() -> None:
        try:
            result, error = fn(), None
        except BaseException as exc:
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(settle, result, error)

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    if on_thread is not None:
        on_thread(thread)
    return await future
