"""``/livez``, ``/readyz`` and ``/metrics`` as a WSGI app, to mount in the user's framework.

The endpoint is the path's last segment, wherever it is mounted. A WSGI worker thread asks
the lifecycle's loop for a round trip for ``/livez`` and waits up to ``wedged_after``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ._health import DEFAULT_WEDGED_AFTER, Details, Health, _Service
from ._metrics import Metrics

StartResponse = Callable[[str, list[tuple[str, str]]], object]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_REASONS = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}


def health_wsgi(
    lifecycle: _Service,
    *,
    details: Details | None = None,
    metrics: Metrics | bool = True,
    wedged_after: float = DEFAULT_WEDGED_AFTER,
) -> WSGIApp:
    """A WSGI app answering ``lifecycle``'s health endpoints (arguments: :class:`Health`)."""
    health = Health(lifecycle, details=details, metrics=metrics, wedged_after=wedged_after)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        response = health.answer(path, environ.get("QUERY_STRING", ""))
        start_response(
            f"{response.status} {_REASONS.get(response.status, '')}",
            [
                ("Content-Type", response.content_type),
                ("Content-Length", str(len(response.body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else response.body]

    return app
