"""An aiohttp web app under warden's lifecycle.

    python examples/aiohttp_service.py --port 8080 --drain-delay 5
    warden run --listen tcp://127.0.0.1:8080 --ready notify -- python examples/aiohttp_service.py

Serves the socket it is handed (LISTEN_FDS) or binds ``--port``; READY=1 once it accepts. On
SIGTERM: for ``--drain-delay`` every answer says ``Connection: close`` while everything is
still answered; then it stops accepting, lets idle connections send their request, and
stops within ``--grace`` (and the deadline), naming what it cut.

Endpoints: ``GET /`` (hello), ``GET /slow?ms=500``, ``GET /stream?n=10&ms=50`` (streamed).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiohttp import web

import warden
from warden.integrations.aiohttp import AiohttpServer
from warden.lifecycle import Event, State, StateChanged


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="hello from warden\n")


async def slow(request: web.Request) -> web.Response:
    ms = float(request.query.get("ms", "500"))
    await asyncio.sleep(ms / 1000)
    return web.Response(text=f"slept {ms:g} ms\n")


async def stream(request: web.Request) -> web.StreamResponse:
    n, pause = int(request.query.get("n", "10")), float(request.query.get("ms", "50")) / 1000
    response = web.StreamResponse()
    await response.prepare(request)
    for i in range(n):
        if i:
            await asyncio.sleep(pause)
        await response.write(f"{i}\n".encode())
    await response.write_eof()
    return response


def make_app() -> web.Application:
    app = web.Application()
    app.add_routes([web.get("/", hello), web.get("/slow", slow), web.get("/stream", stream)])
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="when no socket is handed")
    parser.add_argument("--drain-delay", type=float, default=0.0)
    parser.add_argument("--grace", type=float, default=None)
    parser.add_argument("--shutdown-timeout", type=float, default=None)
    args = parser.parse_args(argv)
    lifecycle = warden.Lifecycle(
        drain_delay=args.drain_delay, shutdown_timeout=args.shutdown_timeout
    )
    handed = [sock for _, sock in warden.listen_fds()]
    server = AiohttpServer(
        lifecycle,
        make_app(),
        sockets=handed,
        address=None if handed else f"{args.host}:{args.port}",
        grace=args.grace,
    )

    def announce(event: Event) -> None:
        if isinstance(event.fact, StateChanged) and event.fact.state is State.READY:
            print(f"serving HTTP on port {server.port}", flush=True)

    lifecycle.timeline.subscribe(announce)
    warden.log_events(lifecycle)
    warden.notify_systemd(lifecycle)
    return lifecycle.run()


if __name__ == "__main__":
    sys.exit(main())
