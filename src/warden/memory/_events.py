"""The memory sentinel's facts on the timeline."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

from warden.lifecycle import Fact, Outcome, Says, signal_name

from ._levels import Level


def _mib(value: int) -> str:
    return f"{value / 2**20:.1f} MiB"


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryWatching(Fact):
    """The sentinel began to watch: what it reads, and which kernel event sources it armed."""

    kind: ClassVar[str] = "memory.watching"
    for_people: ClassVar[bool] = False
    says: ClassVar[Says] = Says(detail="{reader}; sources: {_sources}")
    reader: str
    sources: tuple[str, ...]

    @property
    def _sources(self) -> str:
        return ", ".join(self.sources) or "polling only"


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryWatchDegraded(Fact):
    """Something the sentinel would use is not there (no cgroup, no PSI, ...); it goes on."""

    kind: ClassVar[str] = "memory.degraded"
    says: ClassVar[Says] = Says(outcome="warning", detail="{reason}")
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryLevelChanged(Fact):
    """The memory level moved; with the working set, the limit and the projection behind it.

    Attributes:
        level: the new level.
        previous: the level before.
        working_set: bytes (usage - inactive_file).
        limit: the effective limit in bytes.
        time_to_limit: projected seconds to the limit at the smoothed growth rate, or
            ``None`` when the working set is not growing.
        rate: the smoothed growth rate in bytes per second.
        cgroup: the watched cgroup's directory (or ``"host"``).
    """

    kind: ClassVar[str] = "memory.level"
    says: ClassVar[Says] = Says(name="{level.value}")
    level: Level
    previous: Level
    working_set: int
    limit: int
    time_to_limit: float | None
    rate: float
    cgroup: str

    @property
    def detail(self) -> str:
        ttl = "not growing" if self.time_to_limit is None else f"{self.time_to_limit:.2f} s"
        return (
            f"working set {_mib(self.working_set)} of {_mib(self.limit)} "
            f"({self.working_set / max(1, self.limit):.0%}), time to limit {ttl}, "
            f"from {self.previous.value}"
        )

    @property
    def warning(self) -> bool:
        return self.level > self.previous


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryActionTaken(Fact):
    """An action ran at a level: a default (``gc``, ``shed``, ``stop``...) or a callback."""

    kind: ClassVar[str] = "memory.action"
    for_people: ClassVar[bool] = False  # the level it acted at is said; a failure is a warning
    says: ClassVar[Says] = Says(
        name="{level.value} {action}", outcome="{result.value}", duration="took"
    )
    level: Level
    action: str
    result: Outcome
    took: float
    error: str | None = None
    note: str | None = None

    @property
    def detail(self) -> str | None:
        return self.error or self.note


@dataclass(frozen=True, slots=True, kw_only=True)
class OomKillAttributed(Fact):
    """How a process in a memory cgroup died, judged by the cgroup's ``oom_kill`` counter.

    Attributes:
        pid: the process.
        oom_killed: ``True`` only for a SIGKILL death while the counter increased during
            this run.
        signum: the signal that killed it, or ``None`` for an exit.
        exit_code: its exit code, or ``None`` for a death by signal.
        kills_during_run: how much the cgroup's ``oom_kill`` counter rose during the run
            (``None`` when it cannot be read).
        kills_survived: of those, the OOM kills the run was seen to outlive (another
            process in its cgroup was the victim); they do not make its death an OOM kill.
        timeline: the memory of its last seconds, one line per sample.
    """

    kind: ClassVar[str] = "memory.oom_kill"
    says: ClassVar[Says] = Says(name="{pid}")
    pid: int
    oom_killed: bool
    signum: int | None
    exit_code: int | None
    kills_during_run: int | None
    kills_survived: int = 0
    timeline: tuple[str, ...] = ()

    @property
    def outcome(self) -> str:
        return "oom-killed" if self.oom_killed else "not an OOM kill"

    @property
    def detail(self) -> str:
        if self.signum is None:
            how = f"exited with {self.exit_code}"
        else:
            how = f"killed({signal_name(self.signum)})"
        counter = (
            "oom_kill counter unreadable"
            if self.kills_during_run is None
            else f"oom_kill +{self.kills_during_run} during the run"
        )
        if self.kills_survived:
            counter += f" ({self.kills_survived} of another process, which this one outlived)"
        return "; ".join([how, counter, *self.timeline[-5:]])

    @property
    def warning(self) -> bool:
        return self.oom_killed

    @property
    def log_level(self) -> int:
        """An OOM kill is an error, with the memory of its last seconds. Any other death is
        a detail here: "not an OOM kill" is said where it answers a question, on the run's
        end after a SIGKILL (``killed(SIGKILL) — not an OOM kill``), not after every stop."""
        return logging.ERROR if self.oom_killed else logging.DEBUG


@dataclass(frozen=True, slots=True, kw_only=True)
class OomKillSurvived(Fact):
    """An OOM kill in a run's cgroup that the run outlived: another process was the victim,
    and the run's own death, whenever it comes, is not this kill's.

    Attributes:
        pid: the run that outlived it.
        kills: how many such kills (the rise of the cgroup's ``oom_kill`` counter).
    """

    kind: ClassVar[str] = "memory.oom_survived"
    says: ClassVar[Says] = Says(
        name="{pid}",
        outcome="warning",
        detail=(
            "oom_kill +{kills} in its cgroup killed another process; pid {pid} outlived it, "
            "so its own end will not be named after it"
        ),
    )
    pid: int
    kills: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryRecycle(Fact):
    """``--recycle-at``: the program's working set crossed it; recycled, or why not.

    Attributes:
        pid: the run to be replaced.
        at: what was crossed: a level (``warn``, ``high``) or a size such as ``64.0 MiB``.
        working_set: the cgroup's working set in bytes.
        limit: the effective limit in bytes.
        fresh: the working set of a fresh copy (measured when a run became ready alone).
        recycled: whether a zero-downtime upgrade was started.
        reason: why not, when not (no room for a second copy, an upgrade under way...).
    """

    kind: ClassVar[str] = "memory.recycle"
    says: ClassVar[Says] = Says(name="{pid}")
    pid: int
    at: str
    working_set: int
    limit: int
    fresh: int | None
    recycled: bool
    reason: str | None = None

    @property
    def outcome(self) -> str:
        return "recycling" if self.recycled else "warning"

    @property
    def detail(self) -> str:
        fresh = "unknown" if self.fresh is None else _mib(self.fresh)
        text = (
            f"working set {_mib(self.working_set)} of {_mib(self.limit)} crossed "
            f"--recycle-at {self.at}; a fresh copy takes {fresh}"
        )
        if self.recycled:
            return f"{text}: replacing pid {self.pid} by a zero-downtime upgrade"
        return f"{text}: not recycled: {self.reason}"
