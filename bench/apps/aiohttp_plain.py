"""The peer: the aiohttp example app run the way aiohttp documents, ``web.run_app``.

python bench/apps/aiohttp_plain.py SHUTDOWN_TIMEOUT     # serves LISTEN_FDS' fd 3
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from aiohttp_service import make_app  # type: ignore[import-not-found, unused-ignore]


def main() -> None:
    sock = socket.socket(fileno=3)
    print("serving HTTP", flush=True)
    web.run_app(make_app(), sock=sock, shutdown_timeout=float(sys.argv[1]), print=None)


if __name__ == "__main__":
    main()
