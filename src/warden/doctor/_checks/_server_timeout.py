"""``server-timeout``: the program's own graceful timeout must end before warden's SIGKILL.

warden sends the stop signal, waits ``--stop-timeout``, then SIGKILLs the program's group.
A server that allows itself as long or longer (gunicorn's 30 s default against warden's
10 s), or has no limit at all (uvicorn by default waits for its connections for ever), is
cut by warden's SIGKILL in the middle of what it meant to finish, and its own clean exit
(logs flushed, connections closed) never happens.
"""

from __future__ import annotations

import math

from .._deployment import Deployment
from .._results import Result, error, ok
from ._unknown import cannot_check

ID = "server-timeout"


def check(d: Deployment) -> list[Result]:
    if d.warden is None or d.server is None or d.server.graceful is None:
        return []
    graceful = d.server.graceful
    unknown = d.warden.unknown("stop_timeout") + ([graceful.unknown] if graceful.unknown else [])
    if unknown:
        return [
            cannot_check(
                ID,
                d.where,
                unknown,
                f"{d.server.name}'s graceful timeout must end before warden's SIGKILL at "
                "--stop-timeout",
                f"make sure {graceful.label} is below --stop-timeout (a couple of seconds)",
            )
        ]
    return [_within_stop(d), *_drain_within(d)]


def _drain_within(d: Deployment) -> list[Result]:
    """A ``warden.Lifecycle`` program refuses a drain that is not shorter than its deadline."""
    assert d.server is not None and d.server.graceful is not None
    if d.server.name != "warden.Lifecycle" or d.drain is None:
        return []
    deadline = d.server.graceful
    said = f"the drain ({d.drain.label}) {d.drain.value:g} s"
    if d.drain.value < deadline.seconds:
        return [ok(ID, d.where, f"{said} < {deadline.said()}")]
    return [
        error(
            ID,
            d.where,
            f"{said} >= {deadline.said()}: the program's lifecycle refuses to start "
            "(its drain runs inside its deadline)",
            "raise WARDEN_SHUTDOWN_TIMEOUT above the drain, or drain less",
        )
    ]


def _within_stop(d: Deployment) -> Result:
    assert d.warden is not None and d.server is not None and d.server.graceful is not None
    graceful = d.server.graceful
    stop = d.warden["stop_timeout"]
    limit = float(stop.value)
    where = d.where
    if graceful.seconds < limit:
        return ok(ID, where, f"{graceful.said()} < {stop.said()}")
    relation = "" if math.isinf(graceful.seconds) else f" >= {stop.said()}"
    suggestion = max(1.0, limit - 2)
    flag = graceful.flag
    set_it = f"set {d.server.name}'s {flag} to {suggestion:g} (below --stop-timeout)"
    return error(
        ID,
        where,
        f"{graceful.said()}{relation}: warden's SIGKILL at {limit:g} s cuts what "
        f"{d.server.name} meant to finish",
        f"{set_it}, or raise --stop-timeout above {graceful.seconds:g} s"
        if not math.isinf(graceful.seconds)
        else set_it,
    )
