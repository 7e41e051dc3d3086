"""listen_fds() under the real systemd-socket-activate, and its environment rules."""

from __future__ import annotations

import os
import shutil
import socket
import textwrap
from pathlib import Path

import pytest

import warden
from tests._proc import python
from tests.conftest import Spawn

ACTIVATE = shutil.which("systemd-socket-activate")

SERVER = """
import os, sys
import warden
sockets = warden.listen_fds()
print("names", ",".join(name for name, _ in sockets),
      "cloexec", all(not os.get_inheritable(s.fileno()) for _, s in sockets),
      "env", os.environ.get("LISTEN_FDS"), flush=True)
name, listener = sockets[0]
conn, _ = listener.accept()
conn.sendall(f"hello from {name} on fd {listener.fileno()}\\n".encode())
conn.close()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.skipif(ACTIVATE is None, reason="systemd-socket-activate is not installed")
def test_sockets_from_systemd_socket_activate(tmp_path: Path, spawn: Spawn) -> None:
    assert ACTIVATE is not None
    script = tmp_path / "server.py"
    script.write_text(textwrap.dedent(SERVER))
    port = free_port()
    proc = spawn([ACTIVATE, "-l", f"127.0.0.1:{port}", "--fdname=web", *python(str(script))])
    proc.wait_line(r"Listening on 127\.0\.0\.1", stream="err")
    # systemd-socket-activate starts the server at the first connection.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.settimeout(10)
        reply = client.makefile().readline()
    assert reply == "hello from web on fd 3\n"
    proc.wait_line(r"^names web cloexec True env None")
    assert proc.wait() == 0


def test_sockets_meant_for_another_process_are_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LISTEN_PID", str(os.getppid()))
    monkeypatch.setenv("LISTEN_FDS", "1")
    assert warden.listen_fds(unset_environment=False) == []
    assert os.environ["LISTEN_FDS"] == "1"
    assert warden.listen_fds() == []
    assert "LISTEN_FDS" not in os.environ


def test_nothing_passed_means_no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        monkeypatch.delenv(name, raising=False)
    assert warden.listen_fds() == []


def test_mismatched_names_are_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LISTEN_PID", str(os.getpid()))
    monkeypatch.setenv("LISTEN_FDS", "2")
    monkeypatch.setenv("LISTEN_FDNAMES", "web")
    with pytest.raises(warden.ConfigurationError, match="names 1 sockets but LISTEN_FDS=2"):
        warden.listen_fds()
    assert "LISTEN_FDS" not in os.environ
