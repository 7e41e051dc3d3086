"""A gRPC service under warden's lifecycle: health, a unary and a server-streaming RPC.

    python examples/grpc_service.py --port 50051            # its own port
    warden run --listen tcp://127.0.0.1:50051 --ready notify -- python examples/grpc_service.py

Under ``warden run --listen`` (or systemd socket activation) it serves the socket it is handed
(LISTEN_FDS) instead of binding one, and says READY=1 once the server accepts RPCs. On
SIGTERM: health NOT_SERVING for ``--drain-delay``, then RPCs in flight get ``--grace`` (within
the shutdown deadline), and those still running are named in a ``server.cut`` log line.

No generated code: the methods are generic handlers on raw bytes.

* ``/demo.Demo/Sleep``: unary; the request is a number of milliseconds to work (it stops
  early when the RPC is cancelled);
* ``/demo.Demo/Count``: server-streaming; the request is ``N`` or ``N,MS``: N messages, MS
  milliseconds apart;
* ``/demo.Demo/Hang``: unary, a sync handler that never looks at its context (a call into a
  library that blocks): the stop must not wait for it;
* ``grpc.health.v1.Health``: SERVING, NOT_SERVING once the stop begins.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import grpc.aio

import warden
from warden.integrations.grpc import AioGrpcServer, GrpcServer
from warden.lifecycle import Event, State, StateChanged

SERVICE = "demo.Demo"


def _count_args(request: bytes) -> tuple[int, float]:
    n, _, ms = request.decode().partition(",")
    return int(n), float(ms or "50") / 1000


TRACE = False  # --trace: say on stdout when each handler begins (tests wait for it)


def _began(method: str) -> None:
    if TRACE:
        print(f"began {method}", flush=True)


def sleep(request: bytes, context: grpc.ServicerContext) -> bytes:
    _began("Sleep")
    ms = float(request.decode() or "100")
    cancelled = threading.Event()
    context.add_callback(cancelled.set)
    cancelled.wait(ms / 1000)
    return f"slept {ms:g} ms".encode()


def count(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    n, pause = _count_args(request)
    _began("Count")
    for i in range(n):
        if i:
            time.sleep(pause)
        yield str(i).encode()


def hang(request: bytes, context: grpc.ServicerContext) -> bytes:
    _began("Hang")
    threading.Event().wait()  # never returns, never checks the context
    return b""


async def aio_sleep(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    _began("Sleep")
    ms = float(request.decode() or "100")
    await asyncio.sleep(ms / 1000)
    return f"slept {ms:g} ms".encode()


async def aio_count(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    n, pause = _count_args(request)
    _began("Count")
    for i in range(n):
        if i:
            await asyncio.sleep(pause)
        yield str(i).encode()


def handlers(use_aio: bool) -> grpc.GenericRpcHandler:
    """The demo service's methods; ``Hang`` is sync in both (aio runs it on a thread)."""
    unary, stream = grpc.unary_unary_rpc_method_handler, grpc.unary_stream_rpc_method_handler
    methods: dict[str, Any] = {
        "Sleep": unary(aio_sleep if use_aio else sleep),
        "Count": stream(aio_count if use_aio else count),
        "Hang": unary(hang),
    }
    return grpc.method_handlers_generic_handler(SERVICE, methods)


def build(args: argparse.Namespace) -> tuple[warden.Lifecycle, GrpcServer | AioGrpcServer]:
    lifecycle = warden.Lifecycle(
        drain_delay=args.drain_delay, shutdown_timeout=args.shutdown_timeout
    )
    handed = [sock for _, sock in warden.listen_fds()]
    kind = AioGrpcServer if args.aio else GrpcServer
    server = kind(
        lifecycle,
        lambda s: s.add_generic_rpc_handlers([handlers(args.aio)]),
        sockets=handed,
        address=None if handed else f"{args.host}:{args.port}",
        grace=args.grace,
    )
    return lifecycle, server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50051, help="when no socket is handed")
    parser.add_argument("--aio", action="store_true", help="grpc.aio instead of grpc.server")
    parser.add_argument("--drain-delay", type=float, default=0.0)
    parser.add_argument("--grace", type=float, default=None)
    parser.add_argument("--shutdown-timeout", type=float, default=None)
    parser.add_argument("--trace", action="store_true", help="print when each handler begins")
    args = parser.parse_args(argv)
    global TRACE
    TRACE = args.trace
    lifecycle, server = build(args)

    def announce(event: Event) -> None:
        if isinstance(event.fact, StateChanged) and event.fact.state is State.READY:
            print(f"serving gRPC on port {server.port}", flush=True)

    lifecycle.timeline.subscribe(announce)
    warden.log_events(lifecycle)
    warden.notify_systemd(lifecycle)
    return lifecycle.run()


if __name__ == "__main__":
    sys.exit(main())
