"""``kill-mode``: ``KillMode=process`` or ``none`` lets the program's children outlive a stop.

With ``process`` systemd signals only warden, and with ``none`` nothing, and neither kills
what is left in the unit's cgroup once warden is gone: a worker that left warden's view (a
double fork into a new session) survives the stop and the restart. ``mixed`` (SIGTERM to
warden only, SIGKILL to the whole cgroup at the end) is the one to use with warden.
"""

from __future__ import annotations

from .._deployment import Deployment
from .._results import Result, error, ok

ID = "kill-mode"


def check(d: Deployment) -> list[Result]:
    if d.platform != "systemd" or d.kill_mode is None:
        return []
    mode, written = d.kill_mode
    where = d.at(written)
    shown = f"KillMode={mode}" + (" (the default)" if written.line is None else "")
    if mode in ("process", "none"):
        return [
            error(
                ID,
                where,
                f"{shown}: at a stop systemd leaves the rest of the unit's cgroup alone, so "
                "the program's children outlive the stop",
                "set KillMode=mixed: SIGTERM to warden alone, systemd's final SIGKILL to "
                "whatever is left",
            )
        ]
    return [ok(ID, where, f"{shown}: nothing of the program outlives the stop")]
