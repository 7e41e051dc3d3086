"""The gRPC example as a real process, and grpcio's own client to call it."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests._proc import EXAMPLES, Proc, python
from tests.conftest import Spawn

ACTIVATE = str(Path(__file__).with_name("_activate.py"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(spawn: Spawn, *args: str, aio: bool = False, activate: bool = False) -> tuple[Proc, int]:
    """Start examples/grpc_service.py; returns it and its port once it serves."""
    argv = [str(EXAMPLES / "grpc_service.py"), "--trace", *args, *(["--aio"] if aio else [])]
    if activate:
        command = python(ACTIVATE, f"grpc=127.0.0.1:{free_port()}", "--", *python(*argv))
    else:
        command = python(*argv, "--port", "0")
    proc = spawn(command)
    port = int(proc.wait_line(r"serving gRPC on port (\d+)").group(1))
    return proc, port


def channel(port: int) -> grpc.Channel:
    return grpc.insecure_channel(f"127.0.0.1:{port}")


def unary(ch: grpc.Channel, method: str) -> grpc.UnaryUnaryMultiCallable:
    return ch.unary_unary(f"/demo.Demo/{method}")


def count(ch: grpc.Channel, request: bytes) -> Iterator[bytes]:
    stream: Iterator[bytes] = ch.unary_stream("/demo.Demo/Count")(request, timeout=20)
    return stream


def health_status(ch: grpc.Channel) -> int:
    stub = health_pb2_grpc.HealthStub(ch)
    reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    return int(reply.status)


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def facts(proc: Proc, kind: str) -> list[dict[str, Any]]:
    """The ``data`` of each logged event of ``kind`` (the JSON log on stderr)."""
    found = []
    for line in proc.err:
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("kind") == kind:
                found.append(record["data"])
    return found
