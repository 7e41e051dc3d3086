"""The program: which of its runs it is, and the sockets its runs are given.

At most three runs of the program live at once:

* ``current``: *the* program; signals are forwarded to it, its STATUS= is relayed, its end is
  the restart policy's business;
* ``candidate``: a new release an upgrade has started and not yet promoted;
* ``draining``: the old release an upgrade promoted away from, which has had its stop signal.

Only the methods here move a run between those places, so a reader who wants to know when
"the program" changes reads this file. What follows from the change happens here too: the
terminal's foreground goes to the new program, and the restart policy counts its uptime from
then on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from ..process._reason import ExitReason
from ..process._spawn import Terminal
from ..sockets._held import HeldSockets
from ._child import RunningChild
from ._restart import RestartTracker


class Program:
    """The program: which of its runs is current, which a candidate, which draining.

    Args:
        terminal: the terminal whose foreground the program gets, if warden has one.
        restarts: the restart policy, told when the program (re)started.
    """

    def __init__(self, *, terminal: Terminal, restarts: RestartTracker) -> None:
        self._terminal = terminal
        self._restarts = restarts
        self.current: RunningChild | None = None
        self.candidate: RunningChild | None = None
        self.draining: RunningChild | None = None
        #: The listening sockets a new run gets at fds 3.. (an upgrade's new release: their
        #: siblings, which become the program's once the old release is gone).
        self.sockets = HeldSockets()
        #: Set each time an upgrade promotes a new release (``main`` watches the new one).
        self.replaced = asyncio.Event()
        #: The program's last exit reason, once it has ended at least once.
        self.last_reason: ExitReason | None = None

    def start(self, run: RunningChild) -> None:
        """A start or a restart: ``run`` is the program."""
        self.current = run
        self._became_the_program(run)

    def propose(self, run: RunningChild) -> None:
        """An upgrade's new release, until it is promoted or withdrawn."""
        self.candidate = run

    def withdraw(self, run: RunningChild) -> None:
        """The new release failed its gate (or the upgrade was abandoned)."""
        if self.candidate is run:
            self.candidate = None

    def promote(self, new: RunningChild) -> RunningChild | None:
        """``new`` is the program from now on; returns the run it replaces."""
        old = self.current
        self.candidate = None
        self.current = new
        self.replaced.set()
        self._became_the_program(new)
        return old

    def drain(self, old: RunningChild) -> None:
        """``old`` has had its stop signal: the stop ladder must not send it a second one."""
        self.draining = old

    def drained(self, old: RunningChild) -> None:
        if self.draining is old:
            self.draining = None

    def record_end(self, run: RunningChild) -> bool:
        """``run`` ended (or its reason was refined): the program's last end, if it is the
        current run; returns whether it is."""
        if run is not self.current:
            return False
        if run.reason is not None:
            self.last_reason = run.reason
        return True

    def is_current(self, run: RunningChild) -> bool:
        return run is self.current

    @property
    def signalled(self) -> frozenset[int]:
        """Pids that have had the stop signal already (a second could cut a graceful stop)."""
        return frozenset() if self.draining is None else frozenset({self.draining.pid})

    def __iter__(self) -> Iterator[RunningChild]:
        """Every run still known, the current one first."""
        seen: set[int] = set()
        for run in (self.current, self.candidate, self.draining):
            if run is not None and id(run) not in seen:
                seen.add(id(run))
                yield run

    def _became_the_program(self, run: RunningChild) -> None:
        self._terminal.give_to(run.pgid)
        self._restarts.child_started()


async def first_of(*events: asyncio.Event) -> None:
    """Return as soon as one of ``events`` is set (a run ended, an upgrade replaced it...)."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
