"""Real servers in the corners of an upgrade: gunicorn's old master killed inside the window
(its workers left behind), and hypercorn saying READY=1 from its worker process.

Every fault of a new release, for gunicorn and the other servers, is in
``test_rollback_matrix``. The app reads what it should do from a file the test rewrites (the
deploy): ``v1``/``v2`` answer 200 with their name.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from tests.supervisor._systemd_peers import free_port, needs
from tests.supervisor.conftest import Processes, Warden, children_of, wait_until
from tests.supervisor.test_upgrade import Load, control, gone

WSGI = """\
import os
from pathlib import Path

here = Path(__file__).parent
name = (here / "release").read_text().split()[0]
with open(here / "boots", "a") as boots:  # one line per worker that imports the app
    boots.write(f"{name} {os.getpid()}\\n")


def app(environ, start_response):
    body = f"{name} {os.getpid()}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""

#: An ASGI app that says READY=1 from its lifespan startup: under hypercorn that runs in the
#: worker process, a child of the program warden started.
ASGI = """\
import os

import warden


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                notifier = warden.Notifier.from_environment()
                if notifier is not None:
                    notifier.ready()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    body = f"v1 {os.getpid()}".encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
"""


def gunicorn(procs: Processes, tmp_path: Path, port: int, window: str = "3s") -> Warden:
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "wsgiapp.py").write_text(WSGI)
    (app_dir / "release").write_text("v1")
    warden = procs.warden(
        *("--listen", f"tcp://127.0.0.1:{port}", "--ready", f"http://127.0.0.1:{port}/"),
        *("--upgrade-confirm", window, "--ready-timeout", "5s", "--drain-timeout", "3s", "--"),
        *(sys.executable, "-m", "gunicorn", "-w", "2", "--chdir", str(app_dir), "wsgiapp:app"),
        env={"HOME": str(tmp_path)},  # gunicorn 27 opens a control socket under ~/.gunicorn
    )
    warden.err.wait_for(r'"event": "state", "state": "ready"')
    # Both workers have imported v1 before anything is deployed: a worker of the old release
    # that boots later imports whatever is on disk then (no --preload), as in production.
    boots = app_dir / "boots"
    wait_until(lambda: boots.exists() and boots.read_text().count("v1 ") >= 2, "two v1 workers")
    return warden


def hypercorn(procs: Processes, tmp_path: Path, *access: str) -> Warden:
    (tmp_path / "asgiapp.py").write_text(ASGI)
    port = free_port()
    return procs.warden(
        *("--listen", f"tcp://127.0.0.1:{port}", "--ready", "notify", *access),
        *("--ready-timeout", "5s", "--"),
        *(sys.executable, "-m", "hypercorn", "--bind", "fd://3", "asgiapp:app"),
        env={"PYTHONPATH": str(tmp_path)},
    )


@needs("hypercorn")
def test_hypercorn_ready_from_its_worker_counts_by_default(
    procs: Processes, tmp_path: Path
) -> None:
    warden = hypercorn(procs, tmp_path)
    warden.err.wait_for(r'"event": "state", "state": "ready"')
    warden.kill(signal.SIGTERM)
    assert warden.wait() == 0


@needs("hypercorn")
def test_hypercorn_worker_is_not_the_main_process(procs: Processes, tmp_path: Path) -> None:
    """With ``--notify-access main`` the worker's READY=1 is dropped: the gate times out."""
    warden = hypercorn(procs, tmp_path, "--notify-access", "main")
    assert warden.wait(30) != 0
    failed = [e for e in warden.events("child") if e.get("outcome") == "failed"]
    assert [e["detail"] for e in failed] == ["not ready: failed to become ready within 5s"]


def program_pid(procs: Processes) -> int:
    status = control(procs.control, "status")["status"]
    assert isinstance(status, dict)
    program = status["program"]
    assert isinstance(program, dict) and isinstance(program["pid"], int)
    return program["pid"]


@needs("gunicorn")
def test_gunicorn_master_killed_in_the_window_its_workers_are_stopped_and_v2_serves(
    procs: Processes, tmp_path: Path
) -> None:
    """The old master SIGKILLed inside the window: the new release is promoted at once, and
    the workers the dead master left behind (they still hold the old socket, and would keep
    a place in its reuseport group) get the stop signal before warden closes that socket."""
    port = free_port()
    warden = gunicorn(procs, tmp_path, port, window="30s")
    old = program_pid(procs)
    workers = children_of(old)
    assert len(workers) == 2, workers
    procs.track(old, *workers)
    with Load(port) as load:
        load.wait_for("v1")
        (tmp_path / "app" / "release").write_text("v2")
        replies: list[dict[str, object]] = []
        asking = threading.Thread(
            target=lambda: replies.append(control(procs.control, "upgrade", timeout=30))
        )
        asking.start()
        warden.err.wait_for('"outcome": "confirming"')
        os.kill(old, signal.SIGKILL)
        asking.join(30)  # far sooner than the 30 s window
        assert replies, "no reply"
        record = replies[0]["upgrade"]
        assert isinstance(record, dict) and record["result"] == "ok", record
        assert all(gone(pid) for pid in workers)
        load.wait_for("v2")
    assert warden.proc.poll() is None
    # What the killed master's workers were answering, or had queued, and nothing more.
    assert len(load.failures) <= 2 and not any("timed out" in f for f in load.failures)
    warden.kill(signal.SIGTERM)
    assert warden.wait() == 0
