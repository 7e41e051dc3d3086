"""aiohttp under the lifecycle: keep-alive clients through a real drain, and what is cut."""

from __future__ import annotations

import signal
import socket

import httpx
import pytest

from tests.conftest import Spawn
from tests.integrations._grpc_peers import facts
from tests.integrations._http_peers import raw_request, start

EXAMPLE = "aiohttp_service.py"


def test_keep_alive_clients_see_no_reset_before_or_during_the_drain(spawn: Spawn) -> None:
    proc, port = start(spawn, EXAMPLE, "--drain-delay", "2")
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        assert client.get("/").headers.get("connection") != "close"
        with client.stream("GET", "/stream?n=25&ms=100") as streamed:
            lines = streamed.iter_lines()
            seen = [next(lines)]
            proc.signal(signal.SIGTERM)
            proc.wait_line(r'"kind": "server.draining"', stream="err")
            during = [client.get("/slow?ms=20") for _ in range(10)]
            seen.extend(lines)
        assert proc.wait(timeout=20) == 0
    assert seen == [str(i) for i in range(25)]
    for response in during:
        assert response.status_code == 200
        assert response.headers["connection"] == "close"  # the client leaves on its own
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
    with (
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client,
        client.stream("GET", "/stream?n=1000&ms=50") as streamed,
    ):
        lines = streamed.iter_lines()
        next(lines)
        proc.signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        with pytest.raises(httpx.HTTPError):
            list(lines)
    [report] = facts(proc, "server.cut")
    [cut] = report["cut"]
    assert report["grace"] == pytest.approx(0.5)
    assert cut["method"] == "GET /stream" and cut["streaming"] is True
    assert cut["peer"].startswith("ipv4:127.0.0.1:")
