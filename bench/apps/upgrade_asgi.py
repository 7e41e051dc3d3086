"""The ASGI app of bench/bench_upgrade.py: ``GET`` anything -> 200 ``hello``.

uvicorn does not speak sd_notify, so the app does: when ``$NOTIFY_SOCKET`` is set (under
``warden run --ready notify``), its lifespan startup sends ``READY=1`` through warden's own
:class:`warden.Notifier`. uvicorn runs the lifespan startup just before it starts serving the
inherited socket (``uvicorn --fd 3``); a connection arriving in between waits in the listen
backlog, which warden holds.

    warden run --listen tcp://127.0.0.1:8000 --ready notify -- \\
        uvicorn --fd 3 --app-dir bench/apps upgrade_asgi:app
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import warden

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

BODY = b"hello\n"
HEADERS = [(b"content-type", b"text/plain"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
            notifier = warden.Notifier.from_environment()
            if notifier is not None:
                with notifier:
                    notifier.ready()
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
