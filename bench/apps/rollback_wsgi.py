"""The WSGI app of bench/bench_rollback.py: a release whose fault is named in a file.

``$ROLLBACK_RELEASE`` names a file holding the release's name, read as each worker imports
the app (gunicorn without ``--preload``, as in production): ``v1``/``v2``/... answer 200 with
their name; ``import-error`` raises; ``exit0`` exits 0; ``never-ready`` hangs at import;
``late`` kills its master 1.5 s after import (a crash after READY); ``workers``: each worker
exits 1 1.5 s after import (its master starts another); ``err500`` answers 500;
``hang`` blocks every request from 0.5 s after import on.

    ROLLBACK_RELEASE=release gunicorn -w 2 --chdir bench/apps rollback_wsgi:app
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

NAME = Path(os.environ["ROLLBACK_RELEASE"]).read_text().split()[0]
BORN = time.monotonic()
if NAME == "import-error":
    raise RuntimeError("a broken release")
if NAME == "exit0":
    os._exit(0)
if NAME == "never-ready":
    time.sleep(3600)
if NAME == "late":
    _master = os.getppid()  # read now: once the master is gone, the parent is someone else
    threading.Timer(1.5, lambda: os.kill(_master, signal.SIGKILL)).start()
if NAME == "workers":  # each worker crashes; the master starts another, which crashes too
    threading.Timer(1.5, os._exit, (1,)).start()


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if NAME == "hang" and time.monotonic() - BORN > 0.5:
        time.sleep(3600)
    body = f"{NAME} {os.getpid()}\n".encode()
    status = "500 Internal Server Error" if NAME == "err500" else "200 OK"
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
