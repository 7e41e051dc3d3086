"""hypercorn (HTTP/1.1 and HTTP/2) served under warden's lifecycle, with a drain that loses nothing.

    lifecycle = warden.Lifecycle(drain_delay=5)
    handed = [sock for _, sock in warden.listen_fds()]
    HypercornServer(lifecycle, app, sockets=handed, address=None if handed else "127.0.0.1:8000")
    sys.exit(lifecycle.run())

What it adds to hypercorn's own shutdown (which, once triggered, closes idle keep-alive
connections at once, resets HTTP/2 streams that arrive after it, and sends its GOAWAY only
when a connection's last stream has closed):

1. at DRAINING, before the lifecycle's drain delay: every HTTP/1.x response says
   ``Connection: close``, and every HTTP/2 connection, open or opened later, gets a GOAWAY
   with the largest stream id (RFC 9113 §6.8's first phase: "stop opening streams", while
   the streams already sent are served). Clients leave on their own; the server still
   accepts and answers everything;
2. at the component's stop: hypercorn's shutdown (stop accepting; its final GOAWAY with the
   true last stream id), with its ``graceful_timeout`` set to the grace, the least of
   ``grace``, the stop timeout and what is left of the shutdown deadline;
3. a connection idle at that moment, or accepted from the backlog just before the
   listener closed and not read yet, is given :data:`IDLE_GRACE` to send its request, which
   is answered (with ``Connection: close``), instead of being closed unread;
4. at the grace, the requests still running are named in a ``WorkCut`` fact, then cut.
"""

from __future__ import annotations

import asyncio
import struct
import time
import weakref
from typing import Any, Unpack

import hypercorn.asyncio.run as _run
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.config import Config, Sockets
from hypercorn.events import Event as _HypercornEvent
from hypercorn.events import RawData
from hypercorn.logging import Logger
from hypercorn.protocol.h2 import H2Protocol
from hypercorn.utils import wrap_app

from warden.lifecycle import Lifecycle

from ._asgi import App, DrainState, wrap
from ._budget import RESERVE
from ._component import IDLE_GRACE, Serve, ServerComponent

__all__ = ["IDLE_GRACE", "HypercornServer"]

#: RFC 9113 §6.8: GOAWAY (type 7) on stream 0, last stream id 2^31-1, NO_ERROR.
_GOAWAY_ALL = struct.pack(">I", 8)[1:] + bytes([7, 0]) + struct.pack(">III", 0, 2**31 - 1, 0)

_POLL = 0.02  # asyncio says nothing when it has set up an accepted connection: look this often

_ATTR = "_warden_server"  # on our Config: which HypercornServer its connections belong to


class HypercornServer(ServerComponent):
    """A hypercorn server (asyncio worker) as a lifecycle component.

    Registers itself with ``lifecycle`` as the component ``name``. Start returns once
    hypercorn serves every socket, after the app's lifespan startup: READY=1 is then true.

    Args:
        lifecycle: the :class:`warden.Lifecycle` to join.
        app: the ASGI application.
        config: a hypercorn ``Config`` for the rest (``bind`` is ignored: the sockets handed,
            served as they are, or ``address``).
        **serve: ``name`` (``"http"``), ``sockets``, ``address``, ``grace``, ``depends_on``,
            ``stop_timeout``: see :class:`~warden.integrations._component.Serve`.
    """

    def __init__(
        self,
        lifecycle: Lifecycle,
        app: App,
        *,
        config: Config | None = None,
        **serve: Unpack[Serve],
    ) -> None:
        super().__init__(lifecycle, **serve)
        self._state = DrainState()
        self._app = wrap(app, self._state)
        self._config = config or Config()
        self._connections: weakref.WeakSet[_TCPServer] = weakref.WeakSet()
        self._connection_tasks: set[asyncio.Task[Any]] = set()
        self._shutdown = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running = 0
        self._serving: asyncio.Future[None] | None = None
        self.idle_grace = IDLE_GRACE

    @property
    def draining(self) -> bool:
        return self._state.draining

    async def start(self) -> None:
        """Serve; returns once hypercorn accepts on every socket."""
        _install()
        socks = self._listeners()
        config = self._config
        setattr(config, _ATTR, self)
        loop = asyncio.get_running_loop()
        self._serving = loop.create_future()
        self._expect = len(socks)
        config._log = _ServingLog(config, self._on_running)
        app = wrap_app(self._app, config.wsgi_max_body_size, "asgi")  # type: ignore[arg-type]
        self._task = loop.create_task(
            _run.worker_serve(
                app,
                config,
                sockets=Sockets(secure_sockets=[], insecure_sockets=socks, quic_sockets=[]),
                shutdown_trigger=self._shutdown.wait,
            ),
            name=f"warden:hypercorn:{self.name}",
        )
        await asyncio.wait({self._task, self._serving}, return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            self._task.result()  # raises what stopped it (a lifespan startup failure)
            raise RuntimeError(f"hypercorn component {self.name!r} ended during its start")

    def _on_running(self) -> None:
        self._running += 1
        if self._running >= self._expect and self._serving and not self._serving.done():
            self._serving.set_result(None)

    leave_how = "Connection: close (HTTP/1.1), GOAWAY (HTTP/2)"

    def leave(self) -> None:
        """Step 1: Connection: close on HTTP/1.x, GOAWAY on HTTP/2; all still answered."""
        self._state.draining = True
        for connection in list(self._connections):
            connection.goaway()

    async def stop(self) -> None:
        """Steps 2-4: hypercorn's shutdown within the grace; what it cut is published."""
        began = time.monotonic()
        self._budget.drain()
        grace = self._budget.grace(self._grace, began, self._stop_timeout)
        self.idle_grace = min(IDLE_GRACE, grace)
        # hypercorn cancels what is left at graceful_timeout: a little after our count.
        self._config.graceful_timeout = grace + RESERVE / 4
        self._shutdown.set()
        if not await self._state.inflight.wait_idle(grace):
            self._report_cut(grace, self._state.inflight.cut())
        assert self._task is not None
        left = self._budget.left(began, self._stop_timeout) - RESERVE / 2
        await asyncio.wait({self._task}, timeout=max(left, 0.0))
        # asyncio accepts a burst of connections per wake-up and sets each up a few loop
        # iterations later: one set up after hypercorn gathered its connections is not
        # waited for by it. Wait for those too (they are answered with Connection: close).
        # Done only when a look _POLL after the last one finds none left.
        while (left := self._budget.left(began, self._stop_timeout) - RESERVE / 2) > _POLL:
            await asyncio.sleep(_POLL)
            if not self._connection_tasks:
                break
            await asyncio.wait(set(self._connection_tasks), timeout=left - _POLL)
        late = set(self._connection_tasks)
        for task in (self._task, *late):
            if not task.done():
                task.cancel()
        await asyncio.wait({self._task, *late})


class _TCPServer(TCPServer):
    """hypercorn's connection, with warden's drain when it belongs to a HypercornServer."""

    _goaway_sent = False

    @property
    def _warden(self) -> HypercornServer | None:
        return getattr(self.config, _ATTR, None)

    async def run(self) -> None:
        owner = self._warden
        task = asyncio.current_task()
        if owner is not None and task is not None:
            owner._connections.add(self)
            owner._connection_tasks.add(task)
        try:
            await super().run()
        finally:
            if owner is not None and task is not None:
                owner._connection_tasks.discard(task)

    async def _read_data(self) -> None:
        await super()._read_data()
        if self._warden is not None:
            # The client has closed its side: no request can come, end the idle wait now
            # (hypercorn's connection otherwise lingers until the keep-alive timeout).
            await self.idle_task.stop()

    def _is_h2(self) -> bool:
        protocol = getattr(self, "protocol", None)
        return isinstance(getattr(protocol, "protocol", None), H2Protocol)

    def goaway(self) -> None:
        """Send the first GOAWAY, if this is an HTTP/2 connection that has begun."""
        if self._is_h2() and not self._goaway_sent:
            self._goaway_sent = True
            self._task_group.spawn(self._send_goaway)

    async def _send_goaway(self) -> None:
        await super().protocol_send(RawData(data=_GOAWAY_ALL))

    async def protocol_send(self, event: _HypercornEvent) -> None:
        await super().protocol_send(event)
        owner = self._warden
        # A connection that became HTTP/2 during the drain: GOAWAY after its SETTINGS.
        draining = owner is not None and owner.draining and isinstance(event, RawData)
        if draining and self._is_h2() and not self._goaway_sent:
            self._goaway_sent = True
            await self._send_goaway()

    async def _idle_timeout(self) -> None:
        owner = self._warden
        if owner is None:
            await super()._idle_timeout()
            return
        terminated = self.context.terminated
        if not terminated.is_set():
            try:
                await asyncio.wait_for(terminated.wait(), self.config.keep_alive_timeout)
            except TimeoutError:
                await asyncio.shield(self._initiate_server_close())  # keep-alive timeout
                return
        # A request has begun if we were cancelled (idle_task.stop): 3.11's wait_for can
        # swallow a cancel that comes as its inner wait ends, and the request would then wait
        # out the grace below and be closed unanswered.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError
        # The stop began while this connection was idle or not read yet: a request may be on
        # its way; this task is cancelled as soon as one arrives. A client that has already
        # closed its side sends nothing more: no grace for it.
        if not self.reader.at_eof():
            await asyncio.sleep(owner.idle_grace)
        await asyncio.shield(self._initiate_server_close())


class _ServingLog(Logger):
    """hypercorn's logger, telling us when it serves a socket ("Running on ...")."""

    def __init__(self, config: Config, on_running: Any) -> None:
        super().__init__(config)
        self._on_running = on_running

    async def info(self, message: str, *args: Any, **kwargs: Any) -> None:
        await super().info(message, *args, **kwargs)
        if message.startswith("Running on"):
            self._on_running()


def _install() -> None:
    # worker_serve creates its connections by this module-level name; only connections of
    # a Config marked by a HypercornServer behave differently.
    _run.TCPServer = _TCPServer  # type: ignore[attr-defined]
