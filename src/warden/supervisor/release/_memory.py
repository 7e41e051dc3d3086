"""The program's memory: its cgroup, a sentinel watching it, and why a run died.

* ``--memory-limit SIZE`` puts every run in a memory cgroup of the program's own (created at
  start where warden may, removed at exit); the exec shim joins it before ``exec``, so the
  program allocates nothing outside it. Without it, the runs share warden's own cgroup.
* Every run's death is attributed (``memory/_attribution.py``): ``oom-killed`` only when it
  died by SIGKILL and the cgroup's ``oom_kill`` counter rose during that run; a SIGKILL
  without it is ``killed(SIGKILL) — not an OOM kill``. The memory of its last seconds goes
  to the log with the verdict.
* With ``--memory-warn-signal SIG`` the program gets SIG at ``high``; at ``critical`` it gets
  its stop signal, so it can exit cleanly before the kernel kills it (the restart policy
  then applies). ``--recycle-at LEVEL|SIZE`` turns a leak into a zero-downtime upgrade once
  the working set crosses it, if the limit leaves room for a second copy.

The sentinel runs only when one of those options asks for it; attribution is always on where
a memory cgroup is readable, and says once when none is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ...lifecycle import Fact

# Only what every start needs (discovery, attribution): the sentinel, its event sources and
# actions are imported in start() when an option asks for one (a PID 1 stays small).
from ...memory._attribution import RunAttribution
from ...memory._cgroup import MemoryCgroup, find_memory_cgroup
from ...memory._child_cgroup import ChildCgroup
from ...memory._errors import MemoryCgroupError, MemoryUnavailableError
from ...memory._events import MemoryWatchDegraded
from ...memory._levels import Level
from .._options import SupervisorOptions
from ..process._reason import ExitKind, ExitReason
from ._run import RunningChild

if TYPE_CHECKING:
    from ...memory._sentinel import MemorySentinel, MemoryStatus


class ProgramMemory:
    """The memory side of the program's runs.

    Args:
        options: ``memory_limit``, ``memory_warn_signal``, ``recycle_at``, ``stop_signal``.
        current: the program's current run, if any.
        recycle: starts a zero-downtime upgrade (the Upgrader's trigger).
        publish: the timeline.
    """

    def __init__(
        self,
        options: SupervisorOptions,
        *,
        current: Callable[[], RunningChild | None],
        recycle: Callable[[], None],
        publish: Callable[[Fact], object],
    ) -> None:
        self._options = options
        self._current = current
        self._recycle = recycle
        self._publish = publish
        self._own: ChildCgroup | None = None
        self._cgroup: MemoryCgroup | None = None
        self._sentinel: MemorySentinel | None = None
        self._attributions: dict[int, RunAttribution] = {}
        self._recycled_for: int | None = None  # the pid a recycle was asked for

    @property
    def cgroup_procs(self) -> str | None:
        """The ``cgroup.procs`` a new run joins before its exec, with ``--memory-limit``."""
        return None if self._own is None else str(self._own.procs_file)

    @property
    def sentinel(self) -> MemorySentinel | None:
        return self._sentinel

    async def start(self) -> None:
        """Find (or make) the program's cgroup, and start the sentinel if one is asked for."""
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
        if self._wants_sentinel():
            from ...memory._sentinel import MemorySentinel

            self._sentinel = MemorySentinel(
                self._cgroup,
                on_high=self._on_high,
                on_critical=self._on_critical,
                on_warn=self._on_level,
                on_ok=self._on_level,
                publish=self._publish,
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
        if self._sentinel is not None:
            self._sentinel.stop()
        if self._own is not None:
            try:
                self._own.remove()
            except MemoryCgroupError as exc:
                self._publish(MemoryWatchDegraded(reason=str(exc)))

    # -- runs ---------------------------------------------------------------------------

    def spawned(self, run: RunningChild) -> None:
        """Take the run's ``oom_kill`` counter now, to compare at its end."""
        if self._cgroup is None:
            return
        try:
            self._attributions[run.pid] = RunAttribution.at_spawn(run.pid, self._cgroup)
        except (OSError, MemoryCgroupError) as exc:
            self._publish(MemoryWatchDegraded(reason=f"oom_kill counter unreadable: {exc}"))

    def attribute(self, run: RunningChild, reason: ExitReason) -> ExitReason:
        """``reason`` made precise: ``oom-killed``, or a SIGKILL that was not one."""
        attribution = self._attributions.pop(run.pid, None)
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

    # -- levels -------------------------------------------------------------------------

    def _on_level(self, status: MemoryStatus) -> None:
        self._maybe_recycle(status)

    def _on_high(self, status: MemoryStatus) -> None:
        run = self._current()
        signum = self._options.memory_warn_signal
        if run is not None and run.running and signum is not None:
            run.send(signum, group=False)
        self._maybe_recycle(status)

    def _on_critical(self, status: MemoryStatus) -> None:
        run = self._current()
        if run is not None and run.running:
            # Its stop signal now: a clean exit (buffers flushed) before the kernel's SIGKILL.
            run.send(self._options.stop_signal, group=self._options.group)

    def _maybe_recycle(self, status: MemoryStatus) -> None:
        at = self._options.recycle_at
        run = self._current()
        if at is None or run is None or not run.running or self._recycled_for == run.pid:
            return
        crossed = status.level >= at if isinstance(at, Level) else status.working_set >= at
        # A second copy must fit beside the first: the recycle starts one.
        room = status.limit - status.working_set >= status.working_set
        if crossed and room:
            self._recycled_for = run.pid
            self._recycle()
