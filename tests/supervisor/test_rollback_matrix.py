"""Broken releases of real servers under load: the fault matrix, for four servers and one gate.

gunicorn (``-w 2``, sync workers, no ``--preload``), ``uvicorn --fd 3``, hypercorn with one
``--bind fd://3`` and ``examples/http_service.py``, each gated with one ``--ready
http://HOST:PORT/`` on the port warden holds: during an upgrade warden's probes reach the new
release alone through that port (reuseport steering, ``sockets/_steering.py``), whatever the
server serves. Each case starts a warden serving ``v1``, deploys one broken release (the app
reads its name from a file the test rewrites, as a deploy rewrites the code) and upgrades to
it with a load of new connections running:

``import-error`` raises at import; ``exit0`` exits 0 at once (gunicorn: each worker, and its
master respawns them); ``never-ready`` never finishes its start-up; ``late`` crashes 1.5 s
after it is ready (gunicorn: its master is SIGKILLed 1 s after its workers import the app);
``workers``: its worker processes crash 1.5 s after they are ready and its master starts new
ones (gunicorn ``-w 2``; uvicorn with ``--workers 2``; hypercorn's master ends with its worker;
the example has no workers); ``err500`` answers every request with 500; ``hang`` stops
answering 0.5 s after its first answer (the gate's probe: a hang that began before the gate
passed would fail the gate, not the window); ``old-dies``: the new release is good, but the
old one is SIGKILLed inside the window. ``good`` is a good release.

Then the same servers under ``--ready notify --upgrade-confirm-url http://...``: READY=1 says
nothing of the answers, the URL checked in the window does.

Every case: no failed request, warden still running, the old version answering afterwards
(the new one for ``good`` and ``old-dies``), and the status naming the outcome and its reason.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests._proc import EXAMPLES
from tests.supervisor._systemd_peers import free_port, needs
from tests.supervisor.conftest import DEADLINE, Processes, Warden, wait_until
from tests.supervisor.test_upgrade import Load, control, gone

#: gunicorn's app: read as each worker imports it (no --preload, as in production).
WSGI = """\
import os, signal, threading, time
from pathlib import Path

here = Path(__file__).parent
name = (here / "release").read_text().split()[0]
with open(here / "boots", "a") as boots:  # one line per worker that imports the app
    boots.write(f"{name} {os.getpid()}\\n")
if name == "import-error":
    raise RuntimeError("a broken release")
if name == "exit0":
    os._exit(0)
if name == "never-ready":
    time.sleep(3600)
if name == "late":  # serve a little, then the whole release dies (a crash after READY)
    master = os.getppid()  # read now: once the master is gone, the parent is warden
    threading.Timer(1.0, lambda: os.kill(master, signal.SIGKILL)).start()
if name == "workers":  # each worker crashes; its master starts another, which crashes too
    threading.Timer(1.5, os._exit, (1,)).start()


def _first_answer():  # when the release (any of its workers) first answered: one epoch
    mark = here / f"first-answer-{os.getppid()}"
    try:
        fd = os.open(mark, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return mark.stat().st_mtime
    os.close(fd)
    return mark.stat().st_mtime


def app(environ, start_response):
    # The whole release stops answering 0.5 s after its first answer: each worker, whenever
    # its first request comes (per worker, a worker first asked late would answer a check).
    if name == "hang" and time.time() - _first_answer() > 0.5:
        time.sleep(3600)
    body = f"{name} {os.getpid()}".encode()
    status = "500 Internal Server Error" if name == "err500" else "200 OK"
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""

#: One app for uvicorn and hypercorn. ``$APP_MASTER=parent``: the server's master is this
#: process's parent (hypercorn's worker), and a ``late`` crash takes it down too.
ASGI = """\
import asyncio, os, signal, time
from pathlib import Path

import warden

name = (Path(__file__).parent / "release").read_text().split()[0]
with open(Path(__file__).parent / "boots", "a") as boots:  # one line per process importing it
    boots.write(f"{name} {os.getpid()}\\n")
if name == "import-error":
    raise RuntimeError("a broken release")
if name == "exit0":
    os._exit(0)
master = os.getppid() if os.environ.get("APP_MASTER") == "parent" else os.getpid()
served = []


def crash():
    if master != os.getpid():
        os.kill(master, signal.SIGKILL)
    os._exit(1)


def started():
    notifier = warden.Notifier.from_environment()
    if notifier is not None:
        notifier.ready()
    loop = asyncio.get_running_loop()
    if name == "late":
        loop.call_later(1.5, crash)
    if name == "workers":  # this process only: a master that respawns it starts another
        loop.call_later(1.5, os._exit, 1)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if name == "never-ready":
                    await asyncio.Event().wait()
                started()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if name == "hang" and not served:  # its event loop blocks 0.5 s after its first answer
        asyncio.get_running_loop().call_later(0.5, time.sleep, 3600)
    served.append(1)
    body = f"{name} {os.getpid()}".encode()
    status = 500 if name == "err500" else 200
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
"""

#: examples/http_service.py, with the release's faults put in from outside.
EXAMPLE = f"""\
import argparse, asyncio, importlib.util, os, sys, time
from pathlib import Path

words = (Path(sys.argv[1]).parent / "release").read_text().split()
name = words[0]
if name == "import-error":
    raise RuntimeError("a broken release")
if name == "exit0":
    sys.exit(0)
spec = importlib.util.spec_from_file_location("http_service", {str(EXAMPLES / "http_service.py")!r})
service = importlib.util.module_from_spec(spec)
spec.loader.exec_module(service)
service._REASONS[500] = "Internal Server Error"
handle = service.Http._handle
served = []


async def answer(self, request_line, body):
    if request_line.split()[1] != "/":
        return await handle(self, request_line, body)
    if name == "hang" and not served:  # its event loop blocks a while after its first answer
        delay = float(words[1]) if len(words) > 1 else 0.5
        asyncio.get_running_loop().call_later(delay, time.sleep, 3600)
    served.append(1)
    return (500 if name == "err500" else 200), f"{{name}} {{os.getpid()}}\\n"


async def forever():
    await asyncio.Event().wait()


async def fault():
    loop = asyncio.get_running_loop()
    if name == "late":
        loop.call_later(1.5, os._exit, 1)


service.Http._handle = answer
if name == "never-ready":
    service.Jobs.start = lambda self: forever()
args = argparse.Namespace(host="127.0.0.1", port=0, data=sys.argv[1], drain_delay="0")
lifecycle = service.build(args)
lifecycle.add("fault", start=fault, depends_on=["http"])
sys.exit(lifecycle.run())
"""

#: Short enough for a test, long enough for "late" (1.5 s after ready) to fall inside.
WINDOW = "3s"


@dataclass(frozen=True)
class Server:
    name: str
    #: (procs, app dir, port, gate options, fault) -> a warden serving v1 of it.
    start: Callable[[Processes, Path, int, tuple[str, ...], str], Warden]
    #: fault -> how many processes import the app (and write a line to ``boots``): each has
    #: imported v1 before anything is deployed, or one that boots later would import the
    #: broken release into the old one (no --preload, as in production).
    workers: Callable[[str], int] = lambda fault: 0


def gate_options(gate: str, port: int) -> tuple[str, ...]:
    url = f"http://127.0.0.1:{port}/"
    if gate == "http":
        return ("--ready", url)
    return ("--ready", "notify", "--upgrade-confirm-url", url)


def _common(port: int, gate: tuple[str, ...]) -> tuple[str, ...]:
    return (
        *("--listen", f"tcp://127.0.0.1:{port}", *gate),
        *("--upgrade-confirm", WINDOW, "--ready-timeout", "5s", "--drain-timeout", "2s"),
    )


def gunicorn(
    procs: Processes, app_dir: Path, port: int, gate: tuple[str, ...], fault: str
) -> Warden:
    (app_dir / "wsgiapp.py").write_text(WSGI)
    return procs.warden(
        *_common(port, gate),
        "--",
        *(sys.executable, "-m", "gunicorn", "-w", "2", "--chdir", str(app_dir), "wsgiapp:app"),
        env={"HOME": str(app_dir)},  # gunicorn 27 opens a control socket under ~/.gunicorn
    )


def _asgi(app_dir: Path) -> dict[str, str]:
    (app_dir / "asgiapp.py").write_text(ASGI)
    path = os.pathsep.join(filter(None, (str(app_dir), os.environ.get("PYTHONPATH"))))
    return {"PYTHONPATH": path}


def uvicorn(
    procs: Processes, app_dir: Path, port: int, gate: tuple[str, ...], fault: str
) -> Warden:
    return procs.warden(
        *_common(port, gate),
        "--",
        *(sys.executable, "-m", "uvicorn", "--fd", "3", "asgiapp:app", "--no-access-log"),
        *("--http", "warden.integrations.uvicorn:H11Protocol"),
        *(("--workers", "2") if fault == "workers" else ()),
        env=_asgi(app_dir),
    )


def hypercorn(
    procs: Processes, app_dir: Path, port: int, gate: tuple[str, ...], fault: str
) -> Warden:
    return procs.warden(
        *_common(port, gate),
        "--",
        *(sys.executable, "-m", "hypercorn", "--bind", "fd://3", "asgiapp:app"),
        env={**_asgi(app_dir), "APP_MASTER": "parent"},
    )


def example(
    procs: Processes, app_dir: Path, port: int, gate: tuple[str, ...], fault: str
) -> Warden:
    script = procs.script("example_release.py", EXAMPLE)
    return procs.warden(*_common(port, gate), "--", script, str(app_dir / "jobs.json"))


SERVERS = {
    "gunicorn": Server("gunicorn", gunicorn, workers=lambda fault: 2),
    "uvicorn": Server("uvicorn", uvicorn, workers=lambda fault: 2 if fault == "workers" else 1),
    "hypercorn": Server("hypercorn", hypercorn),
    "example": Server("example", example),
}

#: What each broken release's upgrade ends as under ``--ready http``, and a word of its reason.
FAULTS = {
    "import-error": ("failed", "not ready"),
    "exit0": ("failed", "not ready"),
    "never-ready": ("failed", "not ready"),
    "late": ("rolled back", "after it was ready"),
    "workers": ("rolled back", "after it was ready"),
    "err500": ("failed", "(its probe was answered 500)"),
    "hang": ("rolled back", "did not answer 2xx/3xx"),
}
#: Under ``--ready notify --upgrade-confirm-url``: READY=1 passes, the window sees the rest.
NOTIFY_FAULTS = {
    "workers": ("rolled back", "after it was ready"),
    "err500": ("rolled back", "did not answer 2xx/3xx (its probe was answered 500)"),
}
#: The example is one process: it has no workers to crash (its own crash is ``late``).
NO_WORKERS = {"example"}


class Deployed:
    """A warden running ``v1`` of one server, with the test's way to deploy and upgrade."""

    def __init__(self, procs: Processes, server: Server, gate: str, fault: str) -> None:
        self.procs = procs
        self.app_dir = procs.tmp_path / "app"
        self.app_dir.mkdir()
        self.deploy("v1")
        self.port = free_port()
        self.warden = server.start(
            procs, self.app_dir, self.port, gate_options(gate, self.port), fault
        )
        self.warden.err.wait_for(r'"event": "state", "state": "ready"')
        self.first = self.program_pid()
        procs.track(self.first)
        workers = server.workers(fault)
        if workers:
            boots = self.app_dir / "boots"
            wait_until(
                lambda: boots.exists() and boots.read_text().count("v1 ") >= workers,
                f"{workers} v1 workers",
            )

    def deploy(self, *release: str) -> None:
        (self.app_dir / "release").write_text(" ".join(release))

    def status(self) -> dict[str, object]:
        status = control(self.procs.control, "status")["status"]
        assert isinstance(status, dict)
        return status

    def program_pid(self) -> int:
        program = self.status()["program"]
        assert isinstance(program, dict) and isinstance(program["pid"], int)
        return program["pid"]

    def upgrade(self, *release: str) -> dict[str, object]:
        self.deploy(*release)
        reply = control(self.procs.control, "upgrade", timeout=DEADLINE)
        record = reply["upgrade"]
        assert isinstance(record, dict)
        assert reply["ok"] is (record["result"] == "ok"), reply
        return record

    def stop(self) -> None:
        self.warden.kill(signal.SIGTERM)
        code = self.warden.wait()
        # uvicorn re-raises the SIGTERM once it has stopped gracefully.
        assert code in (0, 128 + signal.SIGTERM), code


def cases() -> list[object]:
    made: list[object] = []
    for name, server in SERVERS.items():
        marks = [needs(name), pytest.mark.slow] if name != "example" else [pytest.mark.slow]
        for fault in (*FAULTS, "old-dies", "good"):
            if fault == "workers" and name in NO_WORKERS:
                continue
            made.append(pytest.param(server, "http", fault, id=f"{name}-http-{fault}", marks=marks))
        for fault in (*NOTIFY_FAULTS, "good"):
            if fault == "workers" and name in NO_WORKERS:
                continue
            made.append(
                pytest.param(server, "notify", fault, id=f"{name}-notify-{fault}", marks=marks)
            )
    return made


@pytest.mark.parametrize(("server", "gate", "fault"), cases())
def test_broken_release_leaves_the_old_one_serving(
    procs: Processes, server: Server, gate: str, fault: str
) -> None:
    service = Deployed(procs, server, gate, fault)
    if fault in ("old-dies", "good"):
        promoted(service, fault)
        return
    with Load(service.port) as load:
        load.wait_for("v1")
        record = service.upgrade(fault)
        result, why = (FAULTS if gate == "http" else NOTIFY_FAULTS)[fault]
        detail = str(record["detail"])
        assert record["result"] == result, record
        assert why in detail and f"pid {service.first} keeps serving" in detail, record
        new = record["new_pid"]
        assert isinstance(new, int) and gone(new), record
        load.wait_for("v1")
    assert load.failures == [], load.failures[:5]
    assert set(load.answers) == {"v1"}  # the new release never got a real request
    assert not gone(service.first) and service.warden.proc.poll() is None
    assert service.program_pid() == service.first
    upgrades = service.status()["upgrade"]
    assert isinstance(upgrades, dict) and isinstance(upgrades["last"], dict)
    assert {k: upgrades["last"][k] for k in ("result", "detail", "new_pid")} == {
        k: record[k] for k in ("result", "detail", "new_pid")
    }
    # What a person sees: `warden status` names the outcome and its reason.
    shown = subprocess.run(
        [sys.executable, "-m", "warden", "status", "--control", str(procs.control)],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=True,
    ).stdout
    assert f"last: {result} " in shown and why in shown, shown
    if result == "rolled back":
        assert "0 ok, 0 failed, 1 rolled back" in shown, shown
    outcomes = [e for e in service.warden.events("upgrade") if e.get("outcome") == result]
    assert len(outcomes) == 1 and outcomes[0]["level"] == "warning", outcomes
    # Every probe reached the new release alone: nothing warned that it could not.
    assert not [e for e in service.warden.events("upgrade") if e.get("outcome") == "warning"]
    service.stop()


def promoted(service: Deployed, fault: str) -> None:
    """``good``: a plain upgrade through the window. ``old-dies``: the old release is killed
    inside a long window; the new one is promoted at once."""
    with Load(service.port) as load:
        load.wait_for("v1")
        if fault == "good":
            record = service.upgrade("v2")
        else:
            service.deploy("v2")
            replies: list[dict[str, object]] = []
            asking = threading.Thread(
                target=lambda: replies.append(control(service.procs.control, "upgrade"))
            )
            asking.start()
            service.warden.err.wait_for('"outcome": "confirming"')
            os.kill(service.first, signal.SIGKILL)
            asking.join(DEADLINE)
            assert replies, "no reply to the upgrade"
            record = replies[0]["upgrade"]  # type: ignore[assignment]
            assert isinstance(record, dict)
        assert record["result"] == "ok", record
        load.wait_for("v2")
    assert gone(service.first)
    assert service.program_pid() == record["new_pid"]
    assert service.warden.proc.poll() is None
    if fault == "good":
        assert load.failures == [], load.failures[:5]
        assert re.fullmatch(r"pid \d+ -> \d+; pid \d+ .*", str(record["detail"])), record
    else:
        # SIGKILL loses what the old release was answering at that instant (or had queued),
        # nothing more: no request waits for a socket nobody accepts from.
        assert len(load.failures) <= 2, load.failures
        assert not any("timed out" in f for f in load.failures), load.failures
        # The new release's sockets are the program's now: the next upgrade hands them on.
        with Load(service.port) as load:
            load.wait_for("v2")
            assert service.upgrade("v3")["result"] == "ok"
            load.wait_for("v3")
        assert load.failures == [], load.failures[:5]
    service.stop()


def test_a_release_hanging_late_in_the_window_is_not_promoted(procs: Processes) -> None:
    """Only the health check sees the hang, 2.2 s after the gate's probe was answered, near the
    end of a 3 s window. Its first unanswered
    probe fails after the window's end (the probe's own timeout); the window waits for a
    passed check, and the second failure rolls back."""
    service = Deployed(procs, Server("example", example), "http", "hang")
    with Load(service.port) as load:
        load.wait_for("v1")
        record = service.upgrade("hang", "2.2")
        assert record["result"] == "rolled back", record
        assert "did not answer 2xx/3xx" in str(record["detail"]), record
        load.wait_for("v1")
    assert load.failures == [], load.failures[:5]
    assert service.program_pid() == service.first
    service.stop()


@needs("uvicorn")
def test_uvicorn_serving_fd_3_only_is_probed_alone_by_an_http_gate(procs: Processes) -> None:
    """The case the private probe socket could not serve (uvicorn serves fd 3 only): a good
    release passes its gate and is promoted, a release answering 500 fails its gate; the
    load never sees either before it is promoted."""
    service = Deployed(procs, SERVERS["uvicorn"], "http", "good")
    with Load(service.port) as load:
        load.wait_for("v1")
        record = service.upgrade("err500")
        assert record["result"] == "failed", record
        assert "(its probe was answered 500)" in str(record["detail"]), record
        record = service.upgrade("v2")
        assert record["result"] == "ok", record
        load.wait_for("v2")
    assert load.failures == [], load.failures[:5]
    assert set(load.answers) == {"v1", "v2"}
    service.stop()


def test_upgrade_confirm_url_must_be_an_http_url(procs: Processes) -> None:
    warden = procs.warden(
        *("--ready", "notify", "--upgrade-confirm-url", "tcp://127.0.0.1:80"), "--", "true"
    )
    assert warden.wait() == 2
    lines = [line for line in warden.err.lines if not line.startswith("{")]
    assert lines == [
        "warden run: error: --upgrade-confirm-url='tcp://127.0.0.1:80' is not an http:// URL; "
        "give e.g. http://127.0.0.1:8000/healthz"
    ], warden.err.lines
