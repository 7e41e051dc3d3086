"""``grace-budget``: preStop + warden's whole deadline + a margin must fit in
``terminationGracePeriodSeconds``, or the kubelet's SIGKILL ends warden's ladder early.

The kubelet's grace period starts when the pod is deleted, *before* preStop runs; SIGTERM
comes after preStop, and warden needs its whole deadline (``--stop-timeout`` + 5 s for the
SIGKILL rung and the reaping) after that.
"""

from __future__ import annotations

from ...supervisor import _KILL_MARGIN as KILL_MARGIN
from .._deployment import MARGIN, Deployment
from .._results import Result, error, ok
from ._unknown import cannot_check

ID = "grace-budget"


def check(d: Deployment) -> list[Result]:
    if d.platform != "kubernetes" or d.warden is None or d.grace is None:
        return []
    pre_stop, said = _pre_stop(d)
    unknown = d.warden.unknown("stop_timeout")
    if unknown:
        room = d.grace.value - pre_stop - MARGIN - KILL_MARGIN
        return [
            cannot_check(
                ID,
                d.at(d.grace.where),
                unknown,
                f"{said} + warden's deadline (--stop-timeout + {KILL_MARGIN:g} s) + margin "
                f"{MARGIN:g} s must fit in {d.grace.said()}",
                f"make sure that value is at most {room:g}s"
                if room > 0
                else "raise terminationGracePeriodSeconds above "
                f"{pre_stop + MARGIN + KILL_MARGIN:g}",
            )
        ]
    needed = pre_stop + d.warden.deadline + MARGIN
    sum_ = f"{said} + {d.warden.deadline_said()} + margin {MARGIN:g} s = {needed:g} s"
    where = d.at(d.grace.where)
    grace = d.grace.said()
    if needed <= d.grace.value:
        return [ok(ID, where, f"{sum_} <= {grace}")]
    stop = float(d.warden["stop_timeout"].value)
    room = d.grace.value - pre_stop - MARGIN - (d.warden.deadline - stop)
    lower = f", or lower --stop-timeout to {room:g}s" if room > 0 else ""
    return [
        error(
            ID,
            where,
            f"{sum_} > {grace}: the kubelet's SIGKILL comes before warden's stop ladder ends",
            f"raise terminationGracePeriodSeconds to {needed:g}{lower}",
        )
    ]


def _pre_stop(d: Deployment) -> tuple[float, str]:
    if d.pre_stop is not None:
        return d.pre_stop.value, f"preStop {d.pre_stop.value:g} s"
    if d.pre_stop_node is not None:
        return 0.0, "preStop (not a sleep: its length is not known, counted 0 s)"
    return 0.0, "no preStop (0 s)"
