"""gunicorn with warden's config module: READY=1 after the workers, a deadline per worker."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._proc import Proc
from tests.conftest import Spawn
from tests.integrations._grpc_peers import free_port

HERE = Path(__file__).resolve().parent


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    try:
        yield sock, path
    finally:
        sock.close()


def gunicorn(spawn: Spawn, port: int, *args: str, env: dict[str, str]) -> Proc:
    return spawn(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "python:warden.integrations.gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--chdir",
            str(HERE),
            "--no-control-socket",
            *args,
            "_gunicorn_app:app",
        ],
        env=env,
    )


def datagrams(sock: socket.socket, timeout: float) -> list[str]:
    """Every datagram that arrives within ``timeout`` of the last one (or of the call)."""
    got = []
    sock.settimeout(timeout)
    try:
        while True:
            got.append(sock.recv(4096).decode())
    except TimeoutError:
        return got


def test_ready_only_once_every_worker_has_loaded_the_app(
    spawn: Spawn, tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    sock, path = notify_socket
    gate = tmp_path / "gate"
    port = free_port()
    proc = gunicorn(
        spawn, port, "--workers", "2", env={"NOTIFY_SOCKET": path, "APP_GATE": str(gate)}
    )
    proc.wait_line(r"loading app \d+")
    proc.wait_line(r"Booting worker with pid", stream="err")
    # The arbiter is up and its workers are importing the app: gunicorn alone would have
    # said READY=1 by now.
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        sock.recv(4096)
    gate.touch()
    sock.settimeout(20)
    message = sock.recv(4096).decode()
    assert "READY=1" in message and "2 workers ready" in message
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
    proc.signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


def test_a_worker_past_its_deadline_names_its_requests_and_exits(spawn: Spawn) -> None:
    port = free_port()
    proc = gunicorn(
        spawn,
        port,
        "--workers",
        "1",
        "--graceful-timeout",
        "5",
        env={"WARDEN_SHUTDOWN_TIMEOUT": "1"},
    )
    proc.wait_line(r"loading app \d+")
    with httpx.Client(timeout=30) as client:
        assert client.get(f"http://127.0.0.1:{port}/").status_code == 200
        hung = spawn(["curl", "-s", f"http://127.0.0.1:{port}/hang"])
        proc.wait_line("hanging in")
        proc.signal(signal.SIGTERM)
        proc.wait_line(r"warden: worker \d+ still running", stream="err")
        proc.wait(timeout=20)
        hung.wait(timeout=10)
    assert "warden:   GET /hang from 127.0.0.1:" in proc.stderr
    assert "exited with code 124" in proc.stderr  # its own exit, before the arbiter's SIGKILL


def test_a_worker_names_what_it_left_running(spawn: Spawn) -> None:
    port = free_port()
    proc = gunicorn(spawn, port, "--workers", "1", env={})
    proc.wait_line(r"loading app \d+")
    assert httpx.get(f"http://127.0.0.1:{port}/leak", timeout=10).status_code == 200
    child = int(proc.wait_line(r"started child (\d+)").group(1))
    try:
        proc.signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    assert f"warden: leak: process pid {child}: sleep 60" in proc.stderr


def test_the_gthread_workers_own_thread_pool_is_not_a_leak(spawn: Spawn) -> None:
    # gthread starts its pool's threads at the first requests, after the worker's baseline,
    # and leaves them to end on their own (shutdown(wait=False)): gunicorn's, not the app's.
    port = free_port()
    proc = gunicorn(spawn, port, "--workers", "1", "--threads", "32", "-k", "gthread", env={})
    proc.wait_line(r"loading app \d+")
    with concurrent.futures.ThreadPoolExecutor(32) as clients:  # every pool thread started
        answers = clients.map(
            lambda _: httpx.get(f"http://127.0.0.1:{port}/slow", timeout=10).status_code,
            range(32),
        )
        assert list(answers) == [200] * 32
    assert httpx.get(f"http://127.0.0.1:{port}/leak", timeout=10).status_code == 200
    child = int(proc.wait_line(r"started child (\d+)").group(1))
    try:
        proc.signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    assert f"warden: leak: process pid {child}: sleep 60" in proc.stderr  # the app's, named
    assert "warden: leak: thread" not in proc.stderr
