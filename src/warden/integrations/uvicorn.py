"""uvicorn protocol classes whose graceful shutdown loses no request on a keep-alive connection.

Use them by name, with uvicorn's own option::

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

from uvicorn.protocols.http import h11_impl

__all__ = ["IDLE_GRACE", "H11Protocol"]

#: Seconds a keep-alive connection may stay silent once a shutdown began.
IDLE_GRACE = 2.0

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
