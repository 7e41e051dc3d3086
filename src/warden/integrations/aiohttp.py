"""aiohttp's web server under warden's lifecycle, with a drain that loses nothing.

    lifecycle = warden.Lifecycle(drain_delay=5)
    handed = [sock for _, sock in warden.listen_fds()]
    AiohttpServer(lifecycle, app, sockets=handed, address=None if handed else "127.0.0.1:8080")
    sys.exit(lifecycle.run())

What it adds to ``AppRunner.cleanup()`` (which closes every idle keep-alive connection at
once, and a connection accepted but not read yet with it):

1. at DRAINING, before the lifecycle's drain delay: every response says
   ``Connection: close`` (aiohttp speaks HTTP/1.1 only); everything is still accepted and
   answered, so keep-alive clients leave on their own;
2. at the component's stop: stop accepting (the listeners' readers go, the loop runs once
   so that every connection accepted is set up, then the sites close; what arrives waits in
   the backlog, kept by ``warden run`` for the next release); then connections that are
   idle or not read yet get :data:`IDLE_GRACE` to send their request, which is answered;
3. aiohttp's own shutdown, its timeout set to what is left of the grace (the least of
   ``grace``, the stop timeout and what is left of the shutdown deadline);
4. at the grace, the requests still running are named in a ``WorkCut`` fact, then cancelled.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Unpack

from aiohttp import web
from aiohttp.typedefs import Handler

from warden.lifecycle import Lifecycle

from ._asgi import client_name
from ._budget import RESERVE
from ._component import IDLE_GRACE, Serve, ServerComponent
from ._inflight import InFlight, Work

__all__ = ["IDLE_GRACE", "AiohttpServer"]

_POLL = 0.02  # aiohttp says nothing when a connection ends: look this often, during a stop only
_WORK = web.RequestKey("warden_work", Work)


class AiohttpServer(ServerComponent):
    """An ``aiohttp.web.Application`` served by an ``AppRunner``, as a lifecycle component.

    Registers itself with ``lifecycle`` as the component ``name``; start returns once the
    app's startup signals ran and every socket accepts (READY=1 is then true).

    Args:
        lifecycle: the :class:`warden.Lifecycle` to join.
        app: the application (not yet frozen: warden adds a middleware and a signal).
        **serve: ``name`` (``"http"``), ``sockets``, ``address``, ``grace``, ``depends_on``,
            ``stop_timeout``: see :class:`~warden.integrations._component.Serve`.
    """

    def __init__(self, lifecycle: Lifecycle, app: web.Application, **serve: Unpack[Serve]) -> None:
        super().__init__(lifecycle, **serve)
        self._app = app
        self._draining = False
        self.inflight = InFlight()
        self._runner: web.AppRunner | None = None
        self._sites: list[web.SockSite] = []
        self._socks: list[socket.socket] = []
        app.middlewares.append(self._track)
        app.on_response_prepare.append(self._on_prepare)

    async def start(self) -> None:
        """Run the app's startup, then serve every socket."""
        socks = self._socks = self._listeners()
        self._runner = web.AppRunner(self._app, handle_signals=False)
        await self._runner.setup()
        for sock in socks:
            site = web.SockSite(self._runner, sock)
            await site.start()
            self._sites.append(site)

    @web.middleware
    async def _track(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        scope = {"client": peer[:2] if isinstance(peer, tuple) else None}
        work = Work(f"{request.method} {request.path}", client_name(scope), False)
        request[_WORK] = work
        token = self.inflight.begin(work)
        try:
            return await handler(request)
        finally:
            self.inflight.end(token)

    async def _on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        if self._draining:
            # The headers are made before this signal: say it, and close after the response.
            response.force_close()
            response.headers["Connection"] = "close"
        work = request.get(_WORK)
        if work is not None and not isinstance(response, web.Response):
            work.streaming = True  # a StreamResponse written while the handler runs

    leave_how = "Connection: close"

    def leave(self) -> None:
        """Step 1: Connection: close on every response; all still answered."""
        self._draining = True

    async def stop(self) -> None:
        """Steps 2-4."""
        began = time.monotonic()
        self._budget.drain()
        grace = self._budget.grace(self._grace, began, self._stop_timeout)
        assert self._runner is not None
        await self._stop_accepting()
        for site in self._sites:
            await site.stop()
        await self._let_connections_end(min(IDLE_GRACE, grace), began + grace)
        left = max(0.0, began + grace - time.monotonic())
        # aiohttp cancels what is left at its timeout: a little after our count.
        self._runner._shutdown_timeout = left + RESERVE / 4
        server = self._runner.server
        cleanup = asyncio.create_task(self._runner.cleanup(), name=f"warden:aiohttp:{self.name}")
        if not await self.inflight.wait_idle(left):
            self._report_cut(grace, self.inflight.cut())
        settle = self._budget.left(began, self._stop_timeout) - RESERVE / 2
        await asyncio.wait({cleanup}, timeout=max(settle, 0.0))
        if not cleanup.done():
            cleanup.cancel()
            await asyncio.wait({cleanup})
        # A connection set up after aiohttp's shutdown took its list (asyncio accepts a
        # burst per wake-up and sets each up later) is still served: let it finish.
        until = min(
            time.monotonic() + min(IDLE_GRACE, grace),  # one that never speaks is not waited for
            began + max(0.0, self._budget.left(began, self._stop_timeout) - RESERVE / 2),
        )
        while server is not None and server.connections and time.monotonic() < until:
            await asyncio.sleep(_POLL)

    async def _stop_accepting(self) -> None:
        """Stop accepting, then let every connection accepted be set up, before the sites
        close.

        asyncio accepts a burst of connections and sets each up in a task of its own, one
        loop iteration later; ``Server.close()`` in between makes that task fail an
        assertion, silently, and the connection is neither served nor closed: its request
        waits unread until the process exits and the kernel resets it (CPython gh-109564;
        about one fresh connection in two stops, measured). So the listeners' readers go
        first (no new burst), and one loop iteration runs those tasks (queued before this
        one resumes) while the server is still open.
        """
        loop = asyncio.get_running_loop()
        for sock in self._socks:
            loop.remove_reader(sock.fileno())
        await asyncio.sleep(0)

    async def _let_connections_end(self, idle_grace: float, until: float) -> None:
        """Wait, up to ``until``, for every connection to end on its own.

        aiohttp's shutdown closes a connection with no request under way at once, and ends
        one whose request is read but not yet begun without answering it; after their next
        response (``Connection: close``) connections end by themselves. So its shutdown is
        left only the connections silent for ``idle_grace``, and the requests past the grace.
        """
        assert self._runner is not None and self._runner.server is not None
        server = self._runner.server
        quiet_since: dict[object, float] = {}
        while (now := time.monotonic()) < until:
            # aiohttp says nothing when a connection ends, and asyncio sets up the
            # connections of its last accept burst a few loop iterations after the listener
            # closed: look every _POLL.
            await asyncio.sleep(_POLL)
            handlers = server.connections
            if not handlers:
                return
            quiet_since = {h: quiet_since.get(h, now) for h in handlers if _quiet(h)}
            if len(quiet_since) == len(handlers) and all(
                now - since >= idle_grace for since in quiet_since.values()
            ):
                return


def _quiet(handler: object) -> bool:
    """An open connection with no request being handled or queued (idle, or not read yet)."""
    busy = getattr(handler, "_request_in_progress", False) or getattr(handler, "_messages", None)
    return getattr(handler, "transport", None) is not None and not busy
