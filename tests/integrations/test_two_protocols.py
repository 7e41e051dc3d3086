"""HTTP and gRPC in one process: both drain at once, then stop in the declared order."""

from __future__ import annotations

import signal
import threading
from concurrent.futures import Future

import httpx

from tests._proc import EXAMPLES, python
from tests.conftest import Spawn
from tests.integrations._grpc_peers import (
    ACTIVATE,
    NOT_SERVING,
    channel,
    facts,
    free_port,
    health_status,
    unary,
)


def test_http_stops_before_the_grpc_backend_it_depends_on(spawn: Spawn) -> None:
    proc = spawn(
        python(
            ACTIVATE,
            f"http=127.0.0.1:{free_port()}",
            f"grpc=127.0.0.1:{free_port()}",
            "--",
            *python(str(EXAMPLES / "grpc_http_service.py"), "--drain-delay", "1"),
        )
    )
    match = proc.wait_line(r"serving HTTP on port (\d+) and gRPC on port (\d+)")
    http_port, grpc_port = int(match.group(1)), int(match.group(2))
    with channel(grpc_port) as ch, httpx.Client(timeout=10) as client:
        rpc: Future[bytes] = unary(ch, "Sleep").future(b"1500", timeout=20)
        answers: list[httpx.Response] = []
        slow = threading.Thread(
            target=lambda: answers.append(client.get(f"http://127.0.0.1:{http_port}/slow?ms=1500"))
        )
        slow.start()
        assert client.get(f"http://127.0.0.1:{http_port}/").status_code == 200
        proc.signal(signal.SIGTERM)
        proc.wait_line(r'"kind": "server.draining"', stream="err")
        assert health_status(ch) == NOT_SERVING
        assert proc.wait(timeout=20) == 0
        slow.join(10)
        assert rpc.result(timeout=10) == b"slept 1500 ms"
    assert [a.status_code for a in answers] == [200]
    stopped = [data["component"] for data in facts(proc, "stop")]
    assert stopped == ["http", "grpc"]
    assert {data["component"] for data in facts(proc, "server.draining")} == {"http", "grpc"}
