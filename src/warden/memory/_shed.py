"""Shed load at ``high``: answer new work with 503 and ``Retry-After`` (ASGI and WSGI)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Protocol

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
StartResponse = Callable[..., object]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_BODY = b"memory high: try again later\n"


class _Accepting(Protocol):
    @property
    def accepting(self) -> bool: ...


class ShedLoadASGI:
    """Wrap an ASGI app: while ``sentinel.accepting`` is false, HTTP requests get a 503.

    Example::

        app = ShedLoadASGI(app, warden.watch_memory(lc), retry_after=5)

    Lifespan and WebSocket scopes pass through (a WebSocket is closed with 1013, "try
    again later", while shedding).
    """

    def __init__(self, app: ASGIApp, sentinel: _Accepting, *, retry_after: int = 5) -> None:
        self.app = app
        self.sentinel = sentinel
        self.retry_after = retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.sentinel.accepting or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"retry-after", str(self.retry_after).encode()),
                    (b"content-type", b"text/plain"),
                    (b"content-length", str(len(_BODY)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _BODY})


class ShedLoadWSGI:
    """Wrap a WSGI app: while ``sentinel.accepting`` is false, requests get a 503."""

    def __init__(self, app: WSGIApp, sentinel: _Accepting, *, retry_after: int = 5) -> None:
        self.app = app
        self.sentinel = sentinel
        self.retry_after = retry_after

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if self.sentinel.accepting:
            return self.app(environ, start_response)
        start_response(
            "503 Service Unavailable",
            [
                ("Retry-After", str(self.retry_after)),
                ("Content-Type", "text/plain"),
                ("Content-Length", str(len(_BODY))),
            ],
        )
        return [_BODY]
