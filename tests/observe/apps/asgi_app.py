"""The health ASGI app mounted at /health in a real uvicorn, under a library lifecycle.

    python asgi_app.py SOCKET_PORT

uvicorn is a component of the lifecycle; its own signal capture is off, so SIGTERM is the
lifecycle's (readiness false at once, then the drain, then uvicorn stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterator

import uvicorn

import warden
from warden.observe._asgi import Receive, Scope, Send, health_asgi

lifecycle = warden.Lifecycle(drain_delay=3, shutdown_timeout=10)
health = health_asgi(lifecycle)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http" and scope["path"].startswith("/health/"):
        await health(dict(scope, root_path="/health"), receive, send)
        return
    if scope["type"] != "http":
        await health(scope, receive, send)  # lifespan
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello\n"})


class Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the lifecycle owns the signals
        yield


def main() -> int:
    config = uvicorn.Config(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    server = Server(config)
    tasks: list[asyncio.Task[None]] = []

    async def start() -> None:
        tasks.append(asyncio.create_task(server.serve()))
        while not server.started:
            await asyncio.sleep(0.01)
        print("serving", flush=True)

    async def stop() -> None:
        server.should_exit = True
        await tasks[0]

    lifecycle.add("uvicorn", start=start, stop=stop)
    return lifecycle.run()


if __name__ == "__main__":
    sys.exit(main())
