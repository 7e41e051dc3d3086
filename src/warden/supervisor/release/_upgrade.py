"""Zero-downtime upgrade: one at a time, every failure leaving the old release serving.

The steps, in order (:meth:`Upgrader._upgrade` calls them, one line each)::

    refuse       no readiness gate, warden stopping, no ready program: refused, nothing done
    began        upgrade.started, a Reloading: RELOADING=1 to a systemd above
    check        --upgrade-check CMD, if given (non-zero: the upgrade fails here)
    start_new    spawn: the new release gets its own notify socket and the listening sockets
                 (siblings of them, steered away from it: _upgrade_sockets.py); gate: --ready
                 within --ready-timeout, probing the new release alone through the shared
                 port; a new release that ends or is late is stopped
    confirm      --upgrade-confirm: the new release serves beside the old one (no client's
                 connection reaches it); if it exits, a process of it ends, it misses its
                 watchdog or fails its health checks, it is stopped: rolled back, and the old
                 release, never told to stop, keeps serving (_window.py)
    promote      the new release is the program from now on (connections, signals, status,
                 restarts)
    drain        the old release gets its stop signal once it has taken the connections
                 queued for it, --drain-timeout, then SIGKILL to its group; its sockets close
    finished     upgrade.finished, a Reloaded: READY=1 upward; counted, kept for status

A step that fails as foreseen raises :class:`UpgradeFailed` (or :class:`UpgradeRolledBack`)
with the new release already gone; one that fails as nobody foresaw is still a failed
upgrade, counted and said, after ``abandon`` stopped whatever new release it started.

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
import shlex
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Literal

from ..._exceptions import UpgradeFailed, UpgradeRefused, UpgradeRolledBack
from ...lifecycle import Clock, Fact
from .._events import (
    DrainTimedOut,
    ProgramStatus,
    ReleaseDraining,
    ReleasePromoted,
    UpgradeAbandoned,
    UpgradeConfirming,
    UpgradeFinished,
    UpgradeGateShared,
    UpgradeOutcome,
    UpgradeRefusedFact,
    UpgradeStarted,
)
from .._options import SupervisorOptions
from .._tally import Tally
from ..process._ladder import StopLadder
from ._child import RunningChild
from ._gate import Gate
from ._launcher import Launcher
from ._program import Program
from ._upgrade_sockets import UpgradeSockets
from ._window import watch_window

#: How often the old release's accept queue is looked at before it is told to stop.
_QUEUE_CHECK = 0.002


#: The step of an upgrade under way, as ``warden status`` names it: ``check``
#: (``--upgrade-check`` runs), ``gate`` (the new release started, its gate not passed yet),
#: ``confirming`` (its window), ``draining`` (it was promoted; the old release drains).
UpgradeStep = Literal["check", "gate", "confirming", "draining"]


@dataclass(frozen=True)
class UnderWay:
    """Where the upgrade under way is: its step, since when (the supervisor's clock), and the
    releases (``new_pid`` once the new release is started)."""

    step: UpgradeStep
    since: float
    old_pid: int
    new_pid: int | None = None

    def to_json(self, now: float) -> dict[str, object]:
        return {
            "step": self.step,
            "for": max(0.0, now - self.since),
            "old_pid": self.old_pid,
            "new_pid": self.new_pid,
        }


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


class Upgrader:
    """Runs upgrades one at a time, step by step, and keeps their record for ``warden status``.

    A request joins the upgrade under way only until that upgrade has spawned its new release:
    one that comes later may be about code deployed since, so it gets one more upgrade, queued
    behind the first (and joined by any other request that comes meanwhile).

    Example::

        result, coalesced = await upgrader.request()   # warden upgrade
        upgrader.trigger(signal.SIGHUP)                 # fire and forget

    Args:
        options: ``--ready``, ``--upgrade-check``, ``--upgrade-confirm``, ``--drain-timeout``...
        program: which run is the program; the one place it changes.
        launcher: spawns the new release.
        gate: its readiness gate, and the window's health checks.
        ladder: stops a new release that failed, and what is left of the old one.
        publish: puts a fact on the timeline.
        clock: the supervisor's clock.
        tally: counts upgrades by result.
        stopping: whether warden is stopping (no upgrade starts then).
        hurry: set when memory reached critical during an upgrade: its window is cut short.
    """

    def __init__(
        self,
        options: SupervisorOptions,
        *,
        program: Program,
        launcher: Launcher,
        gate: Gate,
        ladder: StopLadder,
        publish: Callable[[Fact], object],
        clock: Clock,
        tally: Tally,
        stopping: Callable[[], bool],
        hurry: asyncio.Event | None = None,
    ) -> None:
        self._options = options
        #: Set by the memory sentinel at critical: the window of the upgrade under way ends
        #: as soon as its new release is ready (cleared as each upgrade begins).
        self._hurry = hurry or asyncio.Event()
        self._program = program
        self._launcher = launcher
        self._gate = gate
        self._ladder = ladder
        self._publish = publish
        self._clock = clock
        self.tally = tally
        self._stopping = stopping
        #: The sockets of the upgrade under way (steered siblings for the new release).
        self.sockets = UpgradeSockets(program, publish)
        self._task: asyncio.Task[UpgradeResult] | None = None  # the upgrade under way
        self._queued: asyncio.Task[UpgradeResult] | None = None  # the one after it
        self._spawned = False  # the upgrade under way has started its new release
        self.last: UpgradeResult | None = None
        #: The step of the upgrade under way, None between upgrades (``warden status``).
        self.under_way: UnderWay | None = None
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

    # -- requests -------------------------------------------------------------------------

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

    def trigger(self, signum: int, *, asked_by: str | None = None) -> None:
        """Start an upgrade, or join one as :meth:`request` does: fire and forget (SIGHUP,
        ``--recycle-at``). A refusal is said (``upgrade.refused``, naming ``signum``, 0 for
        none, and what asked: ``asked_by``)."""
        try:
            self._join_or_start()
        except UpgradeRefused as exc:
            reason = str(exc) if asked_by is None else f"{asked_by}: {exc}"
            self._publish(UpgradeRefusedFact(signum=signum, reason=reason))

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
        old = self._refuse_unless_ready()
        self._task = self._spawn_task(self._upgrade(old))
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
            self.under_way = None
            self.idle.set()

    async def _after(self, previous: asyncio.Task[UpgradeResult]) -> UpgradeResult:
        await asyncio.wait({previous})
        old = self._refuse_unless_ready()
        self._task, self._queued = self._queued, None
        return await self._upgrade(old)

    # -- one upgrade, step by step ---------------------------------------------------------

    async def _upgrade(self, old: RunningChild) -> UpgradeResult:
        self._hurry.clear()
        self._spawned = False
        self.replacing = old
        self._publish(UpgradeStarted(old_pid=old.pid))  # began
        started = self._clock.now()
        ready_after: float | None = None
        promoted = False
        try:
            await self._check(old)
            self._spawned = True
            new = await self._start_new(old)
            ready_after = self._clock.now() - started
            await self._confirm(new, old)
            self._promote(new, old)
            promoted = True
            self.replacing = None
            self._step("draining", old, new)
            outcome: UpgradeOutcome = "ok"
            new_pid: int | None = new.pid
            had_ended = not old.running
            await self._drain(old)  # an ended one's too: its workers may be left
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
                    await self._abandon()  # never two releases left serving
                except Exception as again:  # the result must still be said
                    detail += f"; stopping the new release failed too: {again}"
                if old.running:
                    detail += f"; pid {old.pid} keeps serving"
        except asyncio.CancelledError:
            if not promoted:
                # warden is stopping: said, or a terminal shows nothing of the new release
                # it now waits for (the stop ladder signals it with the old one).
                candidate = self._program.candidate
                new_pid = None if candidate is None else candidate.pid
                self._publish(UpgradeAbandoned(old_pid=old.pid, new_pid=new_pid))
                raise
            # warden is stopping, but the new release had taken over: that upgrade happened.
            outcome, new_pid = "ok", new.pid
            detail = f"pid {old.pid} -> {new.pid}; warden stopped during the drain"
        self.under_way = None
        now = self._clock.now()
        result = UpgradeResult(
            outcome, detail, old.pid, new_pid, ready_after, now - started, finished_at=now
        )
        self._finished(result)
        return result

    def _refuse_unless_ready(self) -> RunningChild:
        """The program to replace; raises :class:`UpgradeRefused` when there is none."""
        if self._options.ready.kind == "none":
            raise UpgradeRefused(
                "an upgrade needs a readiness gate to know the new release works: run warden "
                "with --ready notify, --ready http://..., --ready tcp or --ready exec:CMD"
            )
        if self._stopping():
            raise UpgradeRefused("warden is stopping")
        child = self._program.current
        if child is None or not child.running or child.ready_at is None:
            raise UpgradeRefused("no ready program to upgrade; try again once it is ready")
        return child

    async def _check(self, old: RunningChild) -> None:
        """``--upgrade-check``, if given; raises :class:`UpgradeFailed` if it fails."""
        command = self._options.upgrade_check
        if not command:
            return
        self._step("check", old)
        timeout = self._options.ready_timeout
        try:
            async with self._clock.timeout(timeout):
                code = await self._gate.run_check(command)
        except TimeoutError:
            raise UpgradeFailed(f"--upgrade-check did not finish within {timeout:g}s") from None
        except OSError as exc:  # cannot be run (SpawnError), or out of descriptors
            raise UpgradeFailed(f"--upgrade-check: {exc}") from None
        if code != 0:
            raise UpgradeFailed(f"--upgrade-check {shlex.join(command)!r} exited with {code}")

    def _step(self, step: UpgradeStep, old: RunningChild, new: RunningChild | None = None) -> None:
        """The upgrade under way enters ``step`` (``warden status`` shows it)."""
        new_pid = None if new is None else new.pid
        self.under_way = UnderWay(step, self._clock.now(), old.pid, new_pid)

    async def _start_new(self, old: RunningChild) -> RunningChild:
        """Spawn the new release and pass its gate; raises :class:`UpgradeFailed` otherwise
        (the new release is gone by then)."""
        given = self.sockets.for_new_release()
        self._warn_unsteered()
        try:
            new = self._launcher.spawn(given)
        except OSError as exc:  # cannot be run (SpawnError), or out of descriptors (EMFILE)
            self.sockets.undo()
            raise UpgradeFailed(f"the new release cannot start: {exc}") from None
        self._program.propose(new)  # until promoted or gone; a stop meanwhile stops it too
        self._step("gate", old, new)
        try:
            failure = await self._gate.wait(
                new, route=self.sockets.steering, stop_within=self._options.drain_seconds
            )
        except BaseException:
            self.sockets.undo()
            raise
        if failure is not None:
            self.sockets.undo()
            self._program.withdraw(new)
            raise UpgradeFailed(f"new release pid {new.pid} {failure}", new_pid=new.pid)
        return new

    async def _confirm(self, new: RunningChild, old: RunningChild) -> None:
        """The confirmation window: returns once ``new`` stayed up for ``--upgrade-confirm``
        (or at once when ``old`` ended meanwhile). Otherwise ``new`` is stopped and
        :class:`UpgradeRolledBack` raised: ``old`` was never told to stop."""
        window = self._options.upgrade_confirm
        if window <= 0:
            return
        self._step("confirming", old, new)
        self._publish(UpgradeConfirming(new_pid=new.pid, window=window))
        why = await watch_window(
            new,
            old,
            window=window,
            clock=self._clock,
            healthy=lambda: self._gate.healthy(new, self.sockets.steering),
            hurry=self._hurry,
        )
        if why is None:
            return
        # Its whole group, even when its leader is gone: workers a dead master left behind
        # still hold its sockets (and would keep a place in the reuseport group).
        await self._ladder.stop_run(new, self._options.drain_seconds)
        self.sockets.undo()
        self._program.withdraw(new)
        raise UpgradeRolledBack(why, new_pid=new.pid)

    def _promote(self, new: RunningChild, old: RunningChild) -> None:
        """``new`` is the program from now on."""
        self.sockets.to_new_release()  # new connections go to the new release from now on
        self._program.promote(new)
        if old.watchdog is not None:
            old.watchdog.stop()
        if new.status is not None:
            self._publish(ProgramStatus(pid=new.pid, text=new.status))
        self._publish(ReleasePromoted(new_pid=new.pid))

    async def _drain(self, old: RunningChild) -> None:
        """Stop the old release: stop signal, drain timeout, SIGKILL to its group (what is
        left of it, when the release itself ended during the upgrade)."""
        timeout = self._options.drain_seconds
        deadline = self._clock.now() + timeout
        signalled = False
        if old.running:
            # Still serving, no longer given new connections: told to stop only once it has
            # taken every connection queued for it, or they would wait on a socket no one
            # accepts from. A bounded wait of a few milliseconds under load.
            while (
                old.running and self.sockets.queued_for_old() > 0 and self._clock.now() < deadline
            ):
                await self._clock.sleep(_QUEUE_CHECK)
            old.send(self._options.stop_signal, group=self._options.group)
            signalled = self._options.group
            self._program.drain(old)
            self._publish(
                ReleaseDraining(old_pid=old.pid, signum=self._options.stop_signal, timeout=timeout)
            )
            if not await self._clock.wait_until(old.ended.wait(), deadline):
                self._publish(DrainTimedOut(old_pid=old.pid))
        # What is left of its process group (workers finishing their requests; or, when the
        # release died during the upgrade, workers its dead master left behind, which still
        # hold its sockets) gets the rest of the drain time, then SIGKILL. Only then are the
        # old sockets closed and the siblings the program's: a dead release's sockets too, or
        # what was queued on them would wait for nobody until its client gives up.
        await self._ladder.stop_group(old, deadline, group_signalled=signalled)
        await old.ended.wait()
        self._program.drained(old)
        self.sockets.retire_old()

    async def _abandon(self) -> None:
        """A step failed in a way none foresaw (out of processes or descriptors in a health
        check): the new release this upgrade started, if any, is stopped and withdrawn, never
        left serving beside the old one, and the steering is undone."""
        new = self._program.candidate
        self.sockets.undo()
        if new is not None:
            await self._ladder.stop_run(new, self._options.drain_seconds)
            self._program.withdraw(new)

    def _finished(self, result: UpgradeResult) -> None:
        """The upgrade ended, either way: counted, kept, said (READY=1 upward)."""
        self.tally.upgrades[result.result] += 1
        self.last = result
        self._publish(
            UpgradeFinished(
                result=result.result,
                reason=result.detail,
                old_pid=result.old_pid,
                new_pid=result.new_pid,
                took=result.duration,
            )
        )

    def _warn_unsteered(self) -> None:
        """Say so when a probe of the new release cannot reach it alone: it then asks
        whichever release accepts first, usually the old one."""
        ready = self._options.ready
        if ready.kind == "tcp" and self._gate.probes_held_socket():
            # Even steered, a connect proves nothing: warden's sibling accepts the handshake.
            self._publish(UpgradeGateShared(check=f"--ready {ready}", cause="connect"))
        checks = [("--ready", ready)] if ready.kind == "http" else []
        if self._options.upgrade_confirm_url is not None:
            checks.append(("--upgrade-confirm-url", self._options.upgrade_confirm_url))
        for flag, check in checks:
            if not self._gate.holds_port(check.port):
                self._publish(UpgradeGateShared(check=f"{flag} {check}", cause="not held"))
            elif self.sockets.steering is None:
                self._publish(UpgradeGateShared(check=f"{flag} {check}", cause="shared"))
