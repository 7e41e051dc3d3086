"""The example service under real traffic and a real SIGTERM."""

from __future__ import annotations

import http.client
import json
import signal
import threading
from pathlib import Path

from tests._proc import EXAMPLES, python
from tests.conftest import Spawn


def request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def test_sigterm_drains_finishes_in_flight_work_and_keeps_acknowledged_jobs(
    tmp_path: Path, spawn: Spawn
) -> None:
    data = tmp_path / "jobs.json"
    proc = spawn(
        python(
            str(EXAMPLES / "http_service.py"),
            "--port",
            "0",
            "--data",
            str(data),
            "--drain-delay",
            "1",
        )
    )
    port = int(proc.wait_line(r"listening on http://127.0.0.1:(\d+)").group(1))
    # Listening comes first, ready once every component has started.
    proc.wait_line(r'"event": "state", "state": "ready"', stream="err")
    assert request(port, "GET", "/readyz") == (200, "ready\n")
    for i in range(20):
        assert request(port, "POST", "/jobs", f"job-{i}".encode())[0] == 202

    slow = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    slow.request("GET", "/slow?ms=1200")  # on the wire before the signal
    answers: list[int] = []
    reader = threading.Thread(target=lambda: answers.append(slow.getresponse().status))
    reader.start()
    proc.signal(signal.SIGTERM)
    proc.wait_line(r'"name": "draining"', stream="err")
    assert request(port, "GET", "/readyz") == (503, "draining\n")  # still accepting, not ready
    assert proc.wait(timeout=20) == 0
    reader.join(10)
    slow.close()

    assert answers == [200]
    assert sorted(json.loads(data.read_text())) == sorted(f"job-{i}" for i in range(20))
    events = [json.loads(line) for line in proc.stderr.splitlines()]
    stops = [e["name"] for e in events if e.get("event") == "stop"]
    assert stops == ["http", "jobs", "store", "settings"]
    assert all(e["outcome"] == "ok" for e in events if e.get("event") == "stop")
