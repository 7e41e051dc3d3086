"""A program that says READY=1 on $NOTIFY_SOCKET (whoever it runs as), then waits to be told
to stop and exits 0 on SIGTERM; with ``--exit CODE`` it exits with CODE once ready.

    notify_ready.py [--exit CODE] [--ignore-term]

With ``--ignore-term`` it ignores SIGTERM (a program that will not stop).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from tests.system.guest.programs._notify import notify


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--exit", type=int)
    parser.add_argument("--ignore-term", action="store_true")
    args = parser.parse_args()
    print(f"running as uid {os.getuid()}", flush=True)
    signal.signal(signal.SIGTERM, signal.SIG_IGN if args.ignore_term else (lambda *_: sys.exit(0)))
    notify("READY=1\nSTATUS=serving\n")
    if args.exit is not None:
        return int(args.exit)
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
