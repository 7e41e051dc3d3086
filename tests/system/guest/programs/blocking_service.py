"""A service on warden's library under systemd: READY=1 and watchdog pings from its event
loop (``warden.notify_systemd``); with ``--block-after S`` its loop blocks S seconds after it
is ready (a hung handler), so it misses its pings.

    blocking_service.py [--block-after SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import warden


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--block-after", type=float)
    args = parser.parse_args()
    lc = warden.Lifecycle()

    async def serve() -> None:
        if args.block_after is not None:
            loop = asyncio.get_running_loop()
            loop.call_later(args.block_after, time.sleep, 3600)  # a handler that hangs
        await asyncio.Event().wait()

    warden.notify_systemd(lc)
    warden.log_events(lc)
    return lc.run(serve)


if __name__ == "__main__":
    sys.exit(main())
