"""The server of the kubelet test: examples/http_service.py with warden's health server.

    python pod.py --drain-delay SECONDS

Binds free ports and prints ``listening on http://HOST:PORT`` (the example's line) and
``health http://HOST:PORT``; its deadline comes from $WARDEN_SHUTDOWN_TIMEOUT.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))

import http_service  # noqa: E402

from warden.observe._server import serve_health  # noqa: E402


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
