"""A small ASGI app shared by the HTTP examples: hello, a slow request, a streamed one.

* ``GET /``: hello;
* ``GET /slow?ms=500``: answers after ``ms`` milliseconds;
* ``GET /stream?n=10&ms=50``: ``n`` chunks, ``ms`` apart (a streamed response).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
    headers = [(b"content-type", b"text/plain")]
    if scope["path"] == "/slow":
        ms = float(query.get("ms", "500"))
        await asyncio.sleep(ms / 1000)
        body = f"slept {ms:g} ms\n".encode()
    elif scope["path"] == "/stream":
        n, pause = int(query.get("n", "10")), float(query.get("ms", "50")) / 1000
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i in range(n):
            if i:
                await asyncio.sleep(pause)
            await send({"type": "http.response.body", "body": f"{i}\n".encode(), "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    else:
        body = b"hello from warden\n"
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
