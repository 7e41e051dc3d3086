"""Zero-downtime upgrade: one at a time, every failure leaving the old release serving.

::

    request      --upgrade-check CMD, if given (non-zero: the upgrade fails here)
    spawn        the new release gets the *same* listening sockets and its own notify socket
    gate         --ready, within --ready-timeout; a new release that ends or is late is killed
    promote      the new release is the program from now on (signals, status, restarts)
    drain        the old release gets its stop signal, --drain-timeout, then SIGKILL to its group

The listening sockets stay open in warden all along, so a connection that arrives while no
release accepts waits in the kernel's backlog: it is neither refused nor reset.

Requests coalesce: one that arrives while an upgrade runs joins it and gets its result (two
deploy hooks firing at once start one new release, not two in a row). The old release may die
during the upgrade; the new one is then promoted as soon as it is ready, and the supervisor's
restart policy only applies if the upgrade fails too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from ._child import RunningChild


class UpgradeRefused(Exception):
    """No upgrade can start now (nothing is running, or warden is stopping); says why."""


class UpgradeFailed(Exception):
    """A step failed; the old release keeps serving. The message is the detail."""

    def __init__(self, detail: str, *, new_pid: int | None = None) -> None:
        super().__init__(detail)
        #: The new release that was started and is gone again, if one was.
        self.new_pid = new_pid


@dataclass(frozen=True)
class UpgradeResult:
    """How one upgrade ended. Times are seconds on the supervisor's monotonic clock."""

    result: Literal["ok", "failed"]
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

    def current(self) -> RunningChild | None:
        """The running release, or None (the upgrade is refused then)."""

    async def check(self) -> None:
        """Run ``--upgrade-check``; raise :class:`UpgradeFailed` if it fails."""

    async def start_new(self) -> RunningChild:
        """Spawn the new release and pass its gate; raise :class:`UpgradeFailed` otherwise
        (the new release is gone by then)."""

    def promote(self, new: RunningChild, old: RunningChild) -> None:
        """Make ``new`` the program."""

    async def drain(self, old: RunningChild) -> None:
        """Stop the old release: stop signal, drain timeout, SIGKILL to its group."""

    def began(self, old: RunningChild) -> None:
        """An upgrade starts (RELOADING=1 upward)."""

    def finished(self, result: UpgradeResult) -> None:
        """An upgrade ended, either way (READY=1 upward, the timeline)."""


class Upgrader:
    """Runs upgrades one at a time and keeps their record for ``warden status``.

    Example::

        upgrader = Upgrader(steps)
        result, coalesced = await upgrader.request()   # warden upgrade
        upgrader.trigger()                              # SIGHUP: fire and forget
    """

    def __init__(self, steps: UpgradeSteps, *, clock: Callable[[], float] = time.monotonic):
        self._steps = steps
        self._clock = clock
        self._task: asyncio.Task[UpgradeResult] | None = None
        self.ok = 0
        self.failed = 0
        self.last: UpgradeResult | None = None
        #: Requesters waiting for the upgrade under way (more than one: coalesced).
        self.waiting = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def request(self) -> tuple[UpgradeResult, bool]:
        """Upgrade, or join the upgrade under way; returns its result and whether it was
        joined. Raises :class:`UpgradeRefused` when none can start.

        The upgrade runs as a task of its own: a requester that goes away (a control client
        that disconnects) does not cancel it.
        """
        coalesced = self._task is not None and not self._task.done()
        if not coalesced:
            self._task = self._start()
        task = self._task
        assert task is not None
        self.waiting += 1
        try:
            await asyncio.wait({task})  # our own cancellation still propagates; the task's not
        finally:
            self.waiting -= 1
        if task.cancelled():
            raise UpgradeRefused("warden is stopping; the upgrade was abandoned")
        return task.result(), coalesced

    def trigger(self) -> Awaitable[UpgradeResult] | None:
        """Start an upgrade unless one runs (then this one is coalesced into it).

        Raises :class:`UpgradeRefused` when none can start. Returns the upgrade's task.
        """
        if self._task is None or self._task.done():
            self._task = self._start()
        return self._task

    async def wait(self) -> None:
        """Return once no upgrade runs."""
        if self._task is not None and not self._task.done():
            await asyncio.wait({self._task})

    async def cancel(self) -> None:
        """warden is stopping: abandon the upgrade under way (the stop ladder takes over)."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _start(self) -> asyncio.Task[UpgradeResult]:
        old = self._steps.current()
        if old is None or not old.running or old.ready_at is None:
            raise UpgradeRefused("no ready program to upgrade; try again once it is ready")
        self._steps.began(old)
        task = asyncio.get_running_loop().create_task(self._run(old))
        task.add_done_callback(_retrieve)
        return task

    async def _run(self, old: RunningChild) -> UpgradeResult:
        started = self._clock()
        ready_after: float | None = None
        try:
            await self._steps.check()
            new = await self._steps.start_new()
            ready_after = self._clock() - started
            self._steps.promote(new, old)
            if old.running:
                await self._steps.drain(old)
                detail = f"pid {old.pid} -> {new.pid}; pid {old.pid} {old.reason}"
            else:
                detail = f"pid {old.pid} -> {new.pid}; pid {old.pid} had ended: {old.reason}"
            result = self._finish(
                "ok", detail, old=old, new_pid=new.pid, ready_after=ready_after, started=started
            )
        except UpgradeFailed as exc:
            detail = f"{exc}; pid {old.pid} keeps serving" if old.running else str(exc)
            result = self._finish(
                "failed",
                detail,
                old=old,
                new_pid=exc.new_pid,
                ready_after=ready_after,
                started=started,
            )
        return result

    def _finish(
        self,
        outcome: Literal["ok", "failed"],
        detail: str,
        *,
        old: RunningChild,
        new_pid: int | None,
        ready_after: float | None,
        started: float,
    ) -> UpgradeResult:
        now = self._clock()
        result = UpgradeResult(
            outcome,
            detail,
            old.pid,
            new_pid,
            ready_after,
            now - started,
            now,
        )
        if result.ok:
            self.ok += 1
        else:
            self.failed += 1
        self.last = result
        self._steps.finished(result)
        return result


def _retrieve(task: asyncio.Task[UpgradeResult]) -> None:
    # A SIGHUP-triggered upgrade has no awaiter: fetch the outcome so asyncio does not log
    # "exception was never retrieved" for a cancellation at stop.
    if not task.cancelled():
        task.exception()
