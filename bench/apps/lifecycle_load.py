"""Loopback load for bench/bench_lifecycle.py: N keep-alive connections, one request each in flight.

Every connection sends ``GET PATH`` and re-sends it as soon as the answer arrives, so the server
always holds about N requests in flight and its event loop stays busy. Prints
``loaded connections=N rps=R`` once every connection has had three answers, and
``done responses=M`` when the server has closed every connection::

    python bench/apps/lifecycle_load.py --port 8000 --connections 1000 --path '/slow?ms=100'
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field

WARM_RESPONSES = 3


@dataclass
class _Load:
    total: int
    connected: int = 0
    warm: int = 0
    responses: int = 0
    all_connected_at: float = 0.0
    responses_at_connected: int = 0
    loaded: asyncio.Event = field(default_factory=asyncio.Event)


async def _connection(
    host: str, port: int, path: str, dial: asyncio.Semaphore, load: _Load
) -> None:
    # A bounded number of connects at a time: a burst of 1,000 SYNs would overflow a small
    # listen backlog (asyncio's default is 100) and cost a 1 s SYN retransmission.
    try:
        async with dial:
            reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        print(f"connect failed: {exc}", flush=True)
        return
    load.connected += 1
    if load.connected == load.total:
        load.all_connected_at, load.responses_at_connected = time.monotonic(), load.responses
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    answered = 0
    try:
        while True:
            writer.write(request)
            head = (await reader.readuntil(b"\r\n\r\n")).lower()
            start = head.index(b"content-length:") + len(b"content-length:")
            await reader.readexactly(int(head[start : head.index(b"\r\n", start)]))
            answered += 1
            load.responses += 1
            if answered == WARM_RESPONSES:
                load.warm += 1
                if load.warm == load.total:
                    load.loaded.set()
            if b"connection: close" in head:
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


async def _run(args: argparse.Namespace) -> None:
    load = _Load(args.connections)
    dial = asyncio.Semaphore(64)
    tasks = [
        asyncio.create_task(_connection(args.host, args.port, args.path, dial, load))
        for _ in range(args.connections)
    ]

    async def report_loaded() -> None:
        await load.loaded.wait()
        elapsed = time.monotonic() - load.all_connected_at
        rps = (load.responses - load.responses_at_connected) / max(elapsed, 1e-9)
        print(f"loaded connections={load.total} rps={rps:.0f}", flush=True)

    reporter = asyncio.create_task(report_loaded())
    await asyncio.gather(*tasks)
    reporter.cancel()
    print(f"done responses={load.responses}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--path", default="/slow?ms=100")
    asyncio.run(_run(parser.parse_args()))


if __name__ == "__main__":
    main()
