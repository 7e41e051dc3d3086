"""An ASGI wrapper for the HTTP drain: ``Connection: close`` while draining, work tracked.

During the drain (from the lifecycle's DRAINING to the end of the stop) every HTTP/1.x
response says ``Connection: close``, so a keep-alive client ends its connection after the
answer instead of sending its next request into a server about to close it (HTTP/2 has no
such header: its drain is a GOAWAY frame, sent by the server's integration). Each request
is recorded in an :class:`InFlight` set while the app runs it, for the report of what the
grace cut.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._inflight import InFlight, Work

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_CLOSE = (b"connection", b"close")


class DrainState:
    """Whether the server drains, shared by its wrapper and its integration."""

    def __init__(self) -> None:
        self.draining = False
        self.inflight = InFlight()


def client_name(scope: Scope) -> str:
    client = scope.get("client")
    if not client:
        return "unknown"
    host, port = client[0], client[1]
    return f"ipv6:[{host}]:{port}" if ":" in str(host) else f"ipv4:{host}:{port}"


def wrap(app: App, state: DrainState) -> App:
    """``app`` with the drain's ``Connection: close`` and in-flight tracking."""

    async def drained(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        h1 = scope.get("http_version", "1.1") in ("1.0", "1.1")
        target = scope.get("raw_path") or scope.get("path", "").encode()
        work = Work(
            f"{scope.get('method', '?')} {target.decode('latin-1')}", client_name(scope), False
        )

        async def tracked(message: Message) -> None:
            if message["type"] == "http.response.start" and h1 and state.draining:
                headers = [h for h in message.get("headers", ()) if h[0].lower() != b"connection"]
                message = {**message, "headers": [*headers, _CLOSE]}
            elif message["type"] == "http.response.body" and message.get("more_body"):
                work.streaming = True
            await send(message)

        token = state.inflight.begin(work)
        try:
            await app(scope, receive, tracked)
        finally:
            state.inflight.end(token)

    return drained
