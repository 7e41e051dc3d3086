"""What every server integration is: a named lifecycle component that serves and drains.

:class:`ServerComponent` registers the subclass's ``start`` and ``stop`` with the lifecycle,
keeps what every one of them is given (the handed sockets or an address, the grace, the stop
timeout), and publishes the two facts of every drain: ``Draining`` when the lifecycle begins
to drain (after the DRAINING event, never inside it), and ``WorkCut`` when the grace ends
with work still running. The subclasses hold only what differs: how a server says "leave"
(``Connection: close``, GOAWAY, health NOT_SERVING) and how it stops.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from typing import ClassVar

from warden.lifecycle import Lifecycle

from ._budget import StopBudget
from ._events import Cut, Draining, WorkCut
from ._listen import listeners


class ServerComponent:
    """Base of the server integrations; subclasses define ``start``, ``stop`` and ``leave``."""

    #: How the server tells clients to leave while it drains (the ``Draining`` fact's ``how``).
    leave_how: ClassVar[str]

    def __init__(
        self,
        lifecycle: Lifecycle,
        *,
        name: str,
        sockets: Sequence[socket.socket],
        address: str | None,
        grace: float | None,
        depends_on: Sequence[str],
        stop_timeout: float | None,
    ) -> None:
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
