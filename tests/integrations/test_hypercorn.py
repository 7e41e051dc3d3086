"""hypercorn under the lifecycle: HTTP/1.1 keep-alive and HTTP/2 clients through a real drain."""

from __future__ import annotations

import signal
import socket

import httpx
import pytest

from tests._proc import Proc
from tests.conftest import Spawn
from tests.integrations._grpc_peers import facts
from tests.integrations._http_peers import raw_request, start

EXAMPLE = "hypercorn_service.py"


def _curl_h2(spawn: Spawn, *urls: str) -> Proc:
    """curl (nghttp2) on HTTP/2 with prior knowledge: one connection for all ``urls``.

    httpx is not used for HTTP/2 here: httpcore fails every open stream on a GOAWAY, even
    one whose last stream id covers them (RFC 9113 §6.8 says they complete).
    """
    return spawn(["curl", "-sS", "-N", "--http2-prior-knowledge", "-w", "%{http_code}\n", *urls])


def test_keep_alive_and_http2_clients_see_no_reset_before_or_during_the_drain(
    spawn: Spawn,
) -> None:
    proc, port = start(spawn, EXAMPLE, "--drain-delay", "2")
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=10) as h1:
        assert h1.get("/").headers.get("connection") != "close"
        # A streamed HTTP/2 response, under way before the signal and through the drain.
        streamed = _curl_h2(spawn, f"{base}/stream?n=25&ms=100")
        streamed.wait_line(r"^0$")
        proc.signal(signal.SIGTERM)
        proc.wait_line(r'"kind": "server.draining"', stream="err")
        during_h2 = _curl_h2(spawn, *(f"{base}/slow?ms=20" for _ in range(10)))
        during_h1 = [h1.get("/") for _ in range(10)]
        assert during_h2.wait(timeout=20) == 0 and streamed.wait(timeout=20) == 0
        assert proc.wait(timeout=20) == 0
    assert streamed.stdout.split() == [*(str(i) for i in range(25)), "200"]
    assert during_h2.stdout.count("slept 20 ms\n200\n") == 10
    for response in during_h1:
        assert response.status_code == 200
        assert response.headers["connection"] == "close"  # the keep-alive client leaves
    assert facts(proc, "server.cut") == []


def test_a_connection_accepted_but_not_read_at_the_stop_is_answered(spawn: Spawn) -> None:
    proc, port = start(spawn, EXAMPLE)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as quiet:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            assert client.get("/").status_code == 200  # the server is past its accept
        proc.signal(signal.SIGTERM)
        proc.wait_line(r'"state": "stopping"', stream="err")
        answer = raw_request(quiet)
    assert answer.startswith(b"HTTP/1.1 200") and b"connection: close" in answer.lower()
    assert proc.wait(timeout=20) == 0


def test_requests_past_the_grace_are_cut_and_named(spawn: Spawn) -> None:
    proc, port = start(spawn, EXAMPLE, "--grace", "0.5", activate=True)
    base = f"http://127.0.0.1:{port}"
    with (
        httpx.Client(base_url=base, timeout=10) as h1,
        h1.stream("GET", "/stream?n=1000&ms=50") as on_h1,
    ):
        lines = on_h1.iter_lines()
        next(lines)
        on_h2 = _curl_h2(spawn, f"{base}/stream?n=1000&ms=50")
        on_h2.wait_line(r"^0$")
        proc.signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        with pytest.raises(httpx.HTTPError):
            list(lines)
    assert on_h2.wait(timeout=10) != 0  # cut: curl says the transfer did not complete
    [report] = facts(proc, "server.cut")
    assert report["grace"] == pytest.approx(0.5)
    assert len(report["cut"]) == 2
    for cut in report["cut"]:
        assert cut["method"] == "GET /stream" and cut["streaming"] is True
        assert cut["peer"].startswith("ipv4:127.0.0.1:")
