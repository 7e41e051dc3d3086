"""The program's memory: its cgroup, a sentinel watching it, and why a run died.

* ``--memory-limit SIZE`` puts every run in a memory cgroup of the program's own (created at
  start where warden may, removed at exit); the exec shim joins it before ``exec``, so the
  program allocates nothing outside it. Without it, the runs share warden's own cgroup.
* Every run's death is attributed (``memory/_attribution.py``): ``oom-killed`` only when it
  died by SIGKILL and the cgroup's ``oom_kill`` counter rose during that run (read before
  its spawn: the exec itself is charged to the cgroup) by a kill the run was not seen to
  outlive (with the sentinel on, an OOM kill of another process in the
  cgroup is taken off the run's account, ``memory.oom_survived``); a SIGKILL without it is
  ``killed(SIGKILL) — not an OOM kill``. The memory of its last seconds goes to the log
  with the verdict. warden then exits 137 (128 + SIGKILL), as for any SIGKILL.
* From ``high`` on, warden's readiness (``/readyz`` with ``--health``) is false: shed load.
  With ``--memory-warn-signal SIG`` the program gets SIG at ``high``; at ``critical`` it gets
  its stop signal, so it can exit cleanly before the kernel kills it (the restart policy
  then applies; during an upgrade, the release being replaced gets it).
* ``--recycle-at LEVEL|SIZE`` turns a leak into a zero-downtime upgrade once the working set
  crosses it (checked at every sample), if a fresh copy fits beside it below ``critical``:
  a fresh copy's size is the working set measured when a run was ready alone. Either way a
  ``memory.recycle`` fact says so, once per run.

The sentinel runs only when one of those options asks for it; attribution is always on where
a memory cgroup is readable, and says once when none is.

Memory reaches the supervisor one way: the launcher and the gate tell :class:`ProgramMemory`
about each run (:meth:`~ProgramMemory.spawning`, :meth:`~ProgramMemory.spawned`,
:meth:`~ProgramMemory.ready`, :meth:`~ProgramMemory.ended`), and the one thing it asks of the
supervisor, a fresh copy for ``--recycle-at``, it sets on :attr:`~ProgramMemory.recycle_asked`,
which the runner's main loop awaits. It calls nothing of the supervisor's and follows no
timeline; the sentinel's callbacks stay inside it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from ...lifecycle import Clock, Fact, Timer

# Only what every start needs (discovery, attribution; warden.memory loads each name on first
# use): the sentinel, its event sources and actions are loaded in start() when an option asks
# for one (a PID 1 stays small).
from ...memory import (
    Level,
    MemoryCgroup,
    MemoryCgroupError,
    MemoryUnavailableError,
    MemoryWatchDegraded,
    find_memory_cgroup,
)
from ...memory import _ChildCgroup as ChildCgroup
from ...memory import _limit_of as limit_of
from ...memory import _MemoryReader as MemoryReader
from ...memory import _MemoryRecycle as MemoryRecycle
from ...memory import _OomKillSurvived as OomKillSurvived
from ...memory import _reader_for as reader_for
from ...memory import _RunAttribution as RunAttribution
from .._events import MemoryAtExit, MemoryHurriesUpgrade, MemoryStopSent
from .._options import SupervisorOptions
from ..process._reason import ExitKind, ExitReason
from ._child import RunningChild
from ._program import Program

if TYPE_CHECKING:
    from ...memory import MemorySentinel, MemoryStatus


class ProgramMemory:
    """The memory side of the program's runs.

    Args:
        options: ``memory_limit``, ``memory_warn_signal``, ``recycle_at``, ``stop_signal``.
        program: which run is the program (warned at ``high``, recycled).
        publish: the timeline.
        clock: the supervisor's clock (the sentinel's polls, the OOM kills' second look).

    The supervisor also counts :meth:`accepting` in its readiness.
    """

    #: After an OOM kill in the cgroup, how soon to look again whether each run outlived it.
    CONFIRM_AFTER = 0.05

    def __init__(
        self,
        options: SupervisorOptions,
        *,
        program: Program,
        publish: Callable[[Fact], object],
        clock: Clock | None = None,
    ) -> None:
        self._options = options
        self._clock = clock or Clock()
        self._program = program
        self._publish = publish
        self._own: ChildCgroup | None = None
        self._cgroup: MemoryCgroup | None = None
        #: One reader of the cgroup's counter for every run's attribution (a reader per run
        #: held four cgroup files open per upgrade until warden ran out of descriptors).
        self._reader: MemoryReader | None = None
        self._sentinel: MemorySentinel | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._attributions: dict[int, RunAttribution] = {}
        self._runs: dict[int, RunningChild] = {}  # the runs alive, by pid
        self._became_ready: set[int] = set()  # measured at the next sample if alone
        self._confirm: Timer | None = None
        #: The working set of a fresh copy: measured when a run was ready and alone.
        self.fresh: int | None = None
        self._recycled_for: int | None = None  # the pid a recycle was asked for
        self._refused_for: int | None = None  # the pid "no room" was said for
        self._warned = False  # told at high: not again until memory was below high
        #: Set when ``--recycle-at`` asks for a fresh copy of the program: the runner's main
        #: loop clears it and starts a zero-downtime upgrade.
        self.recycle_asked = asyncio.Event()
        #: Set at ``critical`` while an upgrade runs: the upgrade promotes its new release as
        #: soon as it is ready (its window cut short) and drains the old one, rather than
        #: the old one stopped where it stands with connections still steered to it (each
        #: reset: measured, 4 of 4 clients, a --recycle-at copy starting near the limit).
        self.hurry = asyncio.Event()
        #: Critical was met during an upgrade: if memory is still critical once it is over
        #: (it failed), the stop signal goes then.
        self._critical_pending = False
        #: The runs sent their stop signal at ``critical`` (their end is no success).
        self._stopped: set[int] = set()

    @property
    def cgroup_procs(self) -> str | None:
        """The ``cgroup.procs`` a new run joins before its exec, with ``--memory-limit``."""
        return None if self._own is None else str(self._own.procs_file)

    def accepting(self) -> bool:
        """False from ``high`` on: warden's readiness (read on any thread)."""
        sentinel = self._sentinel
        return sentinel is None or sentinel.accepting

    def describe(self) -> str | None:
        """The level and working set, for ``/readyz?verbose`` (read on any thread)."""
        sentinel = self._sentinel
        if sentinel is None:
            return None
        status = sentinel.status
        shed = "" if sentinel.accepting else ", not accepting new work"
        return (
            f"{status.level.value}: working set {status.working_set / 2**20:.1f} MiB of "
            f"{status.limit / 2**20:.1f} MiB{shed}"
        )

    async def start(self) -> None:
        """Find (or make) the program's cgroup, and start the sentinel if one is asked for."""
        self._loop = asyncio.get_running_loop()
        limit = self._options.memory_limit
        if limit is not None:
            # A limit asked for and impossible is an error before the program starts.
            self._own = ChildCgroup.create(limit)
            self._cgroup = self._own.cgroup
        else:
            try:
                self._cgroup = find_memory_cgroup()
            except MemoryUnavailableError as exc:
                self._publish(MemoryWatchDegraded(reason=f"{exc}; OOM kills cannot be named"))
                return
        self._reader = reader_for(self._cgroup)
        if self._wants_sentinel():
            from ...memory import MemorySentinel

            self._sentinel = MemorySentinel(
                self._cgroup,
                on_high=self._on_high,
                on_critical=self._on_critical,
                on_sample=self._on_sample,
                publish=self._publish,
                clock=self._clock,
            )
            await self._sentinel.start()

    def _wants_sentinel(self) -> bool:
        o = self._options
        return (
            o.memory_warn_signal is not None
            or o.recycle_at is not None
            or o.memory_limit is not None
        )

    async def stop(self) -> None:
        if self._confirm is not None:
            self._confirm.cancel()
            self._confirm = None
        if self._sentinel is not None:
            self._sentinel.stop()
        self._attributions.clear()
        self._runs.clear()
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._own is not None:
            try:
                self._own.remove()
            except MemoryCgroupError as exc:
                self._publish(MemoryWatchDegraded(reason=str(exc)))

    # -- the runs, as the launcher and the gate tell them ---------------------------------

    def spawning(self) -> int | None:
        """The cgroup's ``oom_kill`` counter, read right before a spawn.

        The run joins its cgroup before its exec, so at a small limit the kernel can kill it
        before the spawn returns: the counter a run is compared with must be read before.
        """
        if self._reader is None:
            return None
        try:
            return self._reader.oom_kills()
        except (OSError, MemoryCgroupError):
            return None  # said by spawned(), which reads it again

    def spawned(self, run: RunningChild, kills_before: int | None) -> None:
        """Keep the run's ``oom_kill`` counter from before its spawn, to compare at its end."""
        if self._reader is None:
            return
        self._runs[run.pid] = run
        try:
            self._attributions[run.pid] = RunAttribution.at_spawn(
                run.pid, self._reader, kills_before=kills_before
            )
        except (OSError, MemoryCgroupError) as exc:
            self._publish(MemoryWatchDegraded(reason=f"oom_kill counter unreadable: {exc}"))

    def ready(self, run: RunningChild) -> None:
        """``run`` passed its gate: measured at the next sample (a fresh copy, if alone)."""
        if self._sentinel is not None and self._loop:
            self._became_ready.add(run.pid)
            self._loop.call_soon(self._check)

    def ended(
        self, run: RunningChild, reason: ExitReason
    ) -> tuple[ExitReason, MemoryAtExit | None]:
        """``run`` ended for ``reason``: the reason made precise (``oom-killed``, or a SIGKILL
        that was not one), and its memory at the end."""
        return self._attribute(run, reason), self._at_exit(run)

    def _at_exit(self, run: RunningChild) -> MemoryAtExit | None:
        """The memory at ``run``'s end: the highest working set of the sentinel's samples
        since it started (the last seconds), and the limit; without the sentinel, the limit."""
        sentinel = self._sentinel
        if sentinel is not None:
            samples = [s for s in sentinel.timeline() if s.at >= run.started_at]
            if samples:
                peak = max(samples, key=lambda sample: sample.working_set)
                return MemoryAtExit(working_set=peak.working_set, limit=peak.limit)
        if self._cgroup is None:
            return None
        try:
            limit = limit_of(self._cgroup)
        except (OSError, ValueError):
            return None
        return None if limit is None else MemoryAtExit(working_set=None, limit=limit)

    def _attribute(self, run: RunningChild, reason: ExitReason) -> ExitReason:
        """``reason`` made precise: ``oom-killed``, or a SIGKILL that was not one."""
        self._runs.pop(run.pid, None)
        self._became_ready.discard(run.pid)
        attribution = self._attributions.pop(run.pid, None)
        if run.pid in self._stopped:
            self._stopped.discard(run.pid)
            reason = dataclasses.replace(reason, stopped_at_critical=True)
        if attribution is None or reason.kind is not ExitKind.KILLED:
            return reason
        timeline = self._sentinel.timeline() if self._sentinel is not None else []
        verdict = attribution.decide(signum=reason.signum, exit_code=None, timeline=timeline)
        self._publish(verdict)
        if verdict.oom_killed:
            return reason.refined(ExitKind.OOM_KILLED)
        if reason.signum == 9:
            return reason.with_detail("not an OOM kill")
        return reason

    # -- samples and levels -------------------------------------------------------------

    def _check(self) -> None:
        self._confirm = None
        if self._sentinel is not None:
            self._sentinel.check()

    def _on_sample(self, status: MemoryStatus) -> None:
        if status.level < Level.HIGH:
            self._warned = False
        self._account_oom_kills()
        if self._became_ready:
            alone = len(self._runs) == 1 and next(iter(self._runs)) in self._became_ready
            if alone:
                self.fresh = status.working_set
            self._became_ready.clear()
        if self._critical_pending and self._program.candidate is None:
            self._critical_pending = False  # the upgrade is over, either way
            if status.level >= Level.CRITICAL:
                self._on_critical(status)
        self._maybe_recycle(status)

    def _account_oom_kills(self) -> None:
        """Per OOM kill, not per cgroup: a kill a run outlived is not its death."""
        pending = False
        for pid, attribution in self._attributions.items():
            before = attribution.kills_survived
            pending = attribution.observe() or pending
            if attribution.kills_survived > before:
                self._publish(OomKillSurvived(pid=pid, kills=attribution.kills_survived - before))
        if pending and self._confirm is None and self._loop is not None:
            self._confirm = self._clock.call_later(self.CONFIRM_AFTER, self._check)

    def _on_high(self, status: MemoryStatus) -> None:
        run = self._program.current
        signum = self._options.memory_warn_signal
        # Entered from below only: back down from critical, the program knows already.
        if run is not None and run.running and signum is not None and not self._warned:
            self._warned = True
            run.send(signum, group=False)

    def _on_critical(self, status: MemoryStatus) -> None:
        candidate = self._program.candidate
        if candidate is not None and candidate.running:
            # An upgrade is under way: the release being replaced goes through its drain
            # (new connections steered away first, its queue emptied), not stopped now.
            old = self._program.current
            self._critical_pending = True
            if not self.hurry.is_set() and old is not None:
                self.hurry.set()
                self._publish(
                    MemoryHurriesUpgrade(
                        pid=old.pid, working_set=status.working_set, limit=status.limit
                    )
                )
            return
        # The release being replaced, if one drains still (the oldest), goes, not the new one;
        # one that has had its stop signal already is not sent a second (it could cut its
        # graceful stop short).
        runs = [run for run in self._runs.values() if run.running]
        run = min(runs, key=lambda r: r.started_at) if runs else self._program.current
        if run is not None and run.pid in self._program.signalled:
            return
        if run is not None and run.running:
            # Its stop signal now: a clean exit (buffers flushed) before the kernel's SIGKILL.
            signum = self._options.stop_signal
            self._publish(
                MemoryStopSent(
                    pid=run.pid,
                    signum=signum,
                    working_set=status.working_set,
                    limit=status.limit,
                )
            )
            if run.send(signum, group=self._options.group):
                self._stopped.add(run.pid)

    def _maybe_recycle(self, status: MemoryStatus) -> None:
        at = self._options.recycle_at
        run = self._program.current
        if at is None or run is None or not run.running or run.ready_at is None:
            return
        if run.pid in (self._recycled_for, self._refused_for) or len(self._runs) > 1:
            return  # asked for already, or an upgrade (a second copy) is under way
        crossed = status.level >= at if isinstance(at, Level) else status.working_set >= at
        if not crossed:
            return
        assert self._sentinel is not None
        thresholds = self._sentinel.thresholds
        label = at.value if isinstance(at, Level) else f"{at / 2**20:.1f} MiB"
        mark = getattr(thresholds, at.value, 1.0) * status.limit if isinstance(at, Level) else at
        # The second copy must fit beside the first below critical, where this one would be
        # stopped: a fresh copy's size, or (not measured yet) as much as this one holds.
        fresh = self.fresh if self.fresh is not None else status.working_set
        ceiling = thresholds.critical * status.limit
        refused: str | None = None
        if self.fresh is not None and self.fresh >= mark:
            # A fresh copy at the mark would be recycled as soon as it is alone, and so would
            # the next one: an upgrade loop, not a cure.
            refused = (
                f"a fresh copy already holds {self.fresh / 2**20:.1f} MiB, at or above "
                f"--recycle-at {label}: recycling would never end; raise --recycle-at"
            )
        elif status.working_set + fresh > ceiling:
            refused = (
                f"no room for a second copy: {status.working_set / 2**20:.1f} + "
                f"{fresh / 2**20:.1f} MiB is above critical ({ceiling / 2**20:.1f} MiB); "
                "raise --memory-limit or lower --recycle-at"
            )
        if refused is None:
            self._recycled_for = run.pid
        else:
            self._refused_for = run.pid  # said once per run
        self._publish(
            MemoryRecycle(
                pid=run.pid,
                at=label,
                working_set=status.working_set,
                limit=status.limit,
                fresh=self.fresh,
                recycled=refused is None,
                reason=refused,
            )
        )
        if refused is None:
            self.recycle_asked.set()
