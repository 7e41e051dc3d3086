"""Allocate memory at a steady rate until stopped (or, with --ignore-term, until killed).

    ramp.py [--mib-per-second N] [--ignore-term]

It says READY=1 first where there is a $NOTIFY_SOCKET, and notes SIGUSR1 (warden's
``--memory-warn-signal``) when it comes. Each chunk is written (``b"\\1" * n``), so it is
resident and charged to the cgroup. On SIGTERM it prints how much it held and exits 0 (a
clean stop before the OOM killer).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

from tests.system.guest.programs._notify import notify

CHUNK = 2 * 2**20


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib-per-second", type=float, default=16.0)
    parser.add_argument("--ignore-term", action="store_true")
    args = parser.parse_args()
    held: list[bytes] = []
    stopping = False

    def term(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, signal.SIG_IGN if args.ignore_term else term)
    signal.signal(signal.SIGUSR1, lambda *_: print("warned: SIGUSR1", flush=True))
    notify("READY=1\n")
    print("ramping", flush=True)
    interval = CHUNK / 2**20 / args.mib_per_second
    started = time.monotonic()
    while not stopping:
        held.append(b"\1" * CHUNK)
        # paced by the clock: the next chunk is due at len(held) * interval
        delay = started + len(held) * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    print(f"stopped cleanly holding {len(held) * CHUNK / 2**20:.0f} MiB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
