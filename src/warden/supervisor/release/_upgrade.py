"""Zero-downtime upgrade: one at a time, every failure leaving the old release serving.

::

    request      --upgrade-check CMD, if given (non-zero: the upgrade fails here)
    spawn        the new release gets the *same* listening sockets and its own notify socket
    gate         --ready, within --ready-timeout, probing the new release alone (through the
                 shared port: sockets/_steering.py); a new release that ends or is late is
                 stopped
    confirm      --upgrade-confirm: the new release serves beside the old one (no client's
                 connection reaches it); if it exits, a process of it ends, it misses its
                 watchdog or fails its health check, it is stopped: rolled back, and the old
                 release, never told to stop, keeps serving
    promote      the new release is the program from now on (signals, status, restarts)
    drain        the old release gets its stop signal, --drain-timeout, then SIGKILL to its group

The listening sockets stay open in warden all along, so a connection that arrives while no
release accepts waits in the kernel's backlog: it is neither refused nor reset.

Requests coalesce: one that arrives while an upgrade runs joins it and gets its result (two
deploy hooks firing at once start one new release, not two in a row). The old release may die
during the upgrade; the new one is then promoted as soon as it is ready (or, in the window, at
once), and the supervisor's restart policy only applies if the upgrade fails too. A new
release that dies after its promotion, during the drain, makes the upgrade a failure; what
happens to it is then the restart policy's business, and the old release finishes its drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Protocol

from ..._exceptions import UpgradeFailed, UpgradeRefused, UpgradeRolledBack
from .._events import UpgradeOutcome
from .._tally import Tally
from ._child import RunningChild


@dataclass(frozen=True)
class UpgradeResult:
    """How one upgrade ended. Times are seconds on the supervisor's monotonic clock."""

    result: UpgradeOutcome
    detail: str
    old_pid: int | None
    new_pid: int | None
    ready_after: float | None
    duration: float
    finished_at: float

    @property
    def ok(self) -> bool:
        return self.result == "ok"

    def to_json(self, now: float, *, coalesced: bool | None = None) -> dict[str, object]:
        reply: dict[str, object] = {
            "result": self.result,
            "detail": self.detail,
            "old_pid": self.old_pid,
            "new_pid": self.new_pid,
            "ready_after": self.ready_after,
            "duration": self.duration,
            "finished_ago": max(0.0, now - self.finished_at),
        }
        if coalesced is not None:
            reply["coalesced"] = coalesced
        return reply


class UpgradeSteps(Protocol):
    """What the supervisor does for each step; the :class:`Upgrader` decides the order."""

    def current(self) -> RunningChild:
        """The running release; raise :class:`UpgradeRefused` when none can be upgraded."""

    async def check(self) -> None:
        """Run ``--upgrade-check``; raise :class:`UpgradeFailed` if it fails."""

    async def start_new(self) -> RunningChild:
        """Spawn the new release and pass its gate; raise :class:`UpgradeFailed` otherwise
        (the new release is gone by then)."""

    async def confirm(self, new: RunningChild, old: RunningChild) -> None:
        """The confirmation window; raise :class:`UpgradeRolledBack` if ``new`` fails in it
        (``new`` is gone by then, ``old`` never told to stop)."""

    async def abandon(self) -> None:
        """An unforeseen failure before promotion: stop the new release, if one started."""

    def promote(self, new: RunningChild, old: RunningChild) -> None:
        """Make ``new`` the program."""

    async def drain(self, old: RunningChild) -> None:
        """Stop the old release: stop signal, drain timeout, SIGKILL to its group (what is
        left of it, when the release itself has ended during the upgrade)."""

    def began(self, old: RunningChild) -> None:
        """An upgrade starts (RELOADING=1 upward)."""

    def finished(self, result: UpgradeResult) -> None:
        """An upgrade ended, either way (READY=1 upward, the timeline)."""


class Upgrader:
    """Runs upgrades one at a time and keeps their record for ``warden status``.

    A request joins the upgrade under way only until that upgrade has spawned its new release:
    one that comes later may be about code deployed since, so it gets one more upgrade, queued
    behind the first (and joined by any other request that comes meanwhile).

    Example::

        upgrader = Upgrader(steps)
        result, coalesced = await upgrader.request()   # warden upgrade
        upgrader.trigger()                              # SIGHUP: fire and forget
    """

    def __init__(
        self,
        steps: UpgradeSteps,
        *,
        clock: Callable[[], float] = time.monotonic,
        tally: Tally | None = None,
    ):
        self._steps = steps
        self._clock = clock
        self._task: asyncio.Task[UpgradeResult] | None = None  # the upgrade under way
        self._queued: asyncio.Task[UpgradeResult] | None = None  # the one after it
        self._spawned = False  # the upgrade under way has started its new release
        self.tally = tally or Tally()
        self.last: UpgradeResult | None = None
        #: Requesters waiting for an upgrade (more than one: coalesced).
        self.waiting = 0
        #: The release the upgrade under way is replacing, until it is replaced.
        self.replacing: RunningChild | None = None
        #: Set while no upgrade runs or waits.
        self.idle = asyncio.Event()
        self.idle.set()

    @property
    def running(self) -> bool:
        return not self.idle.is_set()

    async def request(self) -> tuple[UpgradeResult, bool]:
        """Upgrade, or join an upgrade that has not spawned yet; returns its result and whether
        it was joined. Raises :class:`UpgradeRefused` when none can start.

        The upgrade runs as a task of its own: a requester that goes away (a control client
        that disconnects) does not cancel it.
        """
        task, coalesced = self._join_or_start()
        self.waiting += 1
        try:
            await asyncio.wait({task})  # our own cancellation still propagates; the task's not
        finally:
            self.waiting -= 1
        if task.cancelled():
            raise UpgradeRefused("warden is stopping; the upgrade was abandoned")
        return task.result(), coalesced  # raises the UpgradeRefused of a queued upgrade

    def trigger(self) -> None:
        """Start an upgrade, or join one as :meth:`request` does (SIGHUP).

        Raises :class:`UpgradeRefused` when none can start.
        """
        self._join_or_start()

    async def cancel(self) -> None:
        """warden is stopping: abandon the upgrades under way and queued (the stop ladder
        takes over)."""
        for task in (self._queued, self._task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, UpgradeRefused):
                    await task

    def _join_or_start(self) -> tuple[asyncio.Task[UpgradeResult], bool]:
        if self._queued is not None and not self._queued.done():
            return self._queued, True
        if self._task is not None and not self._task.done():
            if not self._spawned:
                return self._task, True
            self._queued = self._spawn_task(self._after(self._task))
            return self._queued, False
        old = self._steps.current()  # raises UpgradeRefused
        self._task = self._spawn_task(self._run(old))
        return self._task, False

    def _spawn_task(
        self, work: Coroutine[None, None, UpgradeResult]
    ) -> asyncio.Task[UpgradeResult]:
        self.idle.clear()
        task = asyncio.get_running_loop().create_task(work)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[UpgradeResult]) -> None:
        # A SIGHUP-triggered upgrade has no awaiter: fetch the outcome so asyncio does not log
        # "exception was never retrieved" for a refusal or a cancellation at stop.
        if not task.cancelled():
            task.exception()
        if all(t is None or t.done() for t in (self._task, self._queued)):
            self.replacing = None
            self.idle.set()

    async def _after(self, previous: asyncio.Task[UpgradeResult]) -> UpgradeResult:
        await asyncio.wait({previous})
        old = self._steps.current()  # raises UpgradeRefused
        self._task, self._queued = self._queued, None
        return await self._run(old)

    async def _run(self, old: RunningChild) -> UpgradeResult:
        self._spawned = False
        self.replacing = old
        self._steps.began(old)
        started = self._clock()
        ready_after: float | None = None
        promoted = False
        try:
            await self._steps.check()
            self._spawned = True
            new = await self._steps.start_new()
            ready_after = self._clock() - started
            await self._steps.confirm(new, old)
            self._steps.promote(new, old)
            promoted = True
            self.replacing = None
            outcome: UpgradeOutcome = "ok"
            new_pid: int | None = new.pid
            had_ended = not old.running
            await self._steps.drain(old)  # an ended one's too: its workers may be left
            if had_ended:
                detail = f"pid {old.pid} -> {new.pid}; pid {old.pid} had ended: {old.reason}"
            else:
                detail = f"pid {old.pid} -> {new.pid}; pid {old.pid} {old.reason}"
            if not new.running:
                # Promoted, then gone before the old release had finished: not a success,
                # and what happens next is the restart policy's business.
                outcome = "failed"
                detail = f"new release pid {new.pid} {new.reason} during the drain; {detail}"
        except UpgradeRolledBack as exc:
            outcome, new_pid = "rolled back", exc.new_pid
            detail = f"{exc}; pid {old.pid} keeps serving" if old.running else str(exc)
        except UpgradeFailed as exc:
            outcome, new_pid = "failed", exc.new_pid
            detail = f"{exc}; pid {old.pid} keeps serving" if old.running else str(exc)
        except Exception as exc:
            # A step failed in a way it did not foresee: still a failed upgrade, counted and
            # published (a RELOADING=1 upward must get its READY=1), never an internal error.
            outcome, new_pid = "failed", new.pid if promoted else None
            detail = f"the upgrade failed: {type(exc).__name__}: {exc}"
            if not promoted:
                try:
                    await self._steps.abandon()  # never two releases left serving
                except Exception as again:  # the result must still be said
                    detail += f"; stopping the new release failed too: {again}"
                if old.running:
                    detail += f"; pid {old.pid} keeps serving"
        except asyncio.CancelledError:
            if not promoted:
                raise
            # warden is stopping, but the new release had taken over: that upgrade happened.
            outcome, new_pid = "ok", new.pid
            detail = f"pid {old.pid} -> {new.pid}; warden stopped during the drain"
        now = self._clock()
        result = UpgradeResult(
            outcome, detail, old.pid, new_pid, ready_after, now - started, finished_at=now
        )
        self.tally.upgrades[result.result] += 1
        self.last = result
        self._steps.finished(result)
        return result
