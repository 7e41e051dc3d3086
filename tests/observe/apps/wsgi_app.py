"""The health WSGI app mounted at /health in a real gunicorn worker.

    gunicorn --bind 127.0.0.1:PORT --workers 1 tests.observe.apps.wsgi_app:app

The worker runs a library lifecycle on a thread of its own (gunicorn owns the signals);
``POST /stop`` begins its stop, whose drain keeps readiness false for a minute.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import warden
from warden.observe._wsgi import StartResponse, health_wsgi

lifecycle = warden.Lifecycle(drain_delay=60, shutdown_timeout=70, handle_signals=False)
lifecycle.add("db", start=lambda: None)
health = health_wsgi(lifecycle)
_started = threading.Event()
lifecycle.timeline.subscribe(lambda event: _started.set() if lifecycle.ready else None)
threading.Thread(target=lifecycle.run, name="lifecycle", daemon=True).start()
_started.wait(10)


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path.startswith("/health/"):
        inner = dict(environ, SCRIPT_NAME="/health", PATH_INFO=path[len("/health") :])
        return health(inner, start_response)
    if path == "/stop":
        lifecycle.request_stop("asked by the test")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello\n"]
