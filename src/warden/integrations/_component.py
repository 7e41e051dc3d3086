"""What every server integration is: a named lifecycle component that serves and drains.

:class:`ServerComponent` registers the subclass's ``start`` and ``stop`` with the lifecycle,
keeps what every one of them is given (:class:`Serve`: the name, the handed sockets or an
address, the grace, what it depends on, the stop timeout), and publishes the two facts of
every drain: ``Draining`` when the lifecycle begins to drain (after the DRAINING event, never
inside it), and ``WorkCut`` when the grace ends with work still running. The subclasses hold
only what differs: how a server says "leave" (``Connection: close``, GOAWAY, health
NOT_SERVING) and how it stops.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from typing import Any, ClassVar, TypedDict, cast

from warden.lifecycle import Lifecycle

from ._budget import StopBudget
from ._events import Cut, Draining, WorkCut
from ._listen import listeners

IDLE_GRACE = 1.0
"""Seconds a connection that is idle, or accepted and not read yet, when the stop begins may
take to send its request, which is answered (with ``Connection: close``) before the
connection closes: a request already on its way arrives well within it, and a connection
that stays silent holds the stop no longer than this (at most the grace). One value for
every HTTP server warden runs (aiohttp, hypercorn, uvicorn's protocol)."""


class Serve(TypedDict, total=False):
    """What every server integration is given, as keyword arguments.

    Attributes:
        name: the component's name (``"http"``, ``"grpc"`` by default).
        sockets: listening sockets (from :func:`warden.listen_fds`).
        address: ``HOST:PORT`` to bind when no socket is handed (port 0: any free port; see
            :attr:`ServerComponent.port`).
        grace: the longest in-flight work may run once the stop begins (``None``: as long as
            the stop timeout and the shutdown deadline allow).
        depends_on: components that must stop after this one (the database behind it).
        stop_timeout: the component's stop timeout (``None``: the lifecycle's default).
    """

    name: str
    sockets: Sequence[socket.socket]
    address: str | None
    grace: float | None
    depends_on: Sequence[str]
    stop_timeout: float | None


def serve_options(options: dict[str, Any]) -> Serve:
    """The :class:`Serve` keywords taken out of ``options``: for a server whose own options
    come as keywords too (uvicorn's ``Config``)."""
    return cast(Serve, {key: options.pop(key) for key in Serve.__optional_keys__ if key in options})


class ServerComponent:
    """Base of the server integrations; subclasses define ``start``, ``stop`` and ``leave``."""

    #: How the server tells clients to leave while it drains (the ``Draining`` fact's ``how``).
    leave_how: ClassVar[str]
    #: The component's name when none is given.
    default_name: ClassVar[str] = "http"

    def __init__(
        self,
        lifecycle: Lifecycle,
        *,
        name: str | None = None,
        sockets: Sequence[socket.socket] = (),
        address: str | None = None,
        grace: float | None = None,
        depends_on: Sequence[str] = (),
        stop_timeout: float | None = None,
    ) -> None:
        name = self.default_name if name is None else name
        self.name = name
        self._lifecycle = lifecycle
        self._handed = list(sockets)
        self._address = address
        self._grace = grace
        self._stop_timeout = stop_timeout
        self._budget = StopBudget(lifecycle, self._drain)
        self.port: int | None = None
        #: The requests (or RPCs) the last stop cut, as published in its WorkCut fact.
        self.cut: tuple[Cut, ...] = ()
        lifecycle.add(
            name,
            start=self.start,
            stop=self.stop,
            depends_on=list(depends_on),
            stop_timeout=stop_timeout,
        )

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    def leave(self) -> None:
        """Step 1 of the drain: tell clients to leave; everything is still answered."""
        raise NotImplementedError

    def _listeners(self) -> list[socket.socket]:
        """The sockets to serve (handed, or bound to the address); sets :attr:`port`."""
        socks = listeners(self.name, self._handed, self._address)
        self.port = socks[0].getsockname()[1]
        return socks

    def _drain(self) -> None:
        self.leave()
        fact = Draining(component=self.name, how=self.leave_how)
        asyncio.get_running_loop().call_soon(self._lifecycle.publish, fact)

    def _report_cut(self, grace: float, cut: tuple[Cut, ...]) -> None:
        """The grace is over with ``cut`` still running: say which, before they end."""
        self.cut = cut
        self._lifecycle.publish(WorkCut(component=self.name, grace=grace, cut=cut))
