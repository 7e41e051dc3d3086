"""Issue 4 end to end: sockets warden holds, served by real servers through ``warden run``.

uvicorn (``--fd 3``), hypercorn (``--bind fd://3``) and gunicorn (LISTEN_FDS) serve real HTTP
requests on the sockets warden bound; ``systemd-socket-activate`` starts warden itself with
LISTEN_FDS, and warden hands them on; bad ``--listen`` input and unusable addresses are one
clear line before anything is spawned.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.supervisor._socket_peers import APP, http_get
from tests.supervisor._systemd_peers import (
    WAIT_FOR_RELEASE,
    Manager,
    closing_reason,
    final_lines,
    free_port,
    make_fifo,
    needs,
    release,
)
from tests.supervisor.conftest import DEADLINE, Processes, descendants


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "app"
    directory.mkdir()
    (directory / "app.py").write_text(APP)
    return directory


# -- bad input: one line, nothing spawned ---------------------------------------------------


def run_warden(*argv: str, timeout: float = DEADLINE) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WARDEN_", "NOTIFY_"))}
    return subprocess.run(
        [sys.executable, "-m", "warden", "run", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def test_a_port_in_use_is_one_clear_line_before_anything_is_spawned(tmp_path: Path) -> None:
    marker = tmp_path / "spawned"
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = run_warden(
            "--listen", f"tcp://127.0.0.1:{port}", "--", "sh", "-c", f"touch {marker}"
        )
    assert done.returncode != 0
    assert final_lines(done.stderr) == [], done.stderr
    reason = closing_reason(done.stderr)
    assert reason.startswith(f"--listen 'tcp://127.0.0.1:{port}': address already in")
    assert not marker.exists()
    assert "started:" not in done.stderr  # no child event at all


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("tcp://localhost:8000", "'localhost' is not an IP address"),
        ("tcp://127.0.0.1", "missing :PORT"),
        ("tcp://127.0.0.1:65536", "port 65536 is out of range"),
        ("tcp://::1:8000", "an IPv6 address needs brackets"),
        ("udp://127.0.0.1:53", "unknown form"),
        ("unix:/run/x.sock?mode=999", "is not octal"),
        ("unix:/" + "x" * 120, "at most 107"),
        ("=tcp://127.0.0.1:8000", "the name before '=' is empty"),
    ],
)
def test_bad_listen_specs_exit_2_with_one_line(spec: str, message: str) -> None:
    done = run_warden("--listen", spec, "--", "true")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"warden run: error: --listen {spec!r}: ")
    assert message in done.stderr


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("missing/app.sock", "directory {tmp}/missing does not exist; create it first"),
        ("file/app.sock", "a component of {tmp}/file is not a directory"),
        ("file", "{tmp}/file exists and is not a socket; remove it or choose another path"),
    ],
    ids=["missing-directory", "file-as-directory", "not-a-socket"],
)
def test_unusable_socket_paths_are_a_clear_error(tmp_path: Path, where: str, message: str) -> None:
    (tmp_path / "file").write_text("not a socket")
    marker = tmp_path / "spawned"
    done = run_warden("--listen", f"unix:{tmp_path / where}", "--", "touch", str(marker))
    assert done.returncode != 0
    assert closing_reason(done.stderr) == (
        f"--listen 'unix:{tmp_path / where}': {message.format(tmp=tmp_path)}"
    )
    assert not marker.exists()
    assert (tmp_path / "file").read_text() == "not a socket"  # never removed


def test_a_live_unix_listener_is_not_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "live.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as live:
        live.bind(str(path))
        live.listen()
        done = run_warden("--listen", f"unix:{path}", "--", "true")
        assert done.returncode != 0
        assert closing_reason(done.stderr) == (
            f"--listen 'unix:{path}': another process listens on {path} (ss -xlp); "
            "stop it or choose another path"
        )
        assert path.exists()  # the live listener's file was left alone


# -- real servers on warden's sockets --------------------------------------------------------


@needs("uvicorn")
def test_uvicorn_fd_3_behind_the_http_gate(
    procs: Processes, manager: Manager, app_dir: Path
) -> None:
    port = free_port()
    warden = procs.warden(
        *("--listen", f"tcp://127.0.0.1:{port}", "--ready", f"http://127.0.0.1:{port}/"),
        *("--", sys.executable, "-m", "uvicorn", "--fd", "3", "--app-dir", str(app_dir)),
        "app:app",
        env=manager.env,
    )
    manager.wait_for("READY", "1")
    child = int(warden.err.wait_for(r'"name": "pid (\d+)", "detail": "started:').group(1))
    for i in range(5):
        assert http_get(("127.0.0.1", port), f"/r{i}") == (200, f"/r{i} from pid {child}")
    warden.kill(signal.SIGTERM)
    assert warden.wait() in (0, 128 + signal.SIGTERM)  # uvicorn re-raises SIGTERM on itself


@needs("hypercorn")
def test_hypercorn_fd_3_behind_the_http_gate(
    procs: Processes, manager: Manager, app_dir: Path
) -> None:
    port = free_port()
    warden = procs.warden(
        *("--listen", f"tcp://127.0.0.1:{port}", "--ready", f"http://127.0.0.1:{port}/"),
        *("--", sys.executable, "-m", "hypercorn", "--bind", "fd://3", "app:app"),
        env={**manager.env, "PYTHONPATH": str(app_dir)},
    )
    manager.wait_for("READY", "1")
    answered = set()
    for i in range(5):
        status, body = http_get(("127.0.0.1", port), f"/r{i}")
        assert status == 200
        path, _, pid = body.partition(" from pid ")
        assert path == f"/r{i}"
        answered.add(int(pid))
    assert len(answered) == 1
    assert answered <= set(descendants(warden.pid))
    warden.kill(signal.SIGTERM)
    assert warden.wait() == 0


# gunicorn's arbiter sends READY=1 in Arbiter.start(), before manage_workers() forks the
# workers that import the app (gunicorn/arbiter.py; preload_app is off by default). This app's
# import blocks until the test releases it, then leaves a marker: READY=1 before the marker
# exists is READY before gunicorn can answer a request.
SLOW_WSGI = """\
import os
from pathlib import Path

here = Path(__file__).parent
{wait}(here / "booted").write_text(str(os.getpid()))


def app(environ, start_response):
    body = f"{{environ['PATH_INFO']}} from pid {{os.getpid()}}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


def start_gunicorn(
    procs: Processes, manager: Manager, tmp_path: Path, port: int, ready: str
) -> tuple[Path, Path, int]:
    """warden running gunicorn (1 sync worker) on a held socket; (release fifo, marker, pid)."""
    directory = tmp_path / "gapp"
    directory.mkdir()
    fifo = make_fifo(directory / "release")
    (directory / "slow.py").write_text(
        SLOW_WSGI.format(wait=WAIT_FOR_RELEASE.format(fifo=str(fifo)))
    )
    warden = procs.warden(
        *("--listen", f"tcp://127.0.0.1:{port}", "--ready", ready, "--"),
        *(sys.executable, "-m", "gunicorn", "--chdir", str(directory), "slow:app"),
        # HOME: gunicorn 27 opens a control socket under ~/.gunicorn.
        env={**manager.env, "HOME": str(tmp_path)},
    )
    pid = int(warden.err.wait_for(r'"name": "pid (\d+)", "detail": "started:').group(1))
    return fifo, directory / "booted", pid


@needs("gunicorn")
def test_gunicorn_ready_notify_is_premature(
    procs: Processes, manager: Manager, tmp_path: Path
) -> None:
    """``--ready notify`` trusts gunicorn's READY=1, which it sends before any worker has
    imported the app: warden's READY upward arrives while nothing can answer yet."""
    port = free_port()
    fifo, booted, _ = start_gunicorn(procs, manager, tmp_path, port, "notify")
    ready = manager.wait_for("READY", "1")
    assert not booted.exists()  # the app is still importing: READY=1 is premature
    assert {"STATUS": "Gunicorn arbiter booted"} in manager.up_to(ready)
    release(fifo)
    status, body = http_get(("127.0.0.1", port), "/late")
    assert (status, body) == (200, f"/late from pid {booted.read_text()}")
    procs.wardens[-1].kill(signal.SIGTERM)
    assert procs.wardens[-1].wait() == 0


@needs("gunicorn")
def test_gunicorn_behind_the_http_gate_is_ready_when_a_worker_answers(
    procs: Processes, manager: Manager, tmp_path: Path
) -> None:
    """``--ready http://...``: gunicorn's own READY=1 reaches warden (its STATUS is relayed)
    but warden says READY=1 upward only once a worker answers HTTP."""
    port = free_port()
    fifo, booted, _ = start_gunicorn(procs, manager, tmp_path, port, f"http://127.0.0.1:{port}/")
    status = manager.wait_for("STATUS", "Gunicorn arbiter booted")
    assert all("READY" not in m for m in manager.drain())  # gunicorn's READY=1 was not relayed
    assert not booted.exists()
    release(fifo)
    ready = manager.wait_for("READY", "1", after=status)
    assert booted.exists()  # the worker had imported the app when READY=1 went up
    assert http_get(("127.0.0.1", port), "/now") == (200, f"/now from pid {booted.read_text()}")
    procs.wardens[-1].kill(signal.SIGTERM)
    assert procs.wardens[-1].wait() == 0
    assert [m for m in manager.received if "READY" in m.fields] == [ready]


# -- systemd socket-activates warden ---------------------------------------------------------

SERVER = """\
import json, os
import warden

seen = {k: os.environ.get(k) for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")}
sockets = warden.listen_fds()
report = {
    **seen,
    "pid": os.getpid(),
    "names": [name for name, _ in sockets],
    "left": sorted(k for k in os.environ if k.startswith("LISTEN_")),
}
body = json.dumps(report).encode()
name, listener = sockets[0]
while True:
    conn, _ = listener.accept()
    conn.recv(65536)
    conn.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(body) + body)
    conn.close()
"""


@pytest.mark.skipif(not shutil.which("systemd-socket-activate"), reason="needs systemd")
def test_socket_activated_warden_passes_its_sockets_on(procs: Processes) -> None:
    """``systemd-socket-activate -l 127.0.0.1:PORT --fdname=web`` starts ``warden run`` (at
    the first connection, with LISTEN_FDS=1 for warden's pid); warden re-passes the socket:
    the program sees LISTEN_FDNAMES=web and LISTEN_PID equal to its own pid, and answers."""
    port = free_port()
    server = procs.script("server.py", SERVER)
    activator = subprocess.Popen(
        [
            *("systemd-socket-activate", "-l", f"127.0.0.1:{port}", "--fdname=web"),
            *(sys.executable, "-m", "warden", "run", "--", sys.executable, server),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert activator.stderr is not None
        for line in activator.stderr:  # the activator's first words: it listens
            if f"Listening on 127.0.0.1:{port}" in line:
                break
        status, body = http_get(("127.0.0.1", port), "/")
        assert status == 200
        report = json.loads(body)
        assert report["LISTEN_FDNAMES"] == "web"
        assert report["LISTEN_FDS"] == "1"
        assert report["LISTEN_PID"] == str(report["pid"])
        assert report["names"] == ["web"]
        assert report["left"] == []
        # The activator exec'd warden (same pid): the server is warden's child.
        assert report["pid"] in descendants(activator.pid)
        os.kill(activator.pid, signal.SIGTERM)
        _, log = activator.communicate(timeout=DEADLINE)
        assert activator.returncode == 128 + signal.SIGTERM
        held = [
            json.loads(line)["name"]
            for line in log.splitlines()
            if line.startswith("{") and '"event": "socket"' in line
        ]
        assert held == [f"web=tcp://127.0.0.1:{port} (fd 3)"]
    finally:
        if activator.poll() is None:
            for pid in [activator.pid, *descendants(activator.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            activator.communicate(timeout=DEADLINE)
