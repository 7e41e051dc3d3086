"""The peer: the demo gRPC service stopped the way grpcio's own example does.

grpcio's graceful-shutdown example: on SIGTERM, ``server.stop(grace)`` and wait on the event
it returns; the handlers run on a ``concurrent.futures.ThreadPoolExecutor``.

    python bench/apps/grpc_plain.py PORT GRACE
"""

from __future__ import annotations

import signal
import sys
from concurrent import futures
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from grpc_service import handlers  # type: ignore[import-not-found, unused-ignore]


def main() -> None:
    port, grace = int(sys.argv[1]), float(sys.argv[2])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers([handlers(False)])
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()

    def on_sigterm(signum: int, frame: object) -> None:
        server.stop(grace).wait(grace)

    signal.signal(signal.SIGTERM, on_sigterm)
    print(f"serving gRPC on port {port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
