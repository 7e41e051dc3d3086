"""``warden status``: what a supervisor knows, as one frozen snapshot.

:func:`snapshot` reads the supervisor once; the :class:`Status` it returns never changes, so
a reply is consistent even while an upgrade moves the program on. The control socket sends
:meth:`Status.to_json`, which the client (``warden.cli._control``) renders as a table; its
keys are the client's contract.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

from .._version import __version__
from ..lifecycle import State
from ._closing import monotonic_age

if TYPE_CHECKING:
    from ._supervisor import Supervisor
    from .release._child import RunningChild


@dataclasses.dataclass(frozen=True, slots=True)
class WardenStatus:
    pid: int
    version: str
    state: str
    uptime: float
    control: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class ProgramStatus:
    pid: int | None
    state: str
    uptime: float | None
    restarts: int
    status: str | None
    command: tuple[str, ...]
    last_exit: str | None
    #: The last end in plain words, with what is known around it (its memory for an OOM
    #: kill); its exit code; seconds since.
    last_exit_reason: str | None = None
    last_exit_code: int | None = None
    last_exit_ago: float | None = None
    #: Seconds until it is started again, while a restart's backoff is waited out.
    restart_in: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class UpgradeStatus:
    running: bool
    waiting: int
    ok: int
    failed: int
    rolled_back: int
    last: dict[str, object] | None
    #: The upgrade under way: its step (check, gate, confirming, draining), seconds in it,
    #: its old and new release.
    current: dict[str, object] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Status:
    """The supervisor at one instant."""

    warden: WardenStatus
    program: ProgramStatus
    upgrade: UpgradeStatus
    sockets: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        data = dataclasses.asdict(self)
        data["program"]["command"] = list(self.program.command)
        data["sockets"] = list(self.sockets)
        return data


def snapshot(supervisor: Supervisor) -> Status:
    """The status of ``supervisor`` now."""
    now = supervisor.clock.now()
    child = supervisor.current_child
    upgrader = supervisor.upgrader
    last = upgrader.last
    reason = supervisor.reason
    ended = supervisor.closing.last_exit()
    running = child is not None and child.running
    under_way = upgrader.under_way
    next_start = supervisor.next_start_at
    return Status(
        warden=WardenStatus(
            pid=os.getpid(),
            version=__version__,
            state=supervisor.lifecycle.state.value,
            uptime=now - supervisor.started_at,
            control=supervisor.control_path,
        ),
        program=ProgramStatus(
            pid=None if child is None else child.pid,
            state=_program_state(supervisor, child),
            uptime=None if child is None or not running else now - child.started_at,
            restarts=supervisor.tally.restarts,
            # A run that ended says nothing more: its last STATUS= would read as the present.
            status=None if child is None or not running else child.status,
            command=tuple(supervisor.options.command),
            last_exit=None if reason is None else str(reason),
            last_exit_reason=None if ended is None else ended.words,
            last_exit_code=None if ended is None else ended.exit_code,
            last_exit_ago=None if ended is None else monotonic_age(ended.at),
            restart_in=None if next_start is None else max(0.0, next_start - now),
        ),
        upgrade=UpgradeStatus(
            running=upgrader.running,
            waiting=upgrader.waiting,
            ok=supervisor.tally.upgrades["ok"],
            failed=supervisor.tally.upgrades["failed"],
            rolled_back=supervisor.tally.upgrades["rolled back"],
            last=None if last is None else last.to_json(now),
            current=None if under_way is None else under_way.to_json(now),
        ),
        sockets=tuple(supervisor.sockets.describe()),
    )


def _program_state(supervisor: Supervisor, child: RunningChild | None) -> str:
    if supervisor.lifecycle.state in (State.DRAINING, State.STOPPING, State.STOPPED):
        return "stopping"
    if child is None:
        return "starting"
    if not child.running:
        if supervisor.upgrader.running:
            return "upgrading"  # it ended during an upgrade: the new release may take over
        return "restarting" if supervisor.lifecycle.state is State.READY else "exited"
    if supervisor.upgrader.running:
        return "upgrading"
    return "ready" if child.ready_at is not None else "starting"
