"""A WSGI app for the gunicorn tests: a gate on loading, a request that hangs, one that leaks.

On import it prints ``loading app PID`` and, if $APP_GATE names a file, waits for the file to
exist (the test decides when the app has "loaded").
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

print(f"loading app {os.getpid()}", flush=True)
_gate = os.environ.get("APP_GATE")
if _gate:
    _ready = threading.Event()
    while not Path(_gate).exists():
        _ready.wait(0.01)  # the app's own start-up work, as long as the test wants

_children: list[subprocess.Popen[bytes]] = []


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/hang":
        print(f"hanging in {os.getpid()}", flush=True)
        threading.Event().wait()
    if path == "/slow":
        threading.Event().wait(0.2)  # long enough for the requests sent together to overlap
    if path == "/leak":
        child = subprocess.Popen(
            ["sleep", "60"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _children.append(child)
        print(f"started child {child.pid}", flush=True)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello from gunicorn\n"]
