"""The standalone health server of a real lifecycle: /readyz, /livez, /metrics, the wedge."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time

import httpx
import pytest

import warden
from tests._proc import ROOT, python
from tests.conftest import Spawn
from tests.observe._http import get, wait_status
from tests.supervisor.conftest import wait_until
from warden.observe._health import Health
from warden.observe._server import HealthServer, bind, serve_health

APP = str(ROOT / "tests" / "observe" / "apps" / "service.py")


def test_readyz_turns_503_at_the_signal_while_livez_stays_200(spawn: Spawn) -> None:
    proc = spawn(python(APP, "--drain", "3"))
    url = proc.wait_line(r"health (\S+)").group(1)
    proc.wait_line("ready")
    assert get(f"{url}/readyz").status_code == 200
    verbose = get(f"{url}/readyz?verbose")
    assert verbose.status_code == 200
    assert "[+]component db started" in verbose.text
    assert "[+]component http started" in verbose.text
    assert "child pid 42 ready" in verbose.text
    proc.signal(signal.SIGTERM)
    draining = wait_status(f"{url}/readyz", 503)
    assert draining.text == "draining\n"
    assert get(f"{url}/livez").status_code == 200  # the drain is not a wedge
    assert "not ready: draining" in get(f"{url}/readyz?verbose").text
    assert proc.wait(15) == 0


def test_readyz_says_503_even_while_the_loop_is_blocked(spawn: Spawn) -> None:
    # The SIGTERM hook blocks the loop for 30 s: only the guard thread saw the signal.
    proc = spawn(python(APP, "--block-on-term", "30", "--wedged-after", "0.5"))
    url = proc.wait_line(r"health (\S+)").group(1)
    proc.wait_line("ready")
    proc.signal(signal.SIGTERM)
    wait_status(f"{url}/readyz", 503)
    wait_status(f"{url}/livez", 503)  # the round trip to the loop does not come back
    assert "wedged" in get(f"{url}/livez").text
    proc.kill()


async def test_livez_fails_while_the_loop_is_wedged_and_recovers() -> None:
    lifecycle = warden.Lifecycle(handle_signals=False)
    server = serve_health(lifecycle, "127.0.0.1:0", wedged_after=0.2)
    async with lifecycle:
        assert (await asyncio.to_thread(get, f"{server.url}/livez")).status_code == 200
        answers: list[httpx.Response] = []
        answered = threading.Event()

        def probe() -> None:
            answers.append(get(f"{server.url}/livez"))
            answers.append(get(f"{server.url}/readyz"))
            answered.set()

        threading.Thread(target=probe).start()
        assert answered.wait(10)  # the wedge itself: the loop is blocked until the probe ends
        assert [a.status_code for a in answers] == [503, 200]
        assert (await asyncio.to_thread(get, f"{server.url}/livez")).status_code == 200
    assert server._thread is not None and not server._thread.is_alive()  # closed at stopped


async def test_metrics_and_unknown_paths() -> None:
    lifecycle = warden.Lifecycle(handle_signals=False)
    server = serve_health(lifecycle, "127.0.0.1:0")
    async with lifecycle:
        scrape = await asyncio.to_thread(get, f"{server.url}/metrics")
        assert scrape.status_code == 200
        assert scrape.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert 'warden_lifecycle_state{state="ready"} 1.0' in scrape.text
        assert (await asyncio.to_thread(get, f"{server.url}/nope")).status_code == 404
        post = await asyncio.to_thread(httpx.post, f"{server.url}/readyz")
        assert post.status_code == 405


def test_bind_refuses_a_bad_or_busy_address() -> None:
    with pytest.raises(warden.ConfigurationError, match="not host:port"):
        bind("localhost")
    with pytest.raises(warden.ConfigurationError, match="not host:port"):
        bind("example.com:80")
    taken = bind("127.0.0.1:0")
    try:
        port = taken.getsockname()[1]
        with pytest.raises(warden.ConfigurationError, match="cannot be bound"):
            bind(f"127.0.0.1:{port}")
    finally:
        taken.close()
    default = bind(":0")
    try:
        assert default.getsockname()[0] == "127.0.0.1"  # loopback by default
    finally:
        default.close()


def test_a_silent_client_does_not_block_the_others() -> None:
    lifecycle = warden.Lifecycle(handle_signals=False)
    server = HealthServer(Health(lifecycle), "127.0.0.1:0")
    server.start()
    try:
        with socket.create_connection(server.address) as silent:
            began = time.monotonic()
            assert get(f"{server.url}/readyz").status_code == 503  # created: not ready
            assert time.monotonic() - began < 5
            silent.sendall(b"GET /livez HTTP/1.1\r\n\r\n")
            assert silent.recv(100).startswith(b"HTTP/1.1 200 OK")
    finally:
        server.close()


def test_connections_held_open_cannot_use_up_the_process_descriptors(spawn: Spawn) -> None:
    from warden.observe._server import MAX_CONNECTIONS

    proc = spawn(python(APP))
    url = proc.wait_line(r"health (\S+)").group(1)
    proc.wait_line("ready")
    host, port = url.removeprefix("http://").rsplit(":", 1)
    before = len(os.listdir(f"/proc/{proc.pid}/fd"))
    held = [socket.create_connection((host, int(port)), timeout=5) for _ in range(200)]
    try:
        for sock in held:
            sock.setblocking(False)

        def closed(sock: socket.socket) -> bool:
            try:
                return sock.recv(1) == b""
            except BlockingIOError:
                return False  # held open by the server, waiting for a request
            except ConnectionError:
                return True  # reset: evicted to make room for a newer one

        # Past the cap the oldest connection still silent is reset for each newcomer; the
        # newest are closed only at the request deadline, long after this settles.
        wait_until(lambda: sum(closed(s) for s in held) >= len(held) - MAX_CONNECTIONS, "the cap")
        assert sum(not closed(s) for s in held) == MAX_CONNECTIONS  # served: held open
        assert len(os.listdir(f"/proc/{proc.pid}/fd")) <= before + MAX_CONNECTIONS + 2
    finally:
        for sock in held:
            sock.close()
    assert get(f"{url}/livez").status_code == 200  # and it answers once they are gone
    proc.signal(signal.SIGTERM)
    assert proc.wait(15) == 0


def _silent(server: HealthServer, count: int) -> list[socket.socket]:
    """``count`` connections that send nothing, once the server holds them all."""
    held = [socket.create_connection(server.address, timeout=5) for _ in range(count)]
    wait_until(lambda: server.connections is not None and len(server.connections) == count, "held")
    return held


def _reset(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_a_newcomer_evicts_the_connection_that_waited_longest() -> None:
    from warden.observe._server import MAX_CONNECTIONS

    lifecycle = warden.Lifecycle(handle_signals=False)
    server = HealthServer(Health(lifecycle), "127.0.0.1:0")
    server.start()
    held = _silent(server, MAX_CONNECTIONS)
    try:
        assert get(f"{server.url}/livez").status_code == 200  # answered, the cap full
        assert _reset(held[0])  # the oldest silent one made room
        assert server.connections is not None and server.connections.evicted == 1
        held[1].setblocking(False)
        with pytest.raises(BlockingIOError):
            held[1].recv(1)  # the next oldest is still held
    finally:
        for sock in held:
            sock.close()
        # Once all are gone, the deadline timer is too: nothing wakes the idle server.
        # The server's thread clears the timer right after the last connection goes: wait for
        # both, read from this thread.
        wait_until(
            lambda: (
                server.connections is not None
                and len(server.connections) == 0
                and server.connections._timer is None
            ),
            "no connection and no timer left",
        )
        server.close()


def _exchange(server: HealthServer, request: bytes) -> bytes:
    with socket.create_connection(server.address, timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        return answer


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /readyz HTTP/1.1\r\nX-Huge: " + b"a" * 9000, b"431"),  # head over 8 KiB
        (b"GET /readyz HTTP/1.1\r\nX-Slow: a", b"408"),  # not finished in time
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"405"),  # HTTP/2's preface
        (b"nonsense\r\n\r\n", b"400"),
        (b"GET /livez HTTP/1.0\n\n", b"200"),  # bare line feeds, as printf | nc sends
        (b"HEAD /livez HTTP/1.1\r\n\r\n", b"200"),
    ],
)
def test_each_request_gets_an_answer(request_bytes: bytes, status: bytes) -> None:
    lifecycle = warden.Lifecycle(handle_signals=False)
    server = HealthServer(Health(lifecycle), "127.0.0.1:0")
    server.start()
    try:
        answer = _exchange(server, request_bytes)
    finally:
        server.close()
    assert answer.startswith(b"HTTP/1.1 " + status + b" "), answer
    if request_bytes.startswith(b"HEAD"):
        assert answer.endswith(b"\r\n\r\n")  # no body
