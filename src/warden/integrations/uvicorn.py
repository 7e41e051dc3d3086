"""uvicorn under warden: a lifecycle-managed server, and a protocol that loses no request.

The documented way is :class:`UvicornServer`, a component of a :class:`warden.Lifecycle`::

    lifecycle = warden.Lifecycle(drain_delay=5)
    handed = [sock for _, sock in warden.listen_fds()]
    UvicornServer(lifecycle, app, sockets=handed, address=None if handed else "127.0.0.1:8000")
    sys.exit(lifecycle.run())

Start returns once uvicorn serves (after the app's lifespan startup), so READY=1 is true.
During the drain delay every response says ``Connection: close``; at the stop uvicorn's own
shutdown runs (stop accepting, then each connection ends after its next response, below),
bounded by the grace: the least of ``grace``, the stop timeout and what is left of the
shutdown deadline; at the grace the requests still running are named in a ``WorkCut`` fact.
warden's signal handling stays in charge (uvicorn's ``capture_signals`` is not used).

The protocol class alone, for uvicorn run from the command line, by name::

    warden run --listen tcp://0.0.0.0:8000 --ready notify \\
        -- uvicorn --fd 3 --http warden.integrations.uvicorn:H11Protocol app:app

Why: on SIGTERM uvicorn closes at once every connection that has no request in progress
(``H11Protocol.shutdown``). On a keep-alive connection the client may be sending its next
request at that moment, and a connection just accepted may not have been read yet: those
requests get no answer (measured: about one per open connection per upgrade under load, see
docs/benchmarks.md). During an upgrade the new release is already serving the same socket, so
nothing is gained by closing early.

These classes instead let each connection end after its next response, which says
``Connection: close`` (uvicorn's h11 protocol closes after such a response without saying
so, and a client that reuses the connection then fails); a connection that stays silent for
:data:`IDLE_GRACE` seconds is closed as before. uvicorn waits for every connection to end
(``--timeout-graceful-shutdown``; under warden, ``--drain-timeout`` bounds it).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from typing import Any

import uvicorn
from uvicorn.protocols.http import h11_impl

from warden.lifecycle import Lifecycle

from ._asgi import App, DrainState, wrap
from ._budget import RESERVE
from ._component import IDLE_GRACE, ServerComponent, serve_options

__all__ = ["IDLE_GRACE", "H11Protocol", "UvicornServer"]


_CLOSE = (b"connection", b"close")


class H11Protocol(h11_impl.H11Protocol):
    """uvicorn's h11 protocol with a shutdown that waits for each connection's next request."""

    #: Set by the first shutdown() in this process: later connections drain from the start.
    _shutting_down = False

    _draining = False
    _idle_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        if H11Protocol._shutting_down:
            # Accepted from the backlog just before uvicorn closed its listener.
            self.shutdown()

    def shutdown(self) -> None:
        H11Protocol._shutting_down = True
        self._draining = True
        if self._close_after_response():
            return
        if self._idle_timer is None:
            self._idle_timer = self.loop.call_later(IDLE_GRACE, self._close_if_idle)

    def handle_events(self) -> None:
        super().handle_events()
        if self._draining:
            self._close_after_response()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        super().connection_lost(exc)

    def _close_after_response(self) -> bool:
        """Make the request in progress, if any, the connection's last; True if there is one."""
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return False
        cycle.keep_alive = False
        if not cycle.response_started:
            # Tell the client, so it does not send its next request on this connection.
            cycle.default_headers = [*cycle.default_headers, _CLOSE]
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        return True

    def _close_if_idle(self) -> None:
        self._idle_timer = None
        if not self._close_after_response():
            super().shutdown()  # silent for IDLE_GRACE: close it, as uvicorn does at once


class _Server(uvicorn.Server):
    """uvicorn's server, telling when it serves, and leaving the signals to warden."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.serving = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # warden's lifecycle handles SIGTERM/SIGINT and asks us to stop

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.serving.set()


class UvicornServer(ServerComponent):
    """A uvicorn server as a lifecycle component (see the module's docstring).

    Args:
        lifecycle: the :class:`warden.Lifecycle` to join.
        app: the ASGI application.
        name, sockets, address, grace, depends_on, stop_timeout: as every server integration
            (:class:`~warden.integrations._component.Serve`).
        **options: more ``uvicorn.Config`` options (``http`` defaults to
            :class:`H11Protocol`; ``lifespan``, ``timeout_keep_alive``, ...).
    """

    def __init__(self, lifecycle: Lifecycle, app: App, **options: Any) -> None:
        super().__init__(lifecycle, **serve_options(options))
        self._state = DrainState()
        options.setdefault("http", H11Protocol)
        options.setdefault("log_config", None)  # the application's logging stays its own
        self._config = uvicorn.Config(wrap(app, self._state), **options)
        self._server = _Server(self._config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Run the app's lifespan startup and serve every socket; returns once serving."""
        socks = self._listeners()
        self._task = asyncio.create_task(
            self._server.serve(sockets=socks), name=f"warden:uvicorn:{self.name}"
        )
        serving = asyncio.create_task(self._server.serving.wait())
        await asyncio.wait({self._task, serving}, return_when=asyncio.FIRST_COMPLETED)
        if not serving.done():
            serving.cancel()
            await asyncio.wait({serving})
            self._task.result()  # raises what stopped it (SystemExit: lifespan startup failed)
            raise RuntimeError(f"uvicorn component {self.name!r} ended during its start")

    leave_how = "Connection: close"

    def leave(self) -> None:
        """Every response says Connection: close; all still answered."""
        self._state.draining = True

    async def stop(self) -> None:
        """uvicorn's shutdown within the grace; what the grace cut is published."""
        began = time.monotonic()
        self._budget.drain()
        grace = self._budget.grace(self._grace, began, self._stop_timeout)
        # uvicorn cancels what is left at its timeout, counted after its main loop sees
        # should_exit (at its next 0.1 s tick: 0 to 0.1 s from now) and a 0.1 s pause: so at
        # least 0.1 s after now plus the timeout. Timed from there, a little after our count
        # ends, whatever the tick's phase. (Typed int, used as a float by asyncio.wait_for.)
        self._config.timeout_graceful_shutdown = max(0.0, grace - 0.1) + RESERVE / 4  # type: ignore[assignment]
        self._server.should_exit = True
        if not await self._state.inflight.wait_idle(grace):
            self._report_cut(grace, self._state.inflight.cut())
        assert self._task is not None
        left = self._budget.left(began, self._stop_timeout) - RESERVE / 2
        await asyncio.wait({self._task}, timeout=max(left, 0.0))
        if not self._task.done():
            self._server.force_exit = True
            self._task.cancel()
            await asyncio.wait({self._task})
