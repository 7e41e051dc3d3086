"""The ASGI app of bench/bench_rollback.py (uvicorn, hypercorn): a release whose fault is
named in the file ``$ROLLBACK_RELEASE`` names.

``v1``/``v2``/... answer 200 with their name; ``import-error`` raises at import; ``exit0``
exits 0 at import; ``never-ready`` never finishes its lifespan startup; ``late`` crashes 1.5 s
after its startup (and, with ``$ROLLBACK_MASTER=parent``, takes the server's master, its
parent, with it: hypercorn's worker); ``workers`` exits 1 1.5 s after its startup, this
process only (uvicorn ``--workers 2`` starts another; hypercorn's master ends with it);
``err500`` answers 500; ``hang`` blocks its event loop 0.5 s after its startup. READY=1 (and,
with ``$WATCHDOG_USEC``, WATCHDOG=1 from the event loop) through warden's
:class:`warden.Notifier`: uvicorn speaks no sd_notify of its own.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import warden
from warden.systemd import ping_forever, watchdog_interval

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

NAME = Path(os.environ["ROLLBACK_RELEASE"]).read_text().split()[0]
if NAME == "import-error":
    raise RuntimeError("a broken release")
if NAME == "exit0":
    os._exit(0)
MASTER = os.getppid() if os.environ.get("ROLLBACK_MASTER") == "parent" else os.getpid()
_TASKS: set[asyncio.Future[None]] = set()


def _crash() -> None:
    if os.getpid() != MASTER:
        os.kill(MASTER, signal.SIGKILL)
    os._exit(1)


def _started() -> None:
    notifier = warden.Notifier.from_environment()
    if notifier is not None:
        notifier.ready()
        interval = watchdog_interval()
        if interval is not None:
            _TASKS.add(asyncio.ensure_future(ping_forever(notifier, interval)))
    loop = asyncio.get_running_loop()
    if NAME == "late":
        loop.call_later(1.5, _crash)
    if NAME == "workers":  # this process only: a master that respawns it starts another
        loop.call_later(1.5, os._exit, 1)
    if NAME == "hang":
        loop.call_later(0.5, time.sleep, 3600)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if NAME == "never-ready":
                    await asyncio.Event().wait()
                _started()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] != "http":
        return
    body = f"{NAME} {os.getpid()}\n".encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    status = 500 if NAME == "err500" else 200
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
