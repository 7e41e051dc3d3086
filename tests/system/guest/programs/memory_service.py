"""A service watching its own memory with ``warden.watch_memory`` while it leaks.

    memory_service.py [--cache-mib N] [--mib-per-second R] [--no-stop] [--report PATH]

It first writes N MiB to a file (page cache, charged to its cgroup, which the kernel
reclaims before it OOM-kills: not part of the working set), then allocates R MiB/s until it
is stopped. The sentinel's default actions run at each level; at ``critical`` the graceful
stop ends the leak. ``--no-stop`` takes the stop away (nothing then stops the leak before
the OOM killer). At the end it writes what woke the sentinel and the levels it saw to PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import warden

CHUNK = 2 * 2**20


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cache-mib", type=int, default=0)
    parser.add_argument("--mib-per-second", type=float, default=16.0)
    parser.add_argument("--no-stop", action="store_true")
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args()
    lc = warden.Lifecycle()
    sentinel = warden.watch_memory(lc, critical_actions=[] if args.no_stop else None)
    held: list[bytes] = []

    async def leak() -> None:
        if args.cache_mib:
            cache = Path("/var/tmp/memory-service.cache")
            with cache.open("wb") as f:
                for _ in range(args.cache_mib):
                    f.write(b"\2" * 2**20)
        interval = CHUNK / 2**20 / args.mib_per_second
        while True:
            held.append(b"\1" * CHUNK)
            await asyncio.sleep(interval)

    def report() -> None:
        args.report.write_text(
            json.dumps(
                {
                    "wakeups": dict(sentinel.wakeups),
                    "sources": sentinel.sources,
                    "cgroup": str(sentinel.cgroup.path) if sentinel.cgroup else None,
                    "limit": sentinel.limit,
                    "held_mib": len(held) * CHUNK / 2**20,
                }
            )
        )

    lc.add("report", stop=report, depends_on=["memory"])
    warden.notify_systemd(lc)
    warden.log_events(lc)
    return lc.run(leak)


if __name__ == "__main__":
    sys.exit(main())
