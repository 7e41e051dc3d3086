"""One service, two protocols: HTTP (hypercorn) and gRPC in one process, one lifecycle.

    python examples/grpc_http_service.py --http-port 8000 --grpc-port 50051
    warden run --listen http=tcp://127.0.0.1:8000 --listen grpc=tcp://127.0.0.1:50051 \\
        --ready notify -- python examples/grpc_http_service.py

The HTTP front is declared to depend on the gRPC backend (``depends_on=["grpc"]``), so it
starts after it and stops before it: at SIGTERM both drain at once (HTTP says
``Connection: close`` and GOAWAY, gRPC's health says NOT_SERVING), then the HTTP server stops
and finishes its requests while gRPC still serves; only then does gRPC stop. Sockets handed
by name (``LISTEN_FDNAMES``: ``http``, ``grpc``) go to their server; otherwise each binds
its port.
"""

from __future__ import annotations

import argparse
import sys

from _asgi_demo import app
from grpc_service import handlers

import warden
from warden.integrations.grpc import GrpcServer
from warden.integrations.hypercorn import HypercornServer
from warden.lifecycle import Event, State, StateChanged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=50051)
    parser.add_argument("--drain-delay", type=float, default=0.0)
    args = parser.parse_args(argv)
    lifecycle = warden.Lifecycle(drain_delay=args.drain_delay)
    handed = dict(warden.listen_fds())
    grpc_server = GrpcServer(
        lifecycle,
        lambda s: s.add_generic_rpc_handlers([handlers(False)]),
        name="grpc",
        sockets=[handed["grpc"]] if "grpc" in handed else [],
        address=None if "grpc" in handed else f"{args.host}:{args.grpc_port}",
    )
    http = HypercornServer(
        lifecycle,
        app,
        name="http",
        sockets=[handed["http"]] if "http" in handed else [],
        address=None if "http" in handed else f"{args.host}:{args.http_port}",
        depends_on=["grpc"],
    )

    def announce(event: Event) -> None:
        if isinstance(event.fact, StateChanged) and event.fact.state is State.READY:
            print(
                f"serving HTTP on port {http.port} and gRPC on port {grpc_server.port}", flush=True
            )

    lifecycle.timeline.subscribe(announce)
    warden.log_events(lifecycle)
    warden.notify_systemd(lifecycle)
    return lifecycle.run()


if __name__ == "__main__":
    sys.exit(main())
