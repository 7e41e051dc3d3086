"""The ASGI app in a real uvicorn and the WSGI app in a real gunicorn, each under a library
lifecycle: mounted at /health, ready, then 503 on /readyz from the start of the drain while
/livez stays 200, and /metrics parsed."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests._proc import ROOT, python
from tests.conftest import Spawn
from tests.observe._http import free_port, get, wait_status

APPS = Path(__file__).with_name("apps")


def _check_serving(base: str) -> None:
    assert get(f"{base}/").text == "hello\n"
    assert get(f"{base}/health/livez").status_code == 200
    ready = get(f"{base}/health/readyz?verbose")
    assert ready.status_code == 200, ready.text
    assert "[+]lifecycle ready" in ready.text
    scrape = get(f"{base}/health/metrics")
    names = {f.name for f in text_string_to_metric_families(scrape.text)}
    assert "warden_lifecycle_state" in names
    assert get(f"{base}/health/nothing").status_code == 404


def test_asgi_app_in_uvicorn(spawn: Spawn) -> None:
    port = free_port()
    proc = spawn(python(str(APPS / "asgi_app.py"), str(port)))
    proc.wait_line("serving")
    base = f"http://127.0.0.1:{port}"
    _check_serving(base)
    proc.signal(signal.SIGTERM)  # the lifecycle's: uvicorn's own capture is off
    assert wait_status(f"{base}/health/readyz", 503).text == "draining\n"
    assert get(f"{base}/health/livez").status_code == 200
    assert proc.wait(15) == 0


def test_wsgi_app_in_gunicorn(spawn: Spawn) -> None:
    port = free_port()
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    proc = spawn(
        [
            gunicorn,
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--chdir",
            str(ROOT),
            "tests.observe.apps.wsgi_app:app",
        ]
    )
    proc.wait_line("Booting worker", stream="err")
    base = f"http://127.0.0.1:{port}"
    wait_status(f"{base}/health/readyz", 200)
    _check_serving(base)
    assert get(f"{base}/stop").status_code == 200
    assert wait_status(f"{base}/health/readyz", 503).text == "draining\n"
    assert get(f"{base}/health/livez").status_code == 200  # from a worker thread: a round trip
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0
