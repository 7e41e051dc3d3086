"""A service that acknowledges records, buffers them, and flushes them at stop; it leaks.

    python service.py --join PROCS --out records.txt --rate 20 [--watch] [--log alloc.log]

Each record is acknowledged (``ack N`` on stdout, one unbuffered write: what a client would
be told) and kept in memory; the component ``store`` writes them all to ``--out`` (fsync) when
the service stops. Meanwhile a leak grows at ``--rate`` MiB/s, logged like ``ramp.py``.
With ``--watch``, ``warden.memory.watch_memory`` stops the service at ``critical``; without
it, nothing does, and the OOM killer loses every acknowledged record still in the buffer.
Prints the sentinel's facts as ``fact <kind> <level> <monotonic>`` lines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--join")
    parser.add_argument("--out", required=True)
    parser.add_argument("--rate", type=float, required=True, help="leak, MiB/s")
    parser.add_argument("--log", default=os.devnull)
    parser.add_argument("--watch", action="store_true")
    parser.add_argument("--flush-budget", type=float, default=1.0)
    parser.add_argument("--records-per-s", type=float, default=500.0)
    parser.add_argument("--wait-go", action="store_true", help="start on a line on stdin")
    parser.add_argument("--name", help="process name (comm), for a peer that matches names")
    args = parser.parse_args()
    if args.name:
        import ctypes

        ctypes.CDLL(None).prctl(15, args.name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    if args.join:  # before anything is allocated, so the charges are the cgroup's
        with open(args.join, "w") as procs:
            procs.write(str(os.getpid()))

    import warden
    from warden.memory import MemoryLevelChanged, watch_memory

    lc = warden.Lifecycle(shutdown_timeout=10)
    buffer: list[str] = []

    def flush() -> None:
        with open(args.out, "w") as out:
            out.writelines(buffer)
            out.flush()
            os.fsync(out.fileno())
        os.write(1, f"flushed {len(buffer)}\n".encode())

    lc.add("store", stop=flush)
    if args.watch:
        watch_memory(lc, flush_budget=args.flush_budget)

    def report(event: warden.lifecycle.Event) -> None:
        if isinstance(event.fact, MemoryLevelChanged):
            os.write(1, f"fact {event.kind} {event.fact.level.value} {event.at:.6f}\n".encode())
        elif event.kind == "stop_requested":
            os.write(1, f"fact stop - {event.at:.6f}\n".encode())
        elif event.kind == "signal":
            os.write(1, f"fact signal {event.name} {event.at:.6f}\n".encode())

    lc.timeline.subscribe(report)
    leaking: list[asyncio.Future[None]] = []
    log = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)

    async def leak() -> None:
        chunk = 256 * 1024
        period = chunk / (args.rate * 2**20)
        held = []
        start = time.monotonic()
        os.write(log, f"{start:.6f} 0\n".encode())
        n = 0
        while True:  # grows until the process ends, as a leak does, also while stopping
            delay = start + (n + 1) * period - time.monotonic()
            await asyncio.sleep(max(0.0, delay))
            held.append(bytearray(b"\x01") * chunk)
            n += 1
            os.write(log, f"{time.monotonic():.6f} {n * chunk}\n".encode())

    async def serve() -> None:
        os.write(1, b"ready\n")
        if args.wait_go:
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        leaking.append(asyncio.ensure_future(leak()))  # runs until the process ends
        n = 0
        period = 1.0 / args.records_per_s
        while lc.ready:  # no new work once the stop has begun
            n += 1
            buffer.append(f"record {n}\n")
            os.write(1, f"ack {n}\n".encode())
            await asyncio.sleep(period)
        await lc.wait_for_stop()

    return lc.run(serve)


if __name__ == "__main__":
    sys.exit(main())
