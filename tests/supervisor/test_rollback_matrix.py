"""Broken releases of real servers under load: uvicorn, hypercorn and examples/http_service.py.

gunicorn's rows are in ``test_rollback_servers``. Each case starts a warden serving ``v1`` of a
real server, deploys one broken release (the app reads its name from a file the test rewrites,
as a deploy rewrites the code) and upgrades to it with a load of new connections running:

``import-error`` raises at import; ``exit0`` exits 0 at once; ``never-ready`` never finishes
its start-up; ``late`` crashes 1.5 s after it is ready (inside the window); ``err500`` answers
every request with 500; ``hang`` blocks its event loop 0.5 s after it is ready (its watchdog
pings stop, its health check goes unanswered); ``old-dies``: the new release is good, but the
old one is SIGKILLed inside the window. ``good`` is a good release.

Each server is gated the way docs/supervisor.md says, and is protected from what that gate and the
window can see:

- uvicorn ``--fd 3`` serves fd 3 only, so nothing can probe a new release alone: ``--ready
  notify`` (READY=1 from the app's lifespan startup) and ``--watchdog``. A release answering
  500 passes both and is promoted; its 500s reach clients only once it is (the test checks it).
- hypercorn ``--bind fd://3 --bind fd://4`` serves the shared socket and the release's private
  probe socket: ``--ready http://`` probes the new release alone, in the gate and the window.
- ``examples/http_service.py`` serves every socket it is handed: ``--ready http://`` and
  ``--watchdog`` (it pings from its event loop through ``warden.notify_systemd``).

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
from functools import partial
from pathlib import Path

import pytest

from tests._proc import EXAMPLES
from tests.supervisor._systemd_peers import free_port, needs
from tests.supervisor.conftest import DEADLINE, Processes, Warden, wait_until
from tests.supervisor.test_upgrade import Load, control, gone

#: One app for uvicorn and hypercorn. ``$APP_MASTER=parent``: the server's master is this
#: process's parent (hypercorn's worker), and a crash of the release takes it down too.
ASGI = """\
import asyncio, os, signal, time
from pathlib import Path

import warden
from warden.systemd import ping_forever, watchdog_interval

name = (Path(__file__).parent / "release").read_text().split()[0]
if name == "import-error":
    raise RuntimeError("a broken release")
if name == "exit0":
    os._exit(0)
master = os.getppid() if os.environ.get("APP_MASTER") == "parent" else os.getpid()
tasks = set()


def crash():
    if master != os.getpid():
        os.kill(master, signal.SIGKILL)
    os._exit(1)


def started():
    notifier = warden.Notifier.from_environment()
    if notifier is not None:
        notifier.ready()
        interval = watchdog_interval()
        if interval is not None:
            tasks.add(asyncio.ensure_future(ping_forever(notifier, interval)))
    loop = asyncio.get_running_loop()
    if name == "late":
        loop.call_later(1.5, crash)
    if name == "hang":
        loop.call_later(0.5, time.sleep, 3600)


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


async def answer(self, request_line, body):
    if request_line.split()[1] != "/":
        return await handle(self, request_line, body)
    return (500 if name == "err500" else 200), f"{{name}} {{os.getpid()}}\\n"


async def forever():
    await asyncio.Event().wait()


async def fault():
    loop = asyncio.get_running_loop()
    if name == "late":
        loop.call_later(1.5, os._exit, 1)
    if name == "hang":
        loop.call_later(float(words[1]) if len(words) > 1 else 0.5, time.sleep, 3600)


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
    start: Callable[[Processes, Path, int], Warden]
    #: The faults its gate and window cannot see: the upgrade is "ok" for them.
    unseen: frozenset[str] = frozenset()


def _common(port: int, ready: str) -> tuple[str, ...]:
    return (
        *("--listen", f"tcp://127.0.0.1:{port}", "--ready", ready),
        *("--upgrade-confirm", WINDOW, "--ready-timeout", "2s", "--drain-timeout", "2s"),
    )


def _asgi(procs: Processes, app_dir: Path) -> dict[str, str]:
    (app_dir / "asgiapp.py").write_text(ASGI)
    return {"PYTHONPATH": str(app_dir)}


def uvicorn(procs: Processes, app_dir: Path, port: int) -> Warden:
    return procs.warden(
        *_common(port, "notify"),
        *("--watchdog", "1s", "--"),
        *(sys.executable, "-m", "uvicorn", "--fd", "3", "asgiapp:app"),
        *("--http", "warden.integrations.uvicorn:H11Protocol", "--no-access-log"),
        env=_asgi(procs, app_dir),
    )


def hypercorn(procs: Processes, app_dir: Path, port: int) -> Warden:
    return procs.warden(
        *_common(port, f"http://127.0.0.1:{port}/"),
        "--",
        *(sys.executable, "-m", "hypercorn", "--bind", "fd://3", "--bind", "fd://4"),
        "asgiapp:app",
        env={**_asgi(procs, app_dir), "APP_MASTER": "parent"},
    )


def example(procs: Processes, app_dir: Path, port: int, *, watchdog: bool = True) -> Warden:
    script = procs.script("example_release.py", EXAMPLE)
    return procs.warden(
        *_common(port, f"http://127.0.0.1:{port}/"),
        *(("--watchdog", "1s") if watchdog else ()),
        "--",
        *(script, str(app_dir / "jobs.json")),
    )


SERVERS = {
    "uvicorn": Server("uvicorn", uvicorn, unseen=frozenset({"err500"})),
    "hypercorn": Server("hypercorn", hypercorn),
    "example": Server("example", example),
}

#: What each broken release's upgrade ends as, and a word of its reason.
FAULTS = {
    "import-error": ("failed", "not ready"),
    "exit0": ("failed", "not ready"),
    "never-ready": ("failed", "failed to become ready within 2s"),
    "late": ("rolled back", "after it was ready"),
    "err500": ("failed", "(its probe was answered 500)"),
    "hang": ("rolled back", ""),  # the watchdog's or the health check's words, below
}
HANG_REASON = {"uvicorn": "watchdog timeout", "hypercorn": "health check", "example": "watchdog"}


class Deployed:
    """A warden running ``v1`` of one server, with the test's way to deploy and upgrade."""

    def __init__(self, procs: Processes, server: Server) -> None:
        self.procs = procs
        self.app_dir = procs.tmp_path / "app"
        self.app_dir.mkdir()
        self.deploy("v1")
        self.port = free_port()
        self.warden = server.start(procs, self.app_dir, self.port)
        self.warden.err.wait_for(r'"event": "state", "state": "ready"')
        self.first = self.program_pid()
        procs.track(self.first)

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
        for fault in (*FAULTS, "old-dies", "good"):
            marks = [needs(name)] if name != "example" else []
            made.append(pytest.param(server, fault, id=f"{name}-{fault}", marks=marks))
    return made


@pytest.mark.parametrize(("server", "fault"), cases())
def test_broken_release_leaves_the_old_one_serving(
    procs: Processes, server: Server, fault: str
) -> None:
    service = Deployed(procs, server)
    if fault in ("old-dies", "good"):
        promoted(service, fault)
        return
    with Load(service.port) as load:
        load.wait_for("v1")
        if fault in server.unseen:
            unseen(service, load, fault)
            return
        record = service.upgrade(fault)
        result, why = FAULTS[fault]
        if fault == "hang":
            why = HANG_REASON[server.name]
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
    service.stop()


def unseen(service: Deployed, load: Load, fault: str) -> None:
    """A fault the server's gate cannot see (uvicorn answering 500): it is promoted, and its
    500s reach clients only from then on: the window kept real traffic off it."""
    replies: list[dict[str, object]] = []
    asking = threading.Thread(target=lambda: replies.append(service.upgrade(fault)))
    asking.start()
    service.warden.err.wait_for('"outcome": "promoted"')
    before = len(load.failures)  # at most the few that raced the log line
    asking.join(DEADLINE)
    assert replies and replies[0]["result"] == "ok", replies
    wait_until(lambda: len(load.failures) > before + 10, "500s of the promoted release")
    assert before <= 3, load.failures[:before]
    assert service.warden.proc.poll() is None
    assert set(load.answers) == {"v1"} and set(load.failures) == {"status 500"}
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
    """No watchdog: only the health check sees the hang, 2.2 s into a 3 s window. Its first
    unanswered probe fails after the window's end (the probe's own timeout); the window waits
    for a passed check, and the second failure rolls back."""
    service = Deployed(procs, Server("example", partial(example, watchdog=False)))
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
def test_an_http_gate_on_a_server_serving_fd_3_only_fails_every_upgrade_and_says_why(
    procs: Processes,
) -> None:
    """``uvicorn --fd 3`` never serves the probe socket (fd 4): a good release fails its
    gate, the old one keeps serving, and the reason names the fix."""
    port = free_port()
    app_dir = procs.tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "release").write_text("v1")
    warden = procs.warden(
        *_common(port, f"http://127.0.0.1:{port}/"),
        *("--", sys.executable, "-m", "uvicorn", "--fd", "3", "asgiapp:app"),
        env=_asgi(procs, app_dir),
    )
    warden.err.wait_for(r'"event": "state", "state": "ready"')  # probed on fd 3 at start
    (app_dir / "release").write_text("v2")
    reply = control(procs.control, "upgrade", timeout=DEADLINE)
    record = reply["upgrade"]
    assert isinstance(record, dict) and record["result"] == "failed", reply
    assert "nothing answered on its warden-probe socket" in str(record["detail"]), record
    assert warden.proc.poll() is None
    warden.kill(signal.SIGTERM)
    assert warden.wait() in (0, 128 + signal.SIGTERM)
