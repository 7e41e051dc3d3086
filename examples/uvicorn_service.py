"""An ASGI app on uvicorn under warden's lifecycle.

    python examples/uvicorn_service.py --port 8000 --drain-delay 5
    warden run --listen tcp://127.0.0.1:8000 --ready notify -- python examples/uvicorn_service.py

Serves the socket it is handed (LISTEN_FDS) or binds ``--port``; READY=1 once uvicorn serves.
On SIGTERM: for ``--drain-delay`` every answer says ``Connection: close`` while everything is
still answered; then uvicorn stops within ``--grace`` (and the deadline), naming what it cut.
Endpoints: see ``_asgi_demo.py``.
"""

from __future__ import annotations

import argparse
import sys

from _asgi_demo import app

import warden
from warden.integrations.uvicorn import UvicornServer
from warden.lifecycle import Event, State, StateChanged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="when no socket is handed")
    parser.add_argument("--drain-delay", type=float, default=0.0)
    parser.add_argument("--grace", type=float, default=None)
    parser.add_argument("--shutdown-timeout", type=float, default=None)
    args = parser.parse_args(argv)
    lifecycle = warden.Lifecycle(
        drain_delay=args.drain_delay, shutdown_timeout=args.shutdown_timeout
    )
    handed = [sock for _, sock in warden.listen_fds()]
    server = UvicornServer(
        lifecycle,
        app,
        sockets=handed,
        address=None if handed else f"{args.host}:{args.port}",
        grace=args.grace,
    )

    def announce(event: Event) -> None:
        if isinstance(event.fact, StateChanged) and event.fact.state is State.READY:
            print(f"serving HTTP on port {server.port}", flush=True)

    lifecycle.timeline.subscribe(announce)
    warden.log_events(lifecycle)
    warden.notify_systemd(lifecycle)
    return lifecycle.run()


if __name__ == "__main__":
    sys.exit(main())
