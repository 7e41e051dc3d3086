"""The ASGI counterpart of examples/http_service.py, for uvicorn and hypercorn in the bench.

Same endpoints: ``GET /``, ``GET /slow?ms=500``, ``POST /jobs`` (202), ``GET /livez``,
``GET /readyz`` (always 200: ASGI servers have no readiness state). Like the example's store,
the acknowledged jobs are written to ``$BENCH_DATA`` (atomically) at lifespan shutdown. Two
more endpoints for the deadline benchmark print ``hanging`` and then never answer:
``GET /hang/busy`` blocks the event loop with a busy loop, ``GET /hang/async`` awaits forever.

    python -m uvicorn --app-dir bench/apps lifecycle_asgi:app --port 0
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_jobs: list[str] = []


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    status, text = await _handle(scope["method"], scope["path"], scope["query_string"], body)
    data = text.encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def _handle(method: str, path: str, query: bytes, body: bytes) -> tuple[int, str]:
    if path == "/livez":
        return 200, "ok\n"
    if path == "/readyz":
        return 200, "ready\n"
    if path == "/slow":
        ms = float(parse_qs(query.decode()).get("ms", ["500"])[0])
        await asyncio.sleep(ms / 1000)
        return 200, f"slept {ms:g} ms\n"
    if path == "/jobs" and method == "POST":
        _jobs.append(body.decode() or "job")
        return 202, "accepted\n"
    if path == "/hang/busy":
        print("hanging", flush=True)
        while True:  # blocks the event loop: nothing else runs in this process's loop
            pass
    if path == "/hang/async":
        print("hanging", flush=True)
        await asyncio.Event().wait()  # never set
    if path == "/":
        return 200, "hello from asgi\n"
    return 404, "not found\n"


async def _lifespan(receive: Receive, send: Send) -> None:
    data = Path(os.environ.get("BENCH_DATA", os.devnull))
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if data.is_file():
                _jobs.extend(json.loads(data.read_text()))
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if data != Path(os.devnull):
                tmp = data.with_suffix(".tmp")
                tmp.write_text(json.dumps(_jobs))
                tmp.replace(data)
            await send({"type": "lifespan.shutdown.complete"})
            return
