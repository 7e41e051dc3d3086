"""The upgrade's steps, done with explicit collaborators (the order is the Upgrader's).

``current`` → ``began`` → ``check`` → ``start_new`` (spawn + gate) → ``promote`` → ``drain``
→ ``finished``. Each step is a few lines over the runs (:class:`~._runs.Runs`), the launcher
(spawn and gate), the stop ladder and the timeline.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable

from ..._exceptions import UpgradeFailed, UpgradeRefused, UpgradeRolledBack
from ...lifecycle import Clock, Fact
from .._events import (
    DrainTimedOut,
    ProgramStatus,
    ReleaseDraining,
    ReleasePromoted,
    SteeringUnavailable,
    UpgradeConfirming,
    UpgradeFinished,
    UpgradeGateShared,
    UpgradeStarted,
)
from .._options import SupervisorOptions
from ..process._ladder import StopLadder
from ..process._members import Descendants, exited
from ..process._spawn import Terminal
from ..sockets._held import HeldSockets
from ..sockets._steering import Steering, queued, steerable
from ._launcher import Launcher
from ._restart import RestartTracker
from ._run import RunningChild
from ._runs import Runs, first_of
from ._upgrade import UpgradeResult


class ReleaseSwap:
    """Implements the :class:`~._upgrade.UpgradeSteps` for ``warden run``.

    Args:
        stopping: whether warden is stopping (no upgrade starts then).
    """

    def __init__(
        self,
        options: SupervisorOptions,
        *,
        runs: Runs,
        launcher: Launcher,
        ladder: StopLadder,
        restarts: RestartTracker,
        terminal: Terminal,
        sockets: Callable[[], HeldSockets],
        adopt: Callable[[HeldSockets], None],
        publish: Callable[[Fact], object],
        clock: Clock,
        stopping: Callable[[], bool],
    ) -> None:
        self._options = options
        self._runs = runs
        self._launcher = launcher
        self._ladder = ladder
        self._restarts = restarts
        self._terminal = terminal
        self._sockets = sockets
        self._adopt = adopt
        #: While an upgrade steers: the old release's sockets and the new release's siblings.
        self._steering: Steering | None = None
        self._old_watch: asyncio.Future[object] | None = None
        self._publish = publish
        self._clock = clock
        self._stopping = stopping

    def current(self) -> RunningChild:
        """The program to replace; raises UpgradeRefused when there is none to replace."""
        if self._options.ready.kind == "none":
            raise UpgradeRefused(
                "an upgrade needs a readiness gate to know the new release works: run warden "
                "with --ready notify, --ready http://..., --ready tcp or --ready exec:CMD"
            )
        if self._stopping():
            raise UpgradeRefused("warden is stopping")
        child = self._runs.current
        if child is None or not child.running or child.ready_at is None:
            raise UpgradeRefused("no ready program to upgrade; try again once it is ready")
        return child

    def began(self, old: RunningChild) -> None:
        self._publish(UpgradeStarted(old_pid=old.pid))

    async def check(self) -> None:
        command = self._options.upgrade_check
        if not command:
            return
        timeout = self._options.ready_timeout
        try:
            async with self._clock.timeout(timeout):
                code = await self._launcher.run_check(command)
        except TimeoutError:
            raise UpgradeFailed(f"--upgrade-check did not finish within {timeout:g}s") from None
        except OSError as exc:  # cannot be run (SpawnError), or out of descriptors
            raise UpgradeFailed(f"--upgrade-check: {exc}") from None
        if code != 0:
            raise UpgradeFailed(f"--upgrade-check {shlex.join(command)!r} exited with {code}")

    async def start_new(self) -> RunningChild:
        given = self._steer_to_old()
        self._warn_unsteered()
        try:
            new = self._launcher.spawn(given)
        except OSError as exc:  # cannot be run (SpawnError), or out of descriptors (EMFILE)
            self._unsteer()
            raise UpgradeFailed(f"the new release cannot start: {exc}") from None
        self._runs.propose(new)  # until promoted or gone; a stop meanwhile stops it too
        try:
            failure = await self._launcher.gate(
                new, route=self._steering, stop_within=self._options.drain_seconds
            )
        except BaseException:
            self._unsteer()
            raise
        if failure is not None:
            self._unsteer()
            self._runs.withdraw(new)
            raise UpgradeFailed(f"new release pid {new.pid} {failure}", new_pid=new.pid)
        return new

    async def confirm(self, new: RunningChild, old: RunningChild) -> None:
        """The confirmation window: ``new`` serves beside ``old`` for ``--upgrade-confirm``.

        Returns once ``new`` stayed up (every process of it, and every health check passed)
        for the whole window, or at once when ``old`` ends meanwhile (``new`` is all there
        is). Otherwise ``new`` is stopped and :class:`UpgradeRolledBack` raised: ``old`` was
        never told to stop.
        """
        window = self._options.upgrade_confirm
        if window <= 0:
            return
        ready_at = new.ready_at if new.ready_at is not None else self._clock.now()
        self._publish(UpgradeConfirming(new_pid=new.pid, window=window))
        # Its workers too: a master that respawns crashing workers stays up, and between
        # crashes its probes pass (process/_members.py says how their ends are seen).
        members = Descendants(new.pid)
        try:
            why = await self._watch(new, old, members, window, ready_at)
        finally:
            members.close()
        if why is None:
            return
        # Its whole group, even when its leader is gone: workers a dead master left behind
        # still hold its sockets (and would keep a place in the reuseport group).
        await self._launcher.stop_run(new, self._options.drain_seconds)
        self._unsteer()
        self._runs.withdraw(new)
        raise UpgradeRolledBack(why, new_pid=new.pid)

    async def _watch(
        self,
        new: RunningChild,
        old: RunningChild,
        members: Descendants,
        window: float,
        ready_at: float,
    ) -> str | None:
        """The window itself: why ``new`` failed in it, or None."""
        deadline = self._clock.now() + window
        failures = 0  # in the whole window, not only in a row: a release with one worker of
        # two hung answers every other probe, and must not pass on the ones it answers
        last_failed = False
        members.scan()
        # The window ends on a passed health check: one that failed near its end (a release
        # hanging: each unanswered probe takes the probe's whole timeout) is checked again at
        # once, and a second failure rolls back, however late in the window the first came.
        while self._clock.now() < deadline or last_failed:
            now = self._clock.now()
            tick = max(now, min(deadline, now + _health_interval(window)))
            await self._clock.wait_until(first_of(new.ended, old.ended, members.changed), tick)
            if members.ended and new.running and exited(new.pid):
                # Its main process ended too (its workers' ends may be seen first): its exit
                # reason says more, and the reaper has it at its next SIGCHLD.
                await self._clock.wait_until(new.ended.wait(), self._clock.now() + _REAP_GRACE)
            after = self._clock.now() - ready_at
            if not new.running:
                after = (new.ended_at or self._clock.now()) - ready_at
                return f"new release pid {new.pid} {new.reason} {after:.3g}s after it was ready"
            if not old.running:
                return None  # the old release is gone: the new one is promoted at once
            if members.ended:
                ended = ", ".join(map(str, members.ended))
                which = "process" if len(members.ended) == 1 else "processes"
                return (
                    f"new release pid {new.pid}: its {which} {ended} ended {after:.3g}s after "
                    "it was ready"
                )
            members.scan()  # workers started since (a respawned one) are watched too
            if self._clock.now() < deadline or last_failed:
                problem = await self._launcher.healthy(new, self._steering)
                last_failed = problem is not None
                failures += last_failed
                if failures >= _HEALTH_FAILURES:
                    return f"new release pid {new.pid}: {problem}"
        return None

    async def abandon(self) -> None:
        """A step failed in a way none foresaw (out of processes or descriptors in a health
        check): the new release this upgrade started, if any, is stopped and withdrawn, never
        left serving beside the old one, and the steering is undone."""
        new = self._runs.candidate
        self._unsteer()
        if new is not None:
            await self._launcher.stop_run(new, self._options.drain_seconds)
            self._runs.withdraw(new)

    def promote(self, new: RunningChild, old: RunningChild) -> None:
        if self._steering is not None:
            self._steering.to_new()  # new connections go to the new release from now on
        self._runs.promote(new)
        self._terminal.give_to(new.pgid)
        self._restarts.child_started()
        if old.watchdog is not None:
            old.watchdog.stop()
        if new.status is not None:
            self._publish(ProgramStatus(pid=new.pid, text=new.status))
        self._publish(ReleasePromoted(new_pid=new.pid))

    async def drain(self, old: RunningChild) -> None:
        timeout = self._options.drain_seconds
        deadline = self._clock.now() + timeout
        signalled = False
        if old.running:
            if self._steering is not None:
                # Still serving, no longer given new connections: told to stop only once it
                # has taken every connection queued for it, or they would wait on a socket no
                # one accepts from. A bounded wait of a few milliseconds under load.
                while (
                    old.running and queued(self._steering.old) > 0 and self._clock.now() < deadline
                ):
                    await self._clock.sleep(_QUEUE_CHECK)
            old.send(self._options.stop_signal, group=self._options.group)
            signalled = self._options.group
            self._runs.drain(old)
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
        self._runs.drained(old)
        self._retire_old_sockets()

    # -- steering (sockets/_steering.py) ------------------------------------------------

    def _steer_to_old(self) -> HeldSockets:
        """The sockets for the new release: siblings steered away from it, where possible."""
        current = self._sockets()
        if not steerable(current):
            return current
        try:
            steering = Steering(current)
        except OSError as exc:
            self._publish(SteeringUnavailable(error=str(exc)))
            return current
        self._steering = steering
        old = self._runs.current
        if old is not None:
            # The old release dying mid-upgrade: the new one is all there is, so it gets the
            # connections at once rather than a socket no one accepts from.
            watch: asyncio.Future[object] = asyncio.ensure_future(old.ended.wait())
            watch.add_done_callback(self._old_ended)
            self._old_watch = watch
        return steering.new

    def _warn_unsteered(self) -> None:
        """Say so when a probe of the new release cannot reach it alone: it then asks
        whichever release accepts first, usually the old one."""
        ready = self._options.ready
        if ready.kind == "tcp" and self._launcher.probes_held_socket():
            # Even steered, a connect proves nothing: warden's sibling accepts the handshake.
            self._publish(UpgradeGateShared(check=f"--ready {ready}", cause="connect"))
        checks = [("--ready", ready)] if ready.kind == "http" else []
        if self._options.upgrade_confirm_url is not None:
            checks.append(("--upgrade-confirm-url", self._options.upgrade_confirm_url))
        for flag, check in checks:
            if not self._launcher.holds_port(check.port):
                self._publish(UpgradeGateShared(check=f"{flag} {check}", cause="not held"))
            elif self._steering is None:
                self._publish(UpgradeGateShared(check=f"{flag} {check}", cause="shared"))

    def _old_ended(self, watch: asyncio.Future[object]) -> None:
        if not watch.cancelled() and self._steering is not None:
            self._steering.to_new()

    def _stop_watching_old(self) -> None:
        if self._old_watch is not None:
            self._old_watch.cancel()
            self._old_watch = None

    def _unsteer(self) -> None:
        """The new release failed: warden's copies of its siblings closed."""
        steering, self._steering = self._steering, None
        self._stop_watching_old()
        if steering is not None:
            steering.abandon()

    def _retire_old_sockets(self) -> None:
        """The old release is gone: its sockets closed, the siblings the program's now."""
        steering, self._steering = self._steering, None
        self._stop_watching_old()
        if steering is not None:
            self._adopt(steering.retire())

    def close(self) -> None:
        """warden stops: whatever an upgrade under way still holds."""
        self._stop_watching_old()
        steering, self._steering = self._steering, None
        if steering is not None:
            steering.close(keep=self._sockets())

    def finished(self, result: UpgradeResult) -> None:
        self._publish(
            UpgradeFinished(
                result=result.result,
                reason=result.detail,
                old_pid=result.old_pid,
                new_pid=result.new_pid,
                took=result.duration,
            )
        )


#: Health checks in the window: about ten, 0.1 to 1 s apart; a timer only while one runs.
def _health_interval(window: float) -> float:
    return min(1.0, max(0.1, window / 10))


#: How often the old release's accept queue is looked at before it is told to stop.
_QUEUE_CHECK = 0.002

#: Failed health checks in one window that roll back (one slow probe under load is not
#: enough; two, in a row or not, are a release that does not answer as it should).
_HEALTH_FAILURES = 2

#: How long the window waits for the reaper to report a main process seen to have exited.
_REAP_GRACE = 1.0
