"""What each control command does: ``warden status``, ``upgrade``, ``reload`` and ``stop``.

One handler per command, found in one table (:data:`ControlCommands.TABLE`), as the signals
are: searching for ``"reload"`` lands on what it does. The server (``_server.py``) checks who
asks and passes each valid request here; a :class:`ControlError` is the client's error line.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, ClassVar

from ..._exceptions import ControlError, UpgradeRefused

if TYPE_CHECKING:
    from .._supervisor import Supervisor

Request = Mapping[str, object]
Reply = dict[str, object]


class ControlCommands:
    """The control socket's commands, over one supervisor.

    Example::

        commands = ControlCommands(supervisor)
        server = ControlServer(path, commands.handle, commands=ControlCommands.TABLE)
    """

    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor

    async def handle(self, command: str, request: Request) -> Reply:
        """The reply to one request (the server has checked ``command`` is in the table)."""
        return await self.TABLE[command](self, request)

    async def _status(self, request: Request) -> Reply:
        return {"status": self._supervisor.status().to_json()}

    async def _stop(self, request: Request) -> Reply:
        supervisor = self._supervisor
        supervisor.closing.stop_asked("warden stop")
        supervisor.lifecycle.request_stop("warden stop")
        return {"stop": {"pid": os.getpid()}}

    async def _reload(self, request: Request) -> Reply:
        """What SIGHUP does: an upgrade, or (``--on-hup forward``) SIGHUP to the program."""
        supervisor = self._supervisor
        if supervisor.options.hup_action != "forward":
            return await self._upgrade(request)
        child = supervisor.program.current
        if child is None or not child.running:
            raise ControlError("no program running to reload; try again once it runs")
        child.send(signal.SIGHUP, group=supervisor.options.group)
        return {"reload": {"action": "forward", "signal": "SIGHUP", "pid": child.pid}}

    async def _upgrade(self, request: Request) -> Reply:
        supervisor = self._supervisor
        try:
            result, coalesced = await supervisor.upgrader.request()
        except UpgradeRefused as exc:
            raise ControlError(str(exc)) from None
        return {
            "ok": result.ok,
            "upgrade": result.to_json(supervisor.clock.now(), coalesced=coalesced),
        }

    #: command -> its handler.
    TABLE: ClassVar[Mapping[str, Callable[[ControlCommands, Request], Awaitable[Reply]]]] = {
        "status": _status,
        "upgrade": _upgrade,
        "reload": _reload,
        "stop": _stop,
    }
