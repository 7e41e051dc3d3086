"""A library service with the standalone health server, for the observe tests.

    python service.py [--drain SECONDS] [--block-on-term SECONDS] [--port PORT]

Prints ``health http://HOST:PORT`` once the server answers, then ``ready`` once the lifecycle
is ready. ``--block-on-term`` makes a SIGTERM hook block the event loop (a wedge on purpose).
"""

from __future__ import annotations

import argparse
import sys
import time

import warden
from warden.observe._server import serve_health


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--drain", type=float, default=0.0)
    parser.add_argument("--block-on-term", type=float, default=0.0)
    parser.add_argument("--wedged-after", type=float, default=5.0)
    args = parser.parse_args()
    lifecycle = warden.Lifecycle(drain_delay=args.drain, shutdown_timeout=args.drain + 10)
    lifecycle.add("db", start=lambda: None, stop=lambda: None)
    lifecycle.add("http", start=lambda: print("ready", flush=True), depends_on=["db"])
    if args.block_on_term:
        # The wedge under test: the loop runs this hook and nothing else for a while.
        lifecycle.on_signal(15, lambda _: time.sleep(args.block_on_term))
    server = serve_health(
        lifecycle,
        "127.0.0.1:0",
        details=lambda: {"child": "pid 42 ready"},
        wedged_after=args.wedged_after,
    )
    print(f"health {server.url}", flush=True)
    return lifecycle.run()


if __name__ == "__main__":
    sys.exit(main())
