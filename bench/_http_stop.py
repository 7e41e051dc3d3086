"""A rolling stop of an HTTP server under keep-alive load, for bench_integrations.py.

Two releases serve one listening socket (as under ``warden run``, or systemd): the bench
binds it and hands it to both as fd 3 (LISTEN_FDS). Under closed-loop load on keep-alive
connections the old release gets SIGTERM; a client whose connection is closed after a
response (``Connection: close``, or a clean end between requests) reconnects and lands on
whichever release accepts; a request with no response (reset, or closed with the request
unanswered) is a failure.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

SHIM = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); "
    "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1', LISTEN_FDNAMES='http'); "
    "os.execvp(sys.argv[2], sys.argv[2:])"
)


@dataclass
class HttpStop:
    requests: int
    failed: int
    exit_after: float | None


def spawn(listener: socket.socket, argv: Sequence[str], cwd: str) -> subprocess.Popen[str]:
    """Start ``argv`` with ``listener`` as its fd 3 (LISTEN_FDS)."""
    fd = listener.fileno()
    return subprocess.Popen(
        [sys.executable, "-c", SHIM, str(fd), *argv],
        pass_fds=(fd,),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=cwd,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def wait_serving(proc: subprocess.Popen[str], port: int, timeout: float = 20.0) -> None:
    """Until a request is answered on ``port`` by some release (the old one may answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} while starting")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/")
            if conn.getresponse().status == 200:
                conn.close()
                return
        time.sleep(0.02)  # polling a server that says nothing when it is up
    raise RuntimeError("server did not answer in time")


def kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    if proc.stdout is not None:
        proc.stdout.close()


def _client(
    port: int, stop: threading.Event, counts: dict[str, int], lock: threading.Lock, fresh: bool
) -> None:
    conn: http.client.HTTPConnection | None = None
    while not stop.is_set():
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/slow?ms=5")
            response = conn.getresponse()
            response.read()
            ok, closing = response.status == 200, response.will_close
        except (OSError, http.client.HTTPException):
            ok, closing = False, True
        with lock:
            counts["requests"] += 1
            counts["failed"] += 0 if ok else 1
        if closing or fresh:
            conn.close()
            conn = None
    if conn is not None:
        conn.close()


def rolling_stop(
    old_argv: Sequence[str], new_argv: Sequence[str], cwd: str, clients: int, fresh: bool = False
) -> HttpStop:
    """One rolling stop; ``fresh``: each request on a new connection, else keep-alive."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    port = listener.getsockname()[1]
    old = spawn(listener, old_argv, cwd)
    new: subprocess.Popen[str] | None = None
    try:
        wait_serving(old, port)
        new = spawn(listener, new_argv, cwd)
        wait_serving(new, port)
        stop, lock = threading.Event(), threading.Lock()
        counts = {"requests": 0, "failed": 0}
        threads = [
            threading.Thread(target=_client, args=(port, stop, counts, lock, fresh))
            for _ in range(clients)
        ]
        for thread in threads:
            thread.start()
        time.sleep(0.5)  # the load runs a while before the stop (not a synchronisation)
        sent = time.monotonic()
        os.kill(old.pid, signal.SIGTERM)
        try:
            old.wait(10)
            exit_after: float | None = time.monotonic() - sent
        except subprocess.TimeoutExpired:
            exit_after = None
        time.sleep(0.3)  # and runs on after the old release is gone
        stop.set()
        for thread in threads:
            thread.join(20)
        return HttpStop(counts["requests"], counts["failed"], exit_after)
    finally:
        kill(old)
        if new is not None:
            kill(new)
        listener.close()


def hang_overshoot(argv: Sequence[str], cwd: str, deadline: float) -> float | None:
    """Seconds past ``deadline`` the server lives with a request that never ends."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    port = listener.getsockname()[1]
    proc = spawn(listener, argv, cwd)
    try:
        wait_serving(proc, port)
        hung = socket.create_connection(("127.0.0.1", port))
        hung.sendall(b"GET /slow?ms=600000 HTTP/1.1\r\nHost: x\r\n\r\n")
        # the request is in the server once a second request on another connection is
        # answered after it (the server reads connections in order of readiness)
        wait_serving(proc, port)
        sent = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            return None
        hung.close()
        return time.monotonic() - sent - deadline
    finally:
        kill(proc)
        listener.close()
