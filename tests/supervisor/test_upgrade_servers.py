"""Upgrades of real servers: uvicorn with warden's protocol keeps a keep-alive client whole."""

from __future__ import annotations

import http.client
import re
import signal
import sys
import threading

from tests.supervisor._systemd_peers import needs
from tests.supervisor.conftest import DEADLINE, Processes, wait_until
from tests.supervisor.test_upgrade import control

#: An ASGI app that says READY=1 from its lifespan startup (uvicorn does not speak sd_notify).
APP = """\
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
    body = f"pid {os.getpid()}".encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
"""


def status(procs: Processes) -> dict[str, object]:
    reply = control(procs.control, "status")
    found = reply["status"]
    assert isinstance(found, dict)
    return found


@needs("uvicorn")
def test_keep_alive_request_during_the_drain_is_answered(procs: Processes) -> None:
    """The old uvicorn, draining, answers the next request on an idle keep-alive connection
    (with ``Connection: close``) instead of closing the connection under it."""
    (procs.tmp_path / "asgi_app.py").write_text(APP)
    warden = procs.warden(
        "--listen",
        "tcp://127.0.0.1:0",
        "--ready",
        "notify",
        # A short window: the client's connection must not sit idle past uvicorn's 5 s
        # keep-alive timeout before the drain this test is about.
        "--upgrade-confirm",
        "0.5s",
        "--",
        sys.executable,
        "-m",
        "uvicorn",
        "--fd",
        "3",
        "--http",
        "warden.integrations.uvicorn:H11Protocol",
        "--app-dir",
        str(procs.tmp_path),
        "asgi_app:app",
    )
    warden.err.wait_for('"outcome": "ready"')
    first = status(procs)
    sockets, program = first["sockets"], first["program"]
    assert isinstance(sockets, list) and isinstance(program, dict)
    match = re.search(r":(\d+) \(fd 3\)", str(sockets[0]))
    assert match
    old_pid = program["pid"]

    client = http.client.HTTPConnection("127.0.0.1", int(match.group(1)), timeout=DEADLINE)
    client.request("GET", "/")
    response = client.getresponse()
    assert (response.status, response.read()) == (200, f"pid {old_pid}".encode())
    assert response.getheader("connection") is None  # kept alive

    replies: list[dict[str, object]] = []
    upgrading = threading.Thread(target=lambda: replies.append(control(procs.control, "upgrade")))
    upgrading.start()

    def promoted() -> bool:
        program = status(procs)["program"]
        return isinstance(program, dict) and program["pid"] != old_pid

    wait_until(promoted, "the new release promoted")
    # The old release has had its SIGTERM; uvicorn acts on it at its next tick (0.1 s).
    warden.err.wait_for("Shutting down")
    # This connection is idle on the old release, which is draining now.
    client.request("GET", "/")
    response = client.getresponse()
    assert (response.status, response.read()) == (200, f"pid {old_pid}".encode())
    assert response.getheader("connection") == "close"
    client.close()
    upgrading.join(DEADLINE)
    assert replies and replies[0]["ok"] is True, replies
    warden.kill(signal.SIGTERM)
    # uvicorn re-raises the signal after its graceful shutdown: it ends killed(SIGTERM).
    assert warden.wait() == 128 + signal.SIGTERM
