"""A two-minute tour of warden's lifecycle: a graceful stop under traffic, nothing lost.

Starts ``examples/http_service.py`` as a real process, sends it steady traffic, queues jobs
and keeps a slow request in flight, then sends SIGTERM the way Kubernetes or systemd would,
and shows what happened: readiness turned false at once, the in-flight request finished, the
components stopped in reverse dependency order, every acknowledged job reached the disk.

    python examples/tour.py
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="warden-tour-") as tmp:
        data = Path(tmp) / "jobs.json"
        port = _free_port()
        service = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "http_service.py"),
                "--port",
                str(port),
                "--data",
                str(data),
                "--drain-delay",
                "0.5",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            return _tour(service, port, data)
        finally:
            if service.poll() is None:
                service.kill()
                service.wait()


def _tour(service: subprocess.Popen[str], port: int, data: Path) -> int:
    assert service.stdout is not None and service.stderr is not None
    print(
        f"1. started the example service (pid {service.pid}): {service.stdout.readline().strip()}"
    )
    events: list[dict[str, Any]] = []
    draining_seen = threading.Event()
    reader = threading.Thread(
        target=_read_events, args=(service.stderr, events, draining_seen), daemon=True
    )
    reader.start()

    ok = failed = 0
    for i in range(200):
        status, _ = _request(
            port, "POST" if i % 4 == 0 else "GET", "/jobs" if i % 4 == 0 else "/", f"job-{i}"
        )
        ok, failed = (ok + 1, failed) if status in (200, 202) else (ok, failed + 1)
    print(f"2. steady traffic: {ok} requests served, {failed} failed, 50 jobs acknowledged")

    # The request is on the wire before the signal; the service must still answer it.
    slow_conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    slow_conn.request("GET", "/slow?ms=1500")
    slow: list[tuple[int, str]] = []
    in_flight = threading.Thread(target=lambda: slow.append(_answer(slow_conn)))
    in_flight.start()
    sent = time.monotonic()
    service.send_signal(signal.SIGTERM)
    print("3. sent SIGTERM with a 1.5 s request in flight")
    if not draining_seen.wait(5):
        raise TimeoutError("the service did not report draining within 5 s")
    ready_status, _ = _request(port, "GET", "/readyz")
    code = service.wait(30)
    exited = time.monotonic()
    in_flight.join(10)
    reader.join(5)

    draining = next(e for e in events if e.get("event") == "state" and e.get("name") == "draining")
    stops = [e for e in events if e.get("event") == "stop"]
    saved = json.loads(data.read_text()) if data.exists() else []
    print(
        f"4. readiness false {(float(draining['monotonic']) - sent) * 1000:.2f} ms after "
        f"SIGTERM; /readyz answered {ready_status} while draining"
    )
    print(
        f"5. the in-flight request finished: {slow[0][0] if slow else 'no answer'} "
        f"{slow[0][1].strip() if slow else ''}"
    )
    print("6. components stopped in reverse dependency order:")
    for event in stops:
        print(
            f"     {event['name']:<9} {event['outcome']:<8} "
            f"{float(event['duration']) * 1000:8.1f} ms"
        )
    print(f"7. exit code {code}; {len(saved)} of 50 acknowledged jobs on disk")
    print()
    rows = [
        ("requests served", str(ok)),
        ("requests failed", str(failed + (0 if slow and slow[0][0] == 200 else 1))),
        ("SIGTERM -> readiness false", f"{(float(draining['monotonic']) - sent) * 1000:.2f} ms"),
        ("SIGTERM -> exit (incl. 0.5 s drain, 1.5 s request)", f"{exited - sent:.2f} s"),
        ("acknowledged jobs lost", str(50 - len(saved))),
        ("exit code", str(code)),
    ]
    width = max(len(name) for name, _ in rows)
    print("summary")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    return 0 if code == 0 and len(saved) == 50 and slow and slow[0][0] == 200 else 1


def _read_events(stream: object, events: list[dict[str, Any]], draining: threading.Event) -> None:
    for line in stream:  # type: ignore[attr-defined]
        try:
            event = json.loads(line)
        except ValueError:
            sys.stderr.write(line)
            continue
        events.append(event)
        if event.get("event") == "state" and event.get("name") == "draining":
            draining.set()


def _request(port: int, method: str, path: str, body: str = "") -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body.encode() or None)
    except OSError as exc:
        conn.close()
        return 0, str(exc)
    return _answer(conn)


def _answer(conn: http.client.HTTPConnection) -> tuple[int, str]:
    try:
        response = conn.getresponse()
        return response.status, response.read().decode()
    except OSError as exc:
        return 0, str(exc)
    finally:
        conn.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
