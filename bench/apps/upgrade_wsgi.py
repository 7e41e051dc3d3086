"""The WSGI app of bench/bench_upgrade.py: ``GET`` anything -> 200 ``hello``.

gunicorn -w 2 --chdir bench/apps upgrade_wsgi:app
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

BODY = b"hello\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", HEADERS)
    return [BODY]
