"""``warden status``: what a supervisor knows, as the JSON the control socket sends.

The client (``warden.cli._control``) renders it as a table; the keys are its contract.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from .._version import __version__
from ..lifecycle import State

if TYPE_CHECKING:
    from ._child import RunningChild
    from ._supervisor import Supervisor


def describe(supervisor: Supervisor) -> dict[str, object]:
    """The status of ``supervisor`` now."""
    now = time.monotonic()
    child = supervisor.current_child
    upgrader = supervisor.upgrader
    last = upgrader.last
    return {
        "warden": {
            "pid": os.getpid(),
            "version": __version__,
            "state": supervisor.lifecycle.state.value,
            "uptime": now - supervisor.started_at,
            "control": supervisor.control_path,
        },
        "program": {
            "pid": None if child is None else child.pid,
            "state": _program_state(supervisor, child),
            "uptime": None if child is None or not child.running else now - child.started_at,
            "restarts": supervisor.restarts,
            "status": None if child is None else child.status,
            "command": list(supervisor.options.command),
            "last_exit": None if supervisor.reason is None else str(supervisor.reason),
        },
        "upgrade": {
            "running": upgrader.running,
            "waiting": upgrader.waiting,
            "ok": upgrader.ok,
            "failed": upgrader.failed,
            "last": None if last is None else last.to_json(now),
        },
        "sockets": supervisor.sockets.describe(),
    }


def _program_state(supervisor: Supervisor, child: RunningChild | None) -> str:
    if supervisor.lifecycle.state in (State.DRAINING, State.STOPPING, State.STOPPED):
        return "stopping"
    if child is None:
        return "starting"
    if not child.running:
        return "restarting" if supervisor.lifecycle.state is State.READY else "exited"
    if supervisor.upgrader.running:
        return "upgrading"
    return "ready" if child.ready_at is not None else "starting"
