"""A start that fails leaves nothing behind: no program, no orphan, no notify directory."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tests._proc import python
from tests.conftest import Spawn


def running(marker: str) -> list[int]:
    """Pids whose command line contains ``marker`` (a unique sleep duration)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline.split(b"\0") and b"sleep" in cmdline:
                found.append(int(entry))
    return found


def runtime_dirs(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if p.name.startswith("warden-")}


def test_a_bare_tcp_gate_without_a_socket_spawns_nothing(tmp_path: Path, spawn: Spawn) -> None:
    proc = spawn(
        python("-m", "warden", "run", "--ready", "tcp", "--", "sleep", "301.25"),
        env={"XDG_RUNTIME_DIR": str(tmp_path)},
    )
    assert proc.wait() != 0
    assert "--ready tcp needs a TCP --listen socket" in proc.stderr.splitlines()[-1]
    assert running("301.25") == []
    assert runtime_dirs(tmp_path) == set()


def test_not_ready_at_start_kills_the_program_and_its_escaped_orphan(
    tmp_path: Path, spawn: Spawn
) -> None:
    proc = spawn(
        python(
            "-m",
            "warden",
            "run",
            "--ready",
            "notify",
            "--ready-timeout",
            "1s",
            "--",
            "sh",
            "-c",
            "setsid sleep 302.5 & exec sleep 302.25",
        ),
        env={"XDG_RUNTIME_DIR": str(tmp_path)},
    )
    assert proc.wait(timeout=30) != 0
    assert "failed to become ready within 1s" in proc.stderr
    assert running("302.25") == []
    assert running("302.5") == []  # left the group with setsid, adopted, killed all the same
    assert runtime_dirs(tmp_path) == set()


def test_a_command_that_is_not_found_leaves_no_notify_directory(
    tmp_path: Path, spawn: Spawn
) -> None:
    proc = spawn(
        python("-m", "warden", "run", "--", "warden-no-such-program"),
        env={"XDG_RUNTIME_DIR": str(tmp_path)},
    )
    assert proc.wait() == 127
    assert runtime_dirs(tmp_path) == set()


BINDS_THE_PORT_ITSELF = """
import socket
port = socket.socket(fileno=3).getsockname()[1]  # the port warden holds, to bind it again
socket.socket().bind(("127.0.0.1", port))         # as a server not told of fd 3 does
"""


def test_a_program_that_binds_the_held_port_itself_is_told_to_take_fd_3(
    tmp_path: Path, spawn: Spawn
) -> None:
    script = tmp_path / "binds.py"
    script.write_text(BINDS_THE_PORT_ITSELF)
    proc = spawn(
        python(
            "-m", "warden", "run", "--control", "none", "--listen", "tcp://127.0.0.1:0",
            "--ready", "notify", "--", sys.executable, str(script),
        ),
        env={"XDG_RUNTIME_DIR": str(tmp_path)},
    )  # fmt: skip
    assert proc.wait() == 1  # the program's own code: it failed on its own
    assert "Address already in use" in proc.stderr
    held = next(json.loads(line) for line in proc.err if '"event": "socket"' in line)
    address = held["name"].removesuffix(" (fd 3)")  # an unnamed socket: its address
    closing = json.loads(proc.stderr.splitlines()[-1])  # warden's last word: why it exits
    assert closing["kind"] == "exit"
    assert closing["data"]["reason"] == (
        "the program exited(1); "
        f"warden holds {address} and hands it to the program as fd 3 (LISTEN_FDS); the "
        "program must take it (uvicorn --fd 3, hypercorn --bind fd://3, gunicorn as is) "
        "instead of binding the port itself"
    )


def test_a_program_that_fails_without_held_sockets_gets_no_socket_hint(
    tmp_path: Path, spawn: Spawn
) -> None:
    proc = spawn(
        python("-m", "warden", "run", "--control", "none", "--ready", "notify", "--", "false"),
        env={"XDG_RUNTIME_DIR": str(tmp_path)},
    )
    assert proc.wait() == 1
    closing = json.loads(proc.stderr.splitlines()[-1])
    assert closing["data"]["reason"] == "the program exited(1)"
