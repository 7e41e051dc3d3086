"""``/livez``, ``/readyz`` and ``/metrics`` as an ASGI app, to mount in the user's framework.

Mounted anywhere (``app.mount("/health", health_asgi(lifecycle))``): the endpoint is the
path's last segment. On the lifecycle's own loop ``/livez`` is trivially live (the answer
itself is the round trip); on another loop it asks the lifecycle's loop, like the server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._health import DEFAULT_WEDGED_AFTER, Details, Health, _Service
from ._metrics import Metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def health_asgi(
    lifecycle: _Service,
    *,
    details: Details | None = None,
    metrics: Metrics | bool = True,
    wedged_after: float = DEFAULT_WEDGED_AFTER,
) -> ASGIApp:
    """An ASGI 3 app answering ``lifecycle``'s health endpoints (arguments: :class:`Health`)."""
    health = Health(lifecycle, details=details, metrics=metrics, wedged_after=wedged_after)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # served on its own: nothing to set up
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        query = scope.get("query_string", b"").decode("latin-1")
        response = await health.answer_async(scope["path"], query)
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (b"content-type", response.content_type.encode()),
                    (b"content-length", str(len(response.body)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        body = b"" if scope.get("method") == "HEAD" else response.body
        await send({"type": "http.response.body", "body": body})

    return app
