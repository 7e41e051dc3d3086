"""The service of bench_observe.py: examples/http_service.py, with or without warden's health.

    python observe_service.py MODE [--drain-delay S] [--block-on-term S]

MODE: ``none`` (no health server), ``health`` (warden's, not scraped), ``scraped`` (warden's,
scraped once by this process so prometheus_client is loaded), ``prometheus`` (the peer:
prometheus_client's own ``start_http_server``). Prints ``listening on URL`` (the example's line),
``health URL`` where there is one, then ``idle`` once set up. Supervised by
``warden run --health`` (the bench's last SIGTERM case) it runs in mode ``none``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "http_service.py"
_spec = importlib.util.spec_from_file_location("http_service", EXAMPLE)
assert _spec is not None and _spec.loader is not None
http_service = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(http_service)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["none", "health", "scraped", "prometheus"])
    parser.add_argument("--drain-delay", default="5")
    parser.add_argument("--block-on-term", type=float, default=0.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        service = argparse.Namespace(
            host="127.0.0.1", port=0, data=f"{data}/jobs.json", drain_delay=args.drain_delay
        )
        lifecycle = http_service.build(service)
        if args.block_on_term:
            # The loop is stuck in a synchronous call when the signal comes (a slow handler,
            # C code): only a thread of its own can answer /readyz then.
            lifecycle.on_signal(15, lambda _: time.sleep(args.block_on_term))
        if args.mode in ("health", "scraped"):
            from warden.observe._server import serve_health

            server = serve_health(lifecycle, "127.0.0.1:0")
            print(f"health {server.url}", flush=True)
            if args.mode == "scraped":
                urllib.request.urlopen(f"{server.url}/metrics").read()
        elif args.mode == "prometheus":
            import prometheus_client

            httpd, _thread = prometheus_client.start_http_server(0, addr="127.0.0.1")
            print(f"health http://127.0.0.1:{httpd.server_port}", flush=True)
        lifecycle.timeline.subscribe(
            lambda event: print("idle", flush=True) if lifecycle.ready else None
        )
        code: int = lifecycle.run()
        return code


if __name__ == "__main__":
    sys.exit(main())
