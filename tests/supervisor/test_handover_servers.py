"""Real servers serving real HTTP on sockets warden bound: uvicorn, hypercorn, gunicorn.

Each server only gets fds and variables, never an address: a response on the held socket's
address proves it took the socket warden bound. The requests need no wait for the server to
start: the socket listens already, so a request sits in the backlog until the server accepts.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.supervisor._socket_peers import APP, Children, http_get, needs_ipv6
from warden.supervisor.sockets._held import HeldSockets
from warden.supervisor.sockets._listenspec import parse_listen

Where = tuple[str, int] | str


def needs(module: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        importlib.util.find_spec(module) is None, reason=f"{module} is not installed"
    )


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "app"
    directory.mkdir()
    (directory / "app.py").write_text(APP)
    return directory


def hold(tmp_path: Path, *texts: str) -> tuple[HeldSockets, list[Where]]:
    held = HeldSockets.from_specs([parse_listen(text.format(tmp=tmp_path)) for text in texts])
    addresses: list[Where] = []
    for one in held:
        name = one.sock.getsockname()
        addresses.append(name if isinstance(name, str) else (name[0], name[1]))
    return held, addresses


def serve_and_check(addresses: list[Where]) -> set[str]:
    """Several requests on every address; returns the pids that answered."""
    answered = set()
    for n, where in enumerate(addresses):
        for i in range(3):
            status, body = http_get(where, f"/req/{n}/{i}")
            assert status == 200, body
            path, _, rest = body.partition(" from pid ")
            assert path == f"/req/{n}/{i}"
            answered.add(rest)
    return answered


def env_with(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}


@needs("uvicorn")
@pytest.mark.parametrize(
    "spec", ["tcp://127.0.0.1:0", "web=unix:{tmp}/uvicorn.sock?mode=0600"], ids=["tcp", "unix"]
)
def test_uvicorn_fd(tmp_path: Path, app_dir: Path, children: Children, spec: str) -> None:
    held, addresses = hold(tmp_path, spec)
    try:
        argv = [sys.executable, "-m", "uvicorn", "--fd", "3", "--app-dir", str(app_dir), "app:app"]
        pid = children.spawn(argv, sockets=held.named_fds)
        assert serve_and_check(addresses) == {str(pid)}
        # uvicorn stops gracefully, then re-raises SIGTERM on itself.
        assert children.stop(pid) in (0, -signal.SIGTERM)
    finally:
        held.close()


@needs("hypercorn")
@pytest.mark.parametrize(
    "spec",
    [
        "tcp://127.0.0.1:0",
        pytest.param("tcp://[::1]:0", marks=needs_ipv6),
    ],
    ids=["ipv4", "ipv6"],
)
def test_hypercorn_fd(tmp_path: Path, app_dir: Path, children: Children, spec: str) -> None:
    held, addresses = hold(tmp_path, spec)
    try:
        argv = [sys.executable, "-m", "hypercorn", "--bind", "fd://3", "app:app"]
        pid = children.spawn(argv, sockets=held.named_fds, env=env_with(PYTHONPATH=str(app_dir)))
        assert len(serve_and_check(addresses)) == 1  # its one worker
        assert children.stop(pid) == 0
    finally:
        held.close()


@needs("gunicorn")
def test_gunicorn_takes_listen_fds(tmp_path: Path, app_dir: Path, children: Children) -> None:
    """gunicorn reads LISTEN_FDS itself, only when LISTEN_PID is its own pid."""
    held, addresses = hold(tmp_path, "web=tcp://127.0.0.1:0", "admin=unix:{tmp}/gunicorn.sock")
    try:
        argv = [sys.executable, "-m", "gunicorn", "--chdir", str(app_dir), "app:wsgi"]
        # HOME: recent gunicorn (27 here) opens a control socket under ~/.gunicorn.
        pid = children.spawn(argv, sockets=held.named_fds, env=env_with(HOME=str(tmp_path)))
        answered = serve_and_check(addresses)
        assert len(answered) == 1 and answered != {str(pid)}  # a worker, not the arbiter
        assert children.stop(pid) == 0
    finally:
        held.close()
