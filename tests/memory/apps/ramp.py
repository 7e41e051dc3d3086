"""A memory ramp: joins a cgroup, says ``ready``, waits for ``go``, allocates at a rate.

    python ramp.py --join /sys/fs/cgroup/memory/X/cgroup.procs --rate 20 --log alloc.log

Each chunk is written (``bytearray * n`` stores every byte, so every page is charged) and
logged as ``<monotonic> <bytes allocated so far>`` with one unbuffered write, so the log is
complete up to the instant of an OOM kill. Runs until killed, or up to ``--max`` MiB, then
prints ``held`` and waits for stdin to close.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--join")
    parser.add_argument("--rate", type=float, required=True, help="MiB/s")
    parser.add_argument("--log", required=True)
    parser.add_argument("--chunk", type=int, default=256, help="KiB")
    parser.add_argument("--max", type=float, default=0.0, help="MiB, 0: until killed")
    args = parser.parse_args()
    if args.join:
        with open(args.join, "w") as procs:
            procs.write(str(os.getpid()))
    log = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
    print("ready", flush=True)
    sys.stdin.readline()
    chunk = args.chunk * 1024
    period = chunk / (args.rate * 2**20)
    held: list[bytearray] = []
    start = time.monotonic()
    os.write(log, f"{start:.6f} 0\n".encode())
    n = 0
    while not args.max or (n + 1) * chunk <= args.max * 2**20:
        delay = start + (n + 1) * period - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        held.append(bytearray(b"\x01") * chunk)
        n += 1
        os.write(log, f"{time.monotonic():.6f} {n * chunk}\n".encode())
    print("held", flush=True)
    sys.stdin.readline()


if __name__ == "__main__":
    main()
