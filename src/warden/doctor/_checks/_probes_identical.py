"""``probes-identical``: liveness must not ask what readiness asks (or warden's ``/readyz``).

Readiness failing takes a busy pod out of the load balancer until it recovers; liveness
failing restarts it. A liveness probe on the readiness endpoint turns every overload, drain
or memory shedding (warden's ``/readyz`` says 503 from memory ``high`` and during the drain)
into a restart, and one that fails no later than readiness restarts the pod before it was
even taken out of rotation (kube-score #285).
"""

from __future__ import annotations

from .._deployment import Deployment
from .._results import Result, error, ok, warning
from ._probes import described, endpoint, failing_after

ID = "probes-identical"


def check(d: Deployment) -> list[Result]:
    live = d.probes.get("livenessProbe")
    if d.platform != "kubernetes" or live is None:
        return []
    where = d.at(live.line)
    asked = endpoint(live)
    if asked is not None and asked[0] == "http" and asked[2] == "/readyz":
        return [
            error(
                ID,
                where,
                "the liveness probe asks /readyz, which says 503 while the pod drains or sheds "
                "load: a busy pod is restarted instead of drained",
                "probe liveness on /livez (warden's health server answers it while the loop runs)",
            )
        ]
    ready = d.probes.get("readinessProbe")
    if ready is None or asked is None or endpoint(ready) != asked:
        return [ok(ID, where, "liveness asks something other than readiness")]
    live_after, live_said = failing_after(live)
    ready_after, ready_said = failing_after(ready)
    same = f"liveness and readiness both ask {described(asked)}"
    if live_after <= ready_after:
        return [
            error(
                ID,
                where,
                f"{same}, and liveness fails as soon as readiness (liveness after {live_said}; "
                f"readiness after {ready_said}): a busy pod is restarted instead of drained",
                "give liveness an endpoint of its own (/livez) that fails only when the "
                "process is stuck",
            )
        ]
    return [
        warning(
            ID,
            where,
            f"{same}; liveness fails later (liveness after {live_said}; readiness after "
            f"{ready_said}), but a pod busy that long is restarted instead of drained",
            "give liveness an endpoint of its own (/livez) that fails only when the process "
            "is stuck",
        )
    ]
