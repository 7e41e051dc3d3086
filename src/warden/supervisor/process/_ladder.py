"""The stop ladder: stop signal, a deadline, SIGKILL to the group, SIGKILL to orphans, wait.

::

    t=0            stop signal (--stop-signal) to the child, or to its group with --group
    child ends     the stop signal to whatever it left behind that has not had it yet
    t=timeout      SIGKILL to the child's process group, then to every child of warden
                   (adopted orphans, even those that left the group with setsid)
    ...            SIGKILL again to each newly adopted orphan, until waitpid says ECHILD
    all gone       warden may exit: nothing it started is left running

A second SIGTERM/SIGINT (:attr:`StopLadder.escalate`) skips straight to SIGKILL.

Why "until ECHILD" means "all gone": when a process dies, the kernel re-parents its children
to warden (the subreaper) *before* warden can reap it (``exit_notify`` runs
``forget_original_parent`` first), so as long as any descendant is alive warden has a child,
and ``waitpid`` only fails with ECHILD once the whole tree is gone.

Every wait is on events (a SIGCHLD reaped, the escalation) with the deadline as the only
timer, on ``time.monotonic()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from typing import Protocol

from ...lifecycle import Clock, Fact
from ...lifecycle import _child_pids as children
from .._events import EverythingKilled, LeftoversSignalled, StopSignalSent
from ._reaper import Reaper


class Run(Protocol):
    """What the ladder needs of one run of the program (``release.RunningChild``)."""

    @property
    def pid(self) -> int: ...
    @property
    def pgid(self) -> int: ...
    @property
    def running(self) -> bool: ...
    @property
    def ended(self) -> asyncio.Event: ...

    #: The stop signal the ladder sent it, if it did (its death of that signal is the stop
    #: asked for, not a fault of the program's).
    stop_signal: int | None

    def send(self, signum: int, *, group: bool) -> bool: ...


_KILLED_WAIT = 5.0  # seconds for a SIGKILLed group to be reaped (a D-state process may linger)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member we may not signal (a setuid leftover) is still there
        return True
    return True


class StopLadder:
    """Stops the program and everything it started, within ``timeout`` seconds plus a kill.

    Args:
        reaper: the reaper, whose :meth:`Reaper.reap` the supervisor calls on SIGCHLD; call
            :meth:`reaped` after each such call so the ladder re-checks what is left.
        stop_signal: the first signal.
        timeout: seconds from the stop signal to SIGKILL.
        group: the stop signal goes to the child's process group, not just the child.
        publish: puts each step on the timeline.
        spared: the pids that have had the stop signal already (an upgrade's old release
            draining): a second one could turn a graceful stop into an abrupt one.
    """

    def __init__(
        self,
        reaper: Reaper,
        *,
        stop_signal: int,
        timeout: float,
        group: bool,
        publish: Callable[[Fact], object],
        spared: Callable[[], frozenset[int]] = frozenset,
        clock: Clock | None = None,
    ) -> None:
        self._reaper = reaper
        self._stop_signal = stop_signal
        self._timeout = timeout
        self._group = group
        self._publish = publish
        self._spared = spared
        self._clock = clock or Clock()
        self._changed = asyncio.Event()
        #: Set by a second stop signal: skip the rest of the wait, SIGKILL now.
        self.escalate = asyncio.Event()

    def reaped(self) -> None:
        """Something was reaped (or may have been): waiters re-check their condition."""
        self._changed.set()

    async def stop(self, child: Run | None) -> None:
        """The whole ladder, for a stop warden was asked for."""
        deadline = self._clock.now() + self._timeout
        group_signalled = False
        if child is not None and child.running and not self.escalate.is_set():
            child.stop_signal = self._stop_signal
            child.send(self._stop_signal, group=self._group)
            group_signalled = self._group
            self._publish(
                StopSignalSent(
                    signum=self._stop_signal,
                    pid=child.pid,
                    pgid=child.pgid if self._group else None,
                    kill_after=self._timeout,
                )
            )
            await self._wait(lambda: not child.running, deadline)
        await self.clear(child, deadline, group_signalled=group_signalled)

    async def clear(self, child: Run | None, deadline: float, *, group_signalled: bool) -> None:
        """What the program left behind gets the stop signal, then SIGKILL at ``deadline``.

        Also used when the child ended on its own (``group_signalled=False``): its leftovers
        must not outlive it, or a restarted program finds its port still taken.
        """
        self._reaper.reap()
        if self._reaper.childless:
            return
        if not self.escalate.is_set() and self._clock.now() < deadline:
            group, orphans = self._signal_leftovers(child, group_signalled=group_signalled)
            if group is not None or orphans:
                self._publish(
                    LeftoversSignalled(
                        signum=self._stop_signal,
                        pgid=group,
                        orphans=orphans,
                        kill_after=max(0.0, deadline - self._clock.now()),
                    )
                )
            if await self._wait(lambda: self._reaper.childless, deadline):
                return
        await self._kill_all(child)

    def _signal_leftovers(
        self, child: Run | None, *, group_signalled: bool
    ) -> tuple[int | None, int]:
        """The stop signal to each leftover that has not had it yet: (the group, if it got
        it; how many adopted orphans got it)."""
        pgid = None if child is None else child.pgid
        group = None
        if child is not None and not group_signalled and child.send(self._stop_signal, group=True):
            group = pgid
        orphans = 0
        spared = self._spared()
        for pid in children():
            with contextlib.suppress(OSError):  # gone, or EPERM (a setuid leftover)
                if os.getpgid(pid) != pgid and pid not in spared:
                    os.kill(pid, self._stop_signal)
                    orphans += 1
        return group, orphans

    async def stop_run(self, run: Run, within: float | None = None) -> None:
        """Stop one run and what is left of its group (a release that missed its gate or failed
        its confirmation window, an upgrade abandoned): the stop signal to its group, SIGKILL
        after ``within`` seconds (the ladder's timeout by default); returns once it ended."""
        deadline = self._clock.now() + (self._timeout if within is None else within)
        run.send(self._stop_signal, group=True)
        await self.stop_group(run, deadline, group_signalled=True)
        await run.ended.wait()

    async def stop_group(self, child: Run, deadline: float, *, group_signalled: bool) -> None:
        """Stop what is left of ``child``'s process group, as the ladder does for a whole stop.

        The stop signal (unless the group had it), then SIGKILL at ``deadline``; returns once
        the group is empty. For one run among others (an upgrade's old or failed release):
        the other runs' processes are left alone.
        """
        pgid = child.pgid
        if not _group_alive(pgid):
            return
        if not group_signalled and self._clock.now() < deadline:
            child.send(self._stop_signal, group=True)
        if await self._wait(lambda: not _group_alive(pgid), deadline):
            return
        child.send(signal.SIGKILL, group=True)
        # SIGKILL cannot be caught: the group is gone as soon as the reaper has its members.
        await self._wait(lambda: not _group_alive(pgid), self._clock.now() + _KILLED_WAIT)

    async def _kill_all(self, child: Run | None) -> None:
        if child is not None:
            child.send(signal.SIGKILL, group=True)
        killed = self._reaper.kill_children(signal.SIGKILL)
        self._publish(
            EverythingKilled(
                cause="second stop signal" if self.escalate.is_set() else "deadline",
                pgid=None if child is None else child.pgid,
                killed=killed,
            )
        )
        while True:
            self._reaper.reap()
            if self._reaper.childless:
                return
            self._changed.clear()
            await self._changed.wait()
            # Killing an orphan re-parents *its* children to warden: kill those too.
            self._reaper.kill_children(signal.SIGKILL)

    async def _wait(self, done: Callable[[], bool], deadline: float) -> bool:
        """Wait until ``done()``; False at the deadline or on escalation."""
        while not done():
            if self._clock.now() >= deadline or self.escalate.is_set():
                return False
            self._changed.clear()
            changed = asyncio.ensure_future(self._changed.wait())
            escalated = asyncio.ensure_future(self.escalate.wait())
            due = asyncio.ensure_future(_true_at(self._clock, deadline))
            try:
                await asyncio.wait([changed, escalated, due], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in (changed, escalated, due):
                    waiter.cancel()
        return True


async def _true_at(clock: Clock, when: float) -> bool:
    await clock.at(when)
    return True
