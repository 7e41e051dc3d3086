"""One run of the program: its pid (also its process group), its notify socket, how it ended."""

from __future__ import annotations

import asyncio
import dataclasses
import os

from ..notify._server import NotifyServer
from ..process._reason import ExitReason
from ..sockets._held import HeldSockets
from ._watchdog import ChildWatchdog


@dataclasses.dataclass(eq=False)
class RunningChild:
    """The program as one spawn started it. ``pid`` is also its process group id.

    :attr:`ended` is set, and :attr:`reason` filled, by the reaper's callback when the
    kernel reports the child's end; until then the pid cannot be reused (the child is at
    least a zombie), so signalling it by pid is safe.

    Each run has a notify socket of its own: during an upgrade two runs live side by side,
    and the new one's READY=1 must not be confused with the old one's.
    """

    pid: int
    argv: tuple[str, ...]
    started_at: float
    notify: NotifyServer | None = None
    #: The listening sockets it was given (an upgrade's new release: siblings of the old's).
    sockets: HeldSockets | None = None
    watchdog: ChildWatchdog | None = None
    ended: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    #: Set when the program sent READY=1 to its notify socket.
    notified: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    #: Between the program's own RELOADING=1 and its READY=1.
    reloading: bool = False
    #: When the readiness gate passed, if it has.
    ready_at: float | None = None
    #: The last STATUS= the program sent, if any.
    status: str | None = None
    reason: ExitReason | None = None
    ended_at: float | None = None
    #: The signal a stop of warden's sent it (the stop ladder's), if one did.
    stop_signal: int | None = None

    @property
    def pgid(self) -> int:
        return self.pid

    @property
    def running(self) -> bool:
        return not self.ended.is_set()

    def send(self, signum: int, *, group: bool) -> bool:
        """Send ``signum`` to the child, or to its whole process group; False if none left.

        The group outlives its leader: after the child has ended, ``group=True`` still
        reaches the members that are left.
        """
        try:
            if group:
                os.killpg(self.pgid, signum)
            elif self.running:
                os.kill(self.pid, signum)
            else:
                return False
        except ProcessLookupError:
            return False
        return True

    def mark_ended(self, reason: ExitReason, at: float) -> None:
        self.reason = reason
        self.ended_at = at
        self.ended.set()
        if self.watchdog is not None:
            self.watchdog.stop()
        if self.notify is not None:
            # What it sent before it ended is still queued: read it, then close.
            self.notify.drain()
            self.notify.close()
