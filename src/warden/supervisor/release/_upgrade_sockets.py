"""An upgrade's sockets: the new release's own siblings of the program's, steered until promoted.

Where the sockets allow it (``SO_REUSEPORT``: ``sockets/_steering.py``), the new release gets
siblings of the program's listening sockets, and warden's BPF program sends every new
connection to the old release until the new one is promoted; warden's own probes of the new
release reach it alone through the shared port. Else the new release shares the old one's
sockets (said once, ``upgrade.shared_sockets``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ...lifecycle import Fact
from .._events import SteeringUnavailable
from ..sockets._held import HeldSockets
from ..sockets._steering import Steering, queued, steerable
from ._program import Program


class UpgradeSockets:
    """The sockets of the upgrade under way, from the new release's spawn to the old one's end.

    Args:
        program: the program's sockets and its current run (the old release).
        publish: puts a fact on the timeline.
    """

    def __init__(self, program: Program, publish: Callable[[Fact], object]) -> None:
        self._program = program
        self._publish = publish
        #: While an upgrade steers: the old release's sockets and the new release's siblings.
        self.steering: Steering | None = None
        self._old_watch: asyncio.Future[object] | None = None

    def for_new_release(self) -> HeldSockets:
        """The sockets for the new release: siblings steered away from it, where possible."""
        current = self._program.sockets
        if not steerable(current):
            return current
        try:
            steering = Steering(current)
        except OSError as exc:
            self._publish(SteeringUnavailable(error=str(exc)))
            return current
        self.steering = steering
        old = self._program.current
        if old is not None:
            # The old release dying mid-upgrade: the new one is all there is, so it gets the
            # connections at once rather than a socket no one accepts from.
            watch: asyncio.Future[object] = asyncio.ensure_future(old.ended.wait())
            watch.add_done_callback(self._old_ended)
            self._old_watch = watch
        return steering.new

    def to_new_release(self) -> None:
        """The new release is promoted: new connections go to it from now on."""
        if self.steering is not None:
            self.steering.to_new()

    def queued_for_old(self) -> int:
        """Connections queued for the old release and not accepted yet (0 when not steered)."""
        return 0 if self.steering is None else queued(self.steering.old)

    def undo(self) -> None:
        """The new release failed: warden's copies of its siblings closed."""
        steering, self.steering = self.steering, None
        self._stop_watching_old()
        if steering is not None:
            steering.abandon()

    def retire_old(self) -> None:
        """The old release is gone: its sockets closed, the siblings the program's now."""
        steering, self.steering = self.steering, None
        self._stop_watching_old()
        if steering is not None:
            self._program.sockets = steering.retire()

    def close(self) -> None:
        """warden stops: whatever an upgrade under way still holds."""
        self._stop_watching_old()
        steering, self.steering = self.steering, None
        if steering is not None:
            steering.close(keep=self._program.sockets)

    def _old_ended(self, watch: asyncio.Future[object]) -> None:
        if not watch.cancelled() and self.steering is not None:
            self.steering.to_new()

    def _stop_watching_old(self) -> None:
        if self._old_watch is not None:
            self._old_watch.cancel()
            self._old_watch = None
