"""Item 14: the smaller faults, each with a real ``warden run`` or a real control socket."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
from pathlib import Path

from tests.supervisor._systemd_peers import closing_reason
from tests.supervisor.conftest import Processes, proc_state, wait_until
from tests.test_control_cli import Served, served, short_dir, warden  # noqa: F401 (fixtures)
from warden._exitcodes import EXIT_NOT_READY
from warden.supervisor.notify._server import NotifyServer

STATUS_PROGRAM = r"""
import os, signal, socket
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.connect(os.environ["NOTIFY_SOCKET"])
sock.send("STATUS=ok \x1b[2J\x1b]0;owned\x07 \x9b31m done\nREADY=1".encode())
print("sent", flush=True)
signal.pause()
"""


def test_a_notify_gated_program_that_exits_0_before_ready_failed(procs: Processes) -> None:
    warden_run = procs.warden("--ready", "notify", "--", "true")
    assert warden_run.wait() == EXIT_NOT_READY
    assert "before it was ready (--ready notify)" in closing_reason(warden_run.err.text())


def test_a_readiness_timeout_has_its_own_exit_code(procs: Processes) -> None:
    warden_run = procs.jumped("--ready", "notify", "--ready-timeout", "0.5s", "--", "sleep", "30")
    warden_run.err.wait_for(r'"detail": "started: sleep 30"')  # its gate's timeout is armed
    warden_run.jump(0.5)
    assert warden_run.wait() == EXIT_NOT_READY  # not 143: the program's death is warden's doing
    reason = closing_reason(warden_run.err.text())
    assert reason == "the program failed to become ready within 0.5s"


def test_status_text_reaches_warden_status_without_escapes(procs: Processes) -> None:
    script = procs.script("status.py", STATUS_PROGRAM)
    warden_run = procs.warden("--ready", "notify", "--", script)
    warden_run.out.wait_for("^sent$")
    warden_run.err.wait_for(r'"outcome": "ready"')
    shown = warden("status", env={"WARDEN_CONTROL": str(procs.control)})
    assert shown.returncode == 0, shown.stderr
    assert "STATUS: ok \\x1b[2J\\x1b]0;owned\\x07 \\x9b31m done" in shown.stdout
    assert not any((ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F for c in shown.stdout)
    warden_run.kill(signal.SIGTERM)
    assert warden_run.wait() == 0


def test_the_client_strips_escapes_whatever_the_server_sends(served: Served) -> None:  # noqa: F811
    served.replies["status"] = {"status": {"program": {"pid": 1, "status": "a\x1b[31mb\rc"}}}
    shown = warden("status", "--control", str(served.path))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == "program   pid 1, STATUS: a\\x1b[31mb\\x0dc\n"


def test_deeply_nested_json_is_a_client_error(procs: Processes) -> None:
    warden_run = procs.warden("--", "sleep", "30")
    wait_until(procs.control.exists, "the control socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(20)
        sock.connect(str(procs.control))
        sock.sendall(b"[" * 20_000 + b"]" * 20_000 + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    reply = json.loads(data)
    assert reply["ok"] is False
    assert "nested too deeply" in reply["error"]
    assert "internal error" not in reply["error"]
    warden_run.kill(signal.SIGTERM)
    assert warden_run.wait() == 128 + signal.SIGTERM  # sleep's own death: the server still ran


def test_a_duplicate_listen_says_so(procs: Processes) -> None:
    warden_run = procs.warden(
        "--listen", "tcp://127.0.0.1:18913", "--listen", "web=tcp://127.0.0.1:18913", "--", "true"
    )
    assert warden_run.wait() == 2
    assert "another process" not in warden_run.err.text()
    assert "the same address as --listen 'tcp://127.0.0.1:18913'" in warden_run.err.lines[-1]


def test_a_directory_as_the_command_says_so(procs: Processes, tmp_path: Path) -> None:
    for options in ([], ["--listen", "tcp://127.0.0.1:0"]):  # spawned directly, and by the shim
        warden_run = procs.warden(*options, "--", str(tmp_path))
        assert warden_run.wait() == 126
        last = warden_run.err.lines[-1]
        assert "is a directory" in last and "chmod" not in last


def test_sigkill_of_warden_takes_the_program_along(procs: Processes) -> None:
    script = procs.script(
        "child.py", "import os, signal\nprint(os.getpid(), flush=True)\nsignal.pause()\n"
    )
    warden_run = procs.warden("--", script)
    pid = int(warden_run.out.wait_for(r"^(\d+)$").group(1))
    procs.track(pid)
    warden_run.kill(signal.SIGKILL)
    warden_run.wait()
    wait_until(lambda: proc_state(pid) in (None, "Z"), "the program killed with warden")


def test_notify_access_all_keeps_the_socket_private(tmp_path: Path) -> None:
    server = NotifyServer(lambda m: None, access="all", directory=str(tmp_path))
    try:
        assert stat.S_IMODE(Path(server.path).parent.stat().st_mode) == 0o700
    finally:
        server.close()
    assert os.listdir(tmp_path) == []
