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
    UpgradeConfirming,
    UpgradeFinished,
    UpgradeGateShared,
    UpgradeStarted,
)
from .._options import SupervisorOptions
from ..process._ladder import StopLadder
from ..process._spawn import SpawnError, Terminal
from ..sockets._held import HeldSockets
from ..sockets._probe import PROBE_NAME
from ._launcher import Launcher
from ._restart import RestartTracker
from ._run import RunningChild
from ._runs import Runs
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
        if self._options.ready.kind == "tcp" and self._launcher.probes_held_socket():
            self._publish(UpgradeGateShared(gate=str(self._options.ready)))
        self._publish(UpgradeStarted(old_pid=old.pid))

    async def check(self) -> None:
        command = self._options.upgrade_check
        if not command:
            return
        timeout = self._options.ready_timeout
        try:
            async with asyncio.timeout(timeout):
                code = await self._launcher.run_check(command)
        except TimeoutError:
            raise UpgradeFailed(f"--upgrade-check did not finish within {timeout:g}s") from None
        except SpawnError as exc:
            raise UpgradeFailed(f"--upgrade-check: {exc}") from None
        if code != 0:
            raise UpgradeFailed(f"--upgrade-check {shlex.join(command)!r} exited with {code}")

    async def start_new(self) -> RunningChild:
        try:
            new = self._launcher.spawn()
        except SpawnError as exc:
            raise UpgradeFailed(f"the new release cannot start: {exc}") from None
        self._runs.propose(new)  # until promoted or gone; a stop meanwhile stops it too
        failure = await self._launcher.gate(
            new, alone=True, stop_within=self._options.drain_seconds
        )
        if failure is not None:
            self._runs.withdraw(new)
            if new.probe_port is not None and not new.notified.is_set():
                failure += (
                    f" (probed alone on its {PROBE_NAME} socket, the last LISTEN_FDS entry: a "
                    "server must serve every socket it is handed, or gate upgrades with "
                    "--ready notify)"
                )
            raise UpgradeFailed(f"new release pid {new.pid} {failure}", new_pid=new.pid)
        return new

    async def confirm(self, new: RunningChild, old: RunningChild) -> None:
        """The confirmation window: ``new`` serves beside ``old`` for ``--upgrade-confirm``.

        Returns once ``new`` stayed up (and passed every health check) for the whole window,
        or at once when ``old`` ends meanwhile (``new`` is all there is). Otherwise ``new`` is
        stopped and :class:`UpgradeRolledBack` raised: ``old`` was never told to stop.
        """
        window = self._options.upgrade_confirm
        if window <= 0:
            return
        ready_at = new.ready_at if new.ready_at is not None else self._clock.now()
        self._publish(UpgradeConfirming(new_pid=new.pid, window=window))
        deadline = self._clock.now() + window
        failures = 0
        why: str | None = None
        while why is None and self._clock.now() < deadline:
            tick = min(deadline, self._clock.now() + _health_interval(window))
            await self._clock.wait_until(_first_of(new.ended, old.ended), tick)
            if not new.running:
                after = (new.ended_at or self._clock.now()) - ready_at
                why = f"new release pid {new.pid} {new.reason} {after:.3g}s after it was ready"
            elif not old.running:
                return  # the old release is gone: the new one is promoted at once
            elif self._clock.now() < deadline:
                problem = await self._launcher.healthy(new)
                failures = 0 if problem is None else failures + 1
                if failures >= _HEALTH_FAILURES:
                    why = f"new release pid {new.pid}: {problem}"
        if why is None:
            return
        if new.running:
            await self._launcher.stop_run(new, self._options.drain_seconds)
        self._runs.withdraw(new)
        raise UpgradeRolledBack(why, new_pid=new.pid)

    def promote(self, new: RunningChild, old: RunningChild) -> None:
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
        old.send(self._options.stop_signal, group=self._options.group)
        self._runs.drain(old)
        self._publish(
            ReleaseDraining(old_pid=old.pid, signum=self._options.stop_signal, timeout=timeout)
        )
        deadline = self._clock.now() + timeout
        if not await self._clock.wait_until(old.ended.wait(), deadline):
            self._publish(DrainTimedOut(old_pid=old.pid))
        # What is left of its process group (workers finishing their requests) gets the rest
        # of the drain time, then SIGKILL.
        await self._ladder.stop_group(old, deadline, group_signalled=self._options.group)
        await old.ended.wait()
        self._runs.drained(old)

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


#: Consecutive failed health checks that roll back (one slow probe under load is not enough).
_HEALTH_FAILURES = 2


async def _first_of(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
