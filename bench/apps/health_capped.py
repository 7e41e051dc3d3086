"""The health server's previous policy, for bench_health.py: the peer "before".

    python bench/apps/health_capped.py PORT

asyncio streams; at most 64 connections served, one more aborted as soon as it is accepted;
5 s to send the request line and headers (read a line at a time, 16 KiB a line); every
request answered ``200 ok``. What ``warden run --health`` did before issue 19.
"""

from __future__ import annotations

import asyncio
import sys

MAX_CONNECTIONS = 64
REQUEST_TIMEOUT = 5.0
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
served = 0


async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    global served
    if served >= MAX_CONNECTIONS:
        writer.transport.abort()
        return
    served += 1
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            await reader.readline()
            for _ in range(100):
                if (await reader.readline()) in (b"\r\n", b"\n", b""):
                    break
        writer.write(ANSWER)
        await writer.drain()
    except (TimeoutError, ConnectionError, ValueError, asyncio.IncompleteReadError):
        pass
    finally:
        served -= 1
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(client, "127.0.0.1", port, limit=16384)
    print("serving", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
