"""An idle service for the memory benchmark's idle-cost figure: a lifecycle, optionally with
``watch_memory``; joins a cgroup first, says ``ready``, serves until SIGTERM."""

from __future__ import annotations

import argparse
import os
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--join")
    parser.add_argument("--watch", action="store_true")
    args = parser.parse_args()
    if args.join:
        with open(args.join, "w") as procs:
            procs.write(str(os.getpid()))

    import warden
    from warden.memory import watch_memory

    lc = warden.Lifecycle()
    sentinel = watch_memory(lc) if args.watch else None

    async def serve() -> None:
        detail = f" sources={','.join(sentinel.sources)}" if sentinel is not None else ""
        os.write(1, f"ready{detail}\n".encode())
        await lc.wait_for_stop()

    return lc.run(serve)


if __name__ == "__main__":
    sys.exit(main())
