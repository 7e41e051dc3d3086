"""gRPC servers under the lifecycle: real processes, grpcio's client, SIGTERM mid-RPC."""

from __future__ import annotations

import signal
import threading
from concurrent.futures import Future

import grpc
import pytest

from tests.conftest import Spawn
from tests.integrations._grpc_peers import (
    NOT_SERVING,
    SERVING,
    channel,
    count,
    facts,
    health_status,
    start,
    unary,
)

pytestmark = pytest.mark.parametrize("aio", [False, True], ids=["sync", "aio"])


def _drain_stream(stream: object, into: list[bytes], errors: list[grpc.RpcError]) -> None:
    try:
        for item in stream:  # type: ignore[attr-defined]
            into.append(item)
    except grpc.RpcError as exc:
        errors.append(exc)


def test_rpcs_in_flight_at_sigterm_finish_within_the_grace(spawn: Spawn, aio: bool) -> None:
    proc, port = start(spawn, "--grace", "5", aio=aio)
    with channel(port) as ch:
        assert health_status(ch) == SERVING
        reply: Future[bytes] = unary(ch, "Sleep").future(b"600", timeout=20)
        proc.wait_line("began Sleep")
        stream = count(ch, b"8,60")
        items: list[bytes] = [next(iter(stream))]  # the handler is running
        errors: list[grpc.RpcError] = []
        reader = threading.Thread(target=_drain_stream, args=(stream, items, errors))
        reader.start()
        proc.signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        reader.join(10)
    assert reply.result(timeout=10) == b"slept 600 ms"
    assert items == [str(i).encode() for i in range(8)] and errors == []
    assert facts(proc, "server.cut") == []


def test_rpcs_past_the_grace_are_cancelled_and_named(spawn: Spawn, aio: bool) -> None:
    proc, port = start(spawn, "--grace", "0.5", aio=aio, activate=True)
    with channel(port) as ch:
        reply: Future[bytes] = unary(ch, "Sleep").future(b"30000", timeout=20)
        proc.wait_line("began Sleep")
        stream = count(ch, b"1000,50")
        items: list[bytes] = [next(iter(stream))]
        errors: list[grpc.RpcError] = []
        reader = threading.Thread(target=_drain_stream, args=(stream, items, errors))
        reader.start()
        proc.signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        reader.join(10)
        with pytest.raises(grpc.RpcError) as cut_unary:
            reply.result(timeout=10)
    assert cut_unary.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
    assert len(errors) == 1 and len(items) < 1000
    [report] = facts(proc, "server.cut")
    assert report["component"] == "grpc" and report["grace"] == pytest.approx(0.5)
    by_method = {cut["method"]: cut for cut in report["cut"]}
    assert set(by_method) == {"/demo.Demo/Sleep", "/demo.Demo/Count"}
    assert by_method["/demo.Demo/Sleep"]["streaming"] is False
    assert by_method["/demo.Demo/Count"]["streaming"] is True
    for cut in report["cut"]:
        # The socket was handed over (LISTEN_FDS) and relayed: the peer is still the client.
        assert cut["peer"].startswith("ipv4:127.0.0.1:")
        assert cut["age"] >= 0.5


def test_a_sync_handler_deaf_to_cancellation_cannot_hold_the_process(
    spawn: Spawn, aio: bool
) -> None:
    # Without a grace of its own the stop may use the whole deadline, less a reserve for the
    # exit: the process ends by itself (0), not by the deadline guard (124) or not at all.
    proc, port = start(spawn, "--shutdown-timeout", "2", aio=aio)
    with channel(port) as ch:
        reply: Future[bytes] = unary(ch, "Hang").future(b"", timeout=20)
        proc.wait_line("began Hang")
        proc.signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        with pytest.raises(grpc.RpcError):
            reply.result(timeout=10)
    [report] = facts(proc, "server.cut")
    [cut] = report["cut"]
    assert cut["method"] == "/demo.Demo/Hang" and cut["thread_held"] is True
    assert 1.5 < report["grace"] < 2.0
    # Its thread is a daemon: abandoned at exit, not a leak that holds the process. (grpc.aio
    # may leave the cut call's own task pending, grpc #28999: the leak report names it.)
    assert [leak for leak in facts(proc, "leak") if leak["leak"]["kind"] == "thread"] == []


def test_health_says_not_serving_while_the_drain_delay_still_answers(
    spawn: Spawn, aio: bool
) -> None:
    proc, port = start(spawn, "--drain-delay", "3", aio=aio)
    with channel(port) as ch:
        assert health_status(ch) == SERVING
        proc.signal(signal.SIGTERM)
        proc.wait_line(r'"kind": "server.draining"', stream="err")
        assert health_status(ch) == NOT_SERVING
        assert unary(ch, "Sleep")(b"10", timeout=5) == b"slept 10 ms"  # still served
        assert proc.wait(timeout=20) == 0
