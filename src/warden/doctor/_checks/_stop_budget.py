"""``stop-budget``: warden's whole deadline + a margin must fit in the unit's
``TimeoutStopSec`` (90 s when absent), or systemd's SIGKILL ends warden's ladder early.

warden also asks for its deadline with ``EXTEND_TIMEOUT_USEC`` when the stop begins, but
only a ``Type=notify`` service is heard, and only if systemd's own budget allows it.
"""

from __future__ import annotations

import math

from ...supervisor import _KILL_MARGIN as KILL_MARGIN
from .._deployment import MARGIN, Deployment
from .._results import Result, error, ok
from ._unknown import cannot_check

ID = "stop-budget"


def check(d: Deployment) -> list[Result]:
    if d.platform != "systemd" or d.warden is None or d.timeout_stop is None:
        return []
    limit = d.timeout_stop
    where = d.at(limit.where)
    unknown = d.warden.unknown("stop_timeout")
    if unknown and not math.isinf(limit.value):
        room = limit.value - MARGIN - KILL_MARGIN
        return [
            cannot_check(
                ID,
                where,
                unknown,
                f"warden's deadline (--stop-timeout + {KILL_MARGIN:g} s) + margin {MARGIN:g} s "
                f"must fit in {limit.said()}",
                f"make sure that value is at most {room:g}s"
                if room > 0
                else f"set TimeoutStopSec= above {MARGIN + KILL_MARGIN:g}s",
            )
        ]
    needed = d.warden.deadline + MARGIN
    sum_ = f"{d.warden.deadline_said()} + margin {MARGIN:g} s = {needed:g} s"
    if unknown:
        return [ok(ID, where, f"{limit.label} disables the timeout: it never cuts warden's stop")]
    if math.isinf(limit.value):
        return [ok(ID, where, f"{sum_}; {limit.label} disables the timeout: it never cuts it")]
    if needed <= limit.value:
        return [ok(ID, where, f"{sum_} <= {limit.said()}")]
    room = limit.value - MARGIN - (d.warden.deadline - float(d.warden["stop_timeout"].value))
    lower = f", or lower --stop-timeout to {room:g}s" if room > 0 else ""
    return [
        error(
            ID,
            where,
            f"{sum_} > {limit.said()}: systemd's SIGKILL comes before warden's stop ladder ends",
            f"set TimeoutStopSec={math.ceil(needed)}s{lower}",
        )
    ]
