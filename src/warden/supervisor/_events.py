"""The supervisor's facts: what happens to the program, its releases and warden itself.

Each is a kind of the lifecycle's timeline (see ``warden.lifecycle._events``): typed fields
for observers (metrics count ``ChildExited`` by ``reason.kind``), and four short strings for
people (the log), with how loud a terminal says them (``for_people``, ``log_level``: the
program started, was ready, ended and why; upgrades, reloads and memory; warden's own steps
are DEBUG, in the JSON log only). Facts that a service manager above warden must hear
subclass the lifecycle's ``Reloading``, ``Reloaded``, ``StatusUpdate`` or
``TimeoutExtended``; the systemd observer reports them, and nothing else here speaks to
systemd.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar, Literal

from ..lifecycle import (
    Fact,
    Reloaded,
    Reloading,
    Says,
    StateChanged,
    StatusUpdate,
    TimeoutExtended,
)
from ..memory import Level
from .process._footprint import OOM_SCORE_ADJ_MIN
from .process._reason import ExitKind, ExitReason

#: How an upgrade ended (``warden status``, ``upgrade.finished``, ``/metrics``).
UpgradeOutcome = Literal["ok", "failed", "rolled back"]


#: How a fact about one run of the program is named in the log.
_PID = "pid {pid}"
_OLD = "pid {old_pid}"
_NEW = "pid {new_pid}"


# -- warden itself ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SupervisorStateChanged(StateChanged):
    """warden's own lifecycle state under ``warden run`` (kind ``state``, as any lifecycle's).

    It follows the program's: ready once the program passed its gate, stopping while the
    ladder runs. The program's facts say those moments for people, with its pid and gate, so
    the state itself is an internal step (DEBUG).
    """

    for_people: ClassVar[bool] = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SocketHeld(Fact):
    """A listening socket warden holds for every run of the program."""

    kind: ClassVar[str] = "socket"
    says: ClassVar[Says] = Says(name="{description}", detail="held for every child")
    description: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlListening(Fact):
    """The control socket is open."""

    kind: ClassVar[str] = "control"
    for_people: ClassVar[bool] = False
    says: ClassVar[Says] = Says(name="{path}", detail="listening (mode 0600)")
    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlUnavailable(Fact):
    """The default control path cannot be used: warden runs without a control socket."""

    kind: ClassVar[str] = "control.unavailable"
    says: ClassVar[Says] = Says(outcome="failed", detail="{error}; running without one")
    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SubreaperFailed(Fact):
    """PR_SET_CHILD_SUBREAPER was refused: orphans are not warden's to reap."""

    kind: ClassVar[str] = "subreaper"
    says: ClassVar[Says] = Says(outcome="failed", detail="{error}; orphans stay zombies")
    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OomScoreAdjusted(Fact):
    """warden's own ``oom_score_adj``: lowered as far as allowed; the program keeps the original."""

    kind: ClassVar[str] = "oom_score_adj"
    for_people: ClassVar[bool] = False  # the same on every run of a container: a detail
    original: int
    current: int

    @property
    def detail(self) -> str:
        if self.current == OOM_SCORE_ADJ_MIN:
            return f"set to {self.current}: the OOM killer will not pick warden"
        if self.current < self.original:
            return (
                f"lowered from {self.original} to {self.current}, the lowest allowed "
                "without CAP_SYS_RESOURCE"
            )
        return (
            f"stays {self.current}: going lower needs CAP_SYS_RESOURCE "
            "(a container needs --cap-add SYS_RESOURCE, or set it from outside)"
        )


# -- one run of the program ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildStarted(Fact):
    """A run of the program was spawned."""

    kind: ClassVar[str] = "child.started"
    says: ClassVar[Says] = Says(name=_PID, detail="started: {argv:words}")
    pid: int
    argv: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildReady(Fact):
    """A run passed its readiness gate."""

    kind: ClassVar[str] = "child.ready"
    says: ClassVar[Says] = Says(name=_PID, outcome="ready", detail="gate: {gate}", duration="took")
    pid: int
    gate: str
    took: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildNotReady(Fact):
    """A run missed its readiness gate (it ended, or was stopped when the time was up)."""

    kind: ClassVar[str] = "child.not_ready"
    says: ClassVar[Says] = Says(name=_PID, outcome="failed", detail="not ready: {reason}")
    pid: int
    reason: ExitReason | None


@dataclass(frozen=True, slots=True)
class MemoryAtExit:
    """The program's memory when a run ended, where warden watched it.

    Attributes:
        working_set: the highest working set of the memory sentinel's last samples (an OOM
            kill frees the victim's memory before warden reaps it, so the last sample alone
            would say too little); ``None`` without the sentinel.
        limit: the effective limit in bytes.
    """

    working_set: int | None
    limit: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildExited(Fact):
    """A run of the program ended, with the precise reason (and its memory, where known)."""

    kind: ClassVar[str] = "child.exited"
    says: ClassVar[Says] = Says(name=_PID, detail="{reason}", duration="uptime")
    pid: int
    reason: ExitReason
    uptime: float
    current: bool  # the program's current run (not an old release draining, not a candidate)
    memory: MemoryAtExit | None = None
    #: It died of the stop signal a stop of warden's sent it (no handler, or uvicorn's
    #: re-raise after its graceful stop): the stop asked for.
    on_stop_signal: bool = False

    @property
    def log_level(self) -> int:
        """An OOM kill is an error; any other end of the program but ``exited(0)`` or death
        of the stop signal warden sent a warning. An old release that drained, or a new one
        an upgrade gave up on, is an internal step: the upgrade's own facts say what became
        of it."""
        if self.reason.kind is ExitKind.OOM_KILLED:
            return logging.ERROR
        if not self.current:
            return logging.DEBUG
        return logging.INFO if self.reason.success or self.on_stop_signal else logging.WARNING


@dataclass(frozen=True, slots=True, kw_only=True)
class SpawnFailed(Fact):
    """The program could not be executed (126/127)."""

    kind: ClassVar[str] = "child.spawn_failed"
    says: ClassVar[Says] = Says(outcome="failed", detail="{error}")
    error: str
    exit_code: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StartDeferred(Fact):
    """A start or restart could not run the program for want of a resource (``errno``:
    EMFILE, ENFILE, ENOMEM, ENOBUFS, EAGAIN); tried again after ``delay`` (restart policy)."""

    kind: ClassVar[str] = "child.start_deferred"
    says: ClassVar[Says] = Says(
        name="attempt {attempt}",
        outcome="warning",
        detail="the program could not be started: {error}; trying again in {delay:.3g}s",
    )
    error: str
    errno: str
    attempt: int
    delay: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ProgramStatus(StatusUpdate):
    """The program's STATUS= (relayed upward for the current run)."""

    kind: ClassVar[str] = "program.status"
    for_people: ClassVar[bool] = False  # the program's own words: `warden status` shows them
    says: ClassVar[Says] = Says(name=_PID, detail="{text}")
    pid: int
    text: str

    @property
    def status(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True, kw_only=True)
class ProgramReloading(Reloading):
    """The program said RELOADING=1 (it reloads its own configuration)."""

    kind: ClassVar[str] = "program.reloading"
    says: ClassVar[Says] = Says(name=_PID)
    pid: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ProgramReloaded(Reloaded):
    """The program said READY=1 after its RELOADING=1."""

    kind: ClassVar[str] = "program.reloaded"
    says: ClassVar[Says] = Says(name=_PID)
    pid: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ProgramExtendsTimeout(TimeoutExtended):
    """The program asked for more time (EXTEND_TIMEOUT_USEC=)."""

    kind: ClassVar[str] = "program.extend_timeout"
    for_people: ClassVar[bool] = False
    says: ClassVar[Says] = Says(name=_PID, detail="{_seconds:g}s more")
    pid: int

    @property
    def _seconds(self) -> float:
        return self.usec / 1e6


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchdogExpired(Fact):
    """A run missed its watchdog (or said WATCHDOG=trigger): SIGABRT, then SIGKILL."""

    kind: ClassVar[str] = "watchdog"
    says: ClassVar[Says] = Says(
        name=_PID,
        outcome="timeout",
        detail="{_why}: SIGABRT now, SIGKILL to its group in {kill_after:g}s",
    )
    pid: int
    triggered: bool
    interval: float
    kill_after: float

    @property
    def _why(self) -> str:
        if self.triggered:
            return "WATCHDOG=trigger"
        return f"no WATCHDOG=1 within {self.interval:g}s"


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryStopSent(Fact):
    """The memory sentinel reached ``critical``: the program got its stop signal, to exit
    cleanly before the kernel's OOM killer takes it."""

    kind: ClassVar[str] = "memory.stop"
    says: ClassVar[Says] = Says(
        name=_PID,
        outcome="warning",
        detail=(
            "{signum:signal} at critical (working set {_mib}): to exit cleanly before the OOM "
            "killer"
        ),
    )
    pid: int
    signum: int
    working_set: int
    limit: int

    @property
    def _mib(self) -> str:
        return mib_of(self.working_set, self.limit)


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryHurriesUpgrade(Fact):
    """The memory sentinel reached ``critical`` during an upgrade (a ``--recycle-at`` copy
    starting beside a leaking one, most often): the old release is not stopped where it
    stands, with connections steered to it; the new one goes in as soon as it is ready, and
    the old one drains as in any upgrade."""

    kind: ClassVar[str] = "memory.hurry"
    says: ClassVar[Says] = Says(
        name=_PID,
        outcome="warning",
        detail=(
            "critical (working set {_mib}) during an upgrade: its new release goes in as soon "
            "as it is ready, without the rest of the window, and this one drains"
        ),
    )
    pid: int
    working_set: int
    limit: int

    @property
    def _mib(self) -> str:
        return mib_of(self.working_set, self.limit)


def mib_of(part: int, whole: int) -> str:
    """``51 of 64 MiB``: whole MiB from 10 MiB up, a decimal below."""

    def mib(value: int) -> str:
        number = value / 2**20
        return f"{number:.0f}" if abs(number) >= 10 else f"{number:.1f}"

    return f"{mib(part)} of {mib(whole)} MiB"


# -- the restart policy -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartScheduled(Fact):
    """The program ended and will be started again after ``delay``."""

    kind: ClassVar[str] = "restart"
    says: ClassVar[Says] = Says(
        name="attempt {attempt}", detail="after {after}; starting again in {delay:.3g}s"
    )
    attempt: int
    delay: float
    after: ExitReason | None


@dataclass(frozen=True, slots=True, kw_only=True)
class GaveUp(Fact):
    """The restart policy gave up: warden exits non-zero."""

    kind: ClassVar[str] = "give_up"
    says: ClassVar[Says] = Says(outcome="failed", detail="{message}")
    message: str
    exit_code: int


# -- the stop ladder ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StopSignalSent(Fact):
    """The ladder's first rung: the stop signal to the program (or its group)."""

    kind: ClassVar[str] = "stop_ladder"
    says: ClassVar[Says] = Says(
        name="{signum:signal}", detail="to {_target}; SIGKILL to its group in {kill_after:g}s"
    )
    signum: int
    pid: int
    pgid: int | None  # the group, when the signal went to the whole group
    kill_after: float

    @property
    def _target(self) -> str:
        return f"process group {self.pgid}" if self.pgid is not None else f"pid {self.pid}"


@dataclass(frozen=True, slots=True, kw_only=True)
class LeftoversSignalled(Fact):
    """The stop signal to what the program left behind (its group, adopted orphans)."""

    kind: ClassVar[str] = "stop_ladder.leftovers"
    says: ClassVar[Says] = Says(name="{signum:signal}")
    signum: int
    pgid: int | None
    orphans: int
    kill_after: float

    @property
    def detail(self) -> str:
        parts = [] if self.pgid is None else [f"process group {self.pgid}"]
        if self.orphans:
            parts.append(f"{self.orphans} adopted orphan{'s' if self.orphans > 1 else ''}")
        return (
            f"to {' and '.join(parts)} left behind by the program; "
            f"SIGKILL in {self.kill_after:.3g}s"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class EverythingKilled(Fact):
    """The ladder's last rung: SIGKILL to the group and every child process of warden."""

    kind: ClassVar[str] = "stop_ladder.killed"
    #: A warning whatever the outcome: the graceful stop did not finish, something was cut.
    says: ClassVar[Says] = Says(name="SIGKILL", warning=True)
    cause: Literal["deadline", "second stop signal"]
    pgid: int | None
    killed: int

    @property
    def detail(self) -> str:
        group = "-" if self.pgid is None else self.pgid
        plural = "es" if self.killed != 1 else ""
        return (
            f"{self.cause}: to process group {group} and {self.killed} child process{plural} "
            "of warden"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class StopEscalated(Fact):
    """A second stop signal: the ladder skips to SIGKILL."""

    kind: ClassVar[str] = "stop_ladder.escalated"
    says: ClassVar[Says] = Says(name="{signum:signal}", detail="second stop signal: SIGKILL now")
    signum: int


# -- upgrades -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class UpgradeStarted(Reloading):
    """An upgrade begins: a new release will start beside ``old_pid``."""

    kind: ClassVar[str] = "upgrade.started"
    says: ClassVar[Says] = Says(name=_OLD, outcome="started")
    old_pid: int

    @property
    def status(self) -> str:
        return f"upgrading pid {self.old_pid}"


@dataclass(frozen=True, slots=True, kw_only=True)
class UpgradeGateShared(Fact):
    """A probe of the new release (``check``: the gate, or ``--upgrade-confirm-url``) reaches
    whichever release accepts first, not the new one alone: it cannot tell them apart.

    ``cause``: ``connect`` (a ``tcp`` gate: warden's own socket completes the handshake),
    ``not held`` (the probe's port is not a TCP socket warden holds: UNIX sockets only, or the
    program's own port), ``shared`` (the new release shares the old one's sockets: no
    ``SO_REUSEPORT``, so no steering).
    """

    kind: ClassVar[str] = "upgrade.gate_shared"
    says: ClassVar[Says] = Says(outcome="warning")
    check: str
    cause: Literal["connect", "not held", "shared"]

    @property
    def detail(self) -> str:
        if self.cause == "connect":
            return (
                f"{self.check} reaches a socket both releases share, and a connect proves "
                "nothing: it cannot tell the new release from the old; gate upgrades with "
                "--ready http://, notify or exec:"
            )
        why = {
            "not held": "its port is not a TCP socket warden holds with --listen",
            "shared": "the releases share their sockets: no SO_REUSEPORT (systemd: ReusePort=yes)",
        }[self.cause]
        return (
            f"{self.check} cannot reach the new release alone ({why}): whichever release "
            "accepts first answers it, so a broken release may pass; probe a port warden "
            "holds, or gate upgrades with --ready notify or exec:"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class UpgradeRefusedFact(Fact):
    """An upgrade was asked for (by a signal) and cannot start now."""

    kind: ClassVar[str] = "upgrade.refused"
    says: ClassVar[Says] = Says(name="{signum:signal}", outcome="refused", detail="{reason}")
    signum: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UpgradeConfirming(Fact):
    """The new release passed its gate and serves beside the old one for ``window``."""

    kind: ClassVar[str] = "upgrade.confirming"
    says: ClassVar[Says] = Says(
        name=_NEW,
        outcome="confirming",
        detail="serving beside the old release for {window:g}s before it is told to stop",
    )
    new_pid: int
    window: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SteeringUnavailable(Fact):
    """The new release shares the old one's sockets: no sibling could be made for it."""

    kind: ClassVar[str] = "upgrade.shared_sockets"
    says: ClassVar[Says] = Says(
        outcome="warning",
        detail=(
            "cannot give the new release sockets of its own ({error}); it shares the old "
            "release's, so it may answer requests before its gate and window pass"
        ),
    )
    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleasePromoted(Fact):
    """The new release is the program from now on."""

    kind: ClassVar[str] = "upgrade.promoted"
    for_people: ClassVar[bool] = False  # upgrade.finished says it: old pid -> new pid
    says: ClassVar[Says] = Says(name=_NEW, outcome="promoted", detail="serving now")
    new_pid: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseDraining(Fact):
    """The old release had its stop signal; SIGKILL to its group after ``timeout``."""

    kind: ClassVar[str] = "upgrade.draining"
    # On a terminal too: a drain can take its whole timeout, silent otherwise until the end.
    says: ClassVar[Says] = Says(
        name=_OLD,
        outcome="draining",
        detail="{signum:signal} to the old release; SIGKILL to its group in {timeout:g}s",
    )
    old_pid: int
    signum: int
    timeout: float


@dataclass(frozen=True, slots=True, kw_only=True)
class DrainTimedOut(Fact):
    """The old release did not end within the drain timeout: its unfinished work was cut."""

    kind: ClassVar[str] = "upgrade.drain_timeout"
    says: ClassVar[Says] = Says(name=_OLD, detail="drain timeout: SIGKILL", warning=True)
    old_pid: int


@dataclass(frozen=True, slots=True, kw_only=True)
class UpgradeAbandoned(Fact):
    """warden is stopping before the upgrade under way promoted its new release: the
    upgrade ends here, unfinished and not counted; its new release (``new_pid``, if it was
    started) gets the stop signal with the old one."""

    kind: ClassVar[str] = "upgrade.abandoned"
    says: ClassVar[Says] = Says(name=_OLD, outcome="abandoned")
    old_pid: int
    new_pid: int | None

    @property
    def detail(self) -> str:
        if self.new_pid is None:
            return "warden is stopping; no new release was started"
        return f"warden is stopping; new release pid {self.new_pid} is stopped with the old one"


@dataclass(frozen=True, slots=True, kw_only=True)
class UpgradeFinished(Reloaded):
    """An upgrade ended, either way; ``result`` and ``reason`` say how."""

    kind: ClassVar[str] = "upgrade.finished"
    says: ClassVar[Says] = Says(outcome="{result}", detail="{reason}", duration="took")
    result: UpgradeOutcome
    reason: str
    old_pid: int | None
    new_pid: int | None
    took: float

    @property
    def status(self) -> str:
        return f"upgrade {self.result}: {self.reason}"


# -- --reload-on-change ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigWatching(Fact):
    """``--reload-on-change``: the watch on ``paths`` is armed; a change from now on is seen."""

    kind: ClassVar[str] = "config.watching"
    says: ClassVar[Says] = Says(
        name="{paths:list}", detail="watching; a change of content is {_does}"
    )
    paths: tuple[str, ...]
    action: Literal["upgrade", "forward"]

    @property
    def _does(self) -> str:
        return _HUP_ACTIONS[self.action]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigChanged(Fact):
    """``--reload-on-change``: the content of ``paths`` changed (by sha256, after the debounce);
    warden does what a SIGHUP to it does (``action``). A file that vanished is a change too."""

    kind: ClassVar[str] = "config.changed"
    says: ClassVar[Says] = Says(name="{paths:list}", detail="changed on disk: {_does}")
    paths: tuple[str, ...]
    action: Literal["upgrade", "forward"]

    @property
    def _does(self) -> str:
        return _HUP_ACTIONS[self.action]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigWatchFailed(Fact):
    """``--reload-on-change``: the watch ended with an error; changes are no longer seen (the
    program keeps running; SIGHUP and ``warden reload`` still work)."""

    kind: ClassVar[str] = "config.watch_failed"
    says: ClassVar[Says] = Says(
        name="{paths:list}",
        outcome="failed",
        detail="{error}; changes are no longer seen (SIGHUP and warden reload still work)",
    )
    paths: tuple[str, ...]
    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigChangeRefused(Fact):
    """``--reload-on-change``: ``path`` changed, but another user could have made the change
    (``reason``: the file or a symlink on its way is theirs, or a directory they may write);
    warden does not act on it."""

    kind: ClassVar[str] = "config.change_refused"
    says: ClassVar[Says] = Says(
        name="{path}",
        outcome="refused",
        detail="changed, but {reason}, so another user may have changed it: ignored",
    )
    path: str
    reason: str


_HUP_ACTIONS = {"forward": "SIGHUP to the program", "upgrade": "a zero-downtime upgrade"}


# -- the end ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemoryWarning:
    """A level the memory sentinel entered on the way up, before the end.

    Attributes:
        level: ``warn``, ``high`` or ``critical``.
        working_set: bytes when it was entered.
        limit: the effective limit then.
        before: seconds between entering it and the end.
    """

    level: Level
    working_set: int
    limit: int
    before: float


ExitCause = Literal["program", "stop", "memory", "warden", "none"]


@dataclass(frozen=True, slots=True, kw_only=True)
class WardenExiting(StatusUpdate):
    """Why ``warden run`` exits: published once, last, when it has decided.

    The log's closing line (info for a clean stop, warning for a non-zero exit, error for an
    OOM kill), the final STATUS= to a systemd above, and the termination message Kubernetes
    shows in ``kubectl describe pod`` all say :attr:`reason`.

    Attributes:
        exit_code: what warden exits with.
        cause: ``program`` (it ended on its own), ``stop`` (a stop signal or ``warden
            stop``), ``memory`` (the sentinel stopped it at critical), ``warden`` (warden's
            own decision: gave up, not ready, cannot start), ``none`` (no program ran).
        reason: why, in plain words: "oom-killed: working set 511 of 512 MiB; warned at
            80 % 41 s before", "stopped by SIGTERM; the program exited(0)".
        stopped_by: the signal name or request that began the stop, if one did.
        last_exit: the program's last end, if it ran.
        memory: its memory at that end, where watched.
        warnings: the memory levels entered on the way to that end.
        memory_stop: the working set and limit when the sentinel sent the stop signal.
        message: warden's own words when warden decided (the give-up line, an exec failure).
        on_stop_signal: a stop was asked for and the program died of the stop signal warden
            sent it (128+N, as asked: info, not a warning).
    """

    kind: ClassVar[str] = "exit"
    says: ClassVar[Says] = Says(name="{exit_code}", detail="{reason}")
    exit_code: int
    cause: ExitCause
    reason: str
    stopped_by: str | None = None
    last_exit: ExitReason | None = None
    memory: MemoryAtExit | None = None
    warnings: tuple[MemoryWarning, ...] = ()
    memory_stop: MemoryAtExit | None = None
    message: str | None = None
    on_stop_signal: bool = False

    @property
    def status(self) -> str:
        return " ".join(self.reason.split())  # STATUS= is one line

    @property
    def warning(self) -> bool:
        return self.exit_code != 0 and not self.on_stop_signal

    @property
    def log_level(self) -> int:
        """warden's last line: INFO for a clean stop (the program exited 0, or died of the
        stop signal a stop asked for), WARNING for another non-zero exit, ERROR when the
        program was OOM-killed."""
        if self.exit_code == 0 or self.on_stop_signal:
            return logging.INFO
        oom = self.last_exit is not None and self.last_exit.kind is ExitKind.OOM_KILLED
        return logging.ERROR if oom else logging.WARNING


@dataclass(frozen=True, slots=True, kw_only=True)
class TerminationLogFailed(Fact):
    """The reason could not be written to the termination message file."""

    kind: ClassVar[str] = "termination_log"
    says: ClassVar[Says] = Says(
        name="{path}", outcome="failed", detail="{error}; the reason is in this log only"
    )
    path: str
    error: str
