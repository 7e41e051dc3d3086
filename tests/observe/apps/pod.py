"""The server of the kubelet test: examples/http_service.py with warden's health server.

    python pod.py --drain-delay SECONDS

Binds free ports and prints ``listening on http://HOST:PORT`` (the example's line) and
``health http://HOST:PORT``; its deadline comes from $WARDEN_SHUTDOWN_TIMEOUT.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

from warden.observe._server import serve_health

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "http_service.py"
_spec = importlib.util.spec_from_file_location("http_service", EXAMPLE)
assert _spec is not None and _spec.loader is not None
http_service = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(http_service)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--drain-delay", default="0")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        service = argparse.Namespace(
            host="127.0.0.1", port=0, data=f"{data}/jobs.json", drain_delay=args.drain_delay
        )
        lifecycle = http_service.build(service)
        server = serve_health(lifecycle, "127.0.0.1:0")
        print(f"health {server.url}", flush=True)
        code: int = lifecycle.run()
        return code


if __name__ == "__main__":
    sys.exit(main())
