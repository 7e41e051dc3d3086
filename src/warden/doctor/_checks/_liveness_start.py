"""``liveness-start``: without a startupProbe, the liveness probe must give a start as long
as warden's ``--ready-timeout``, or a slow start is killed by the kubelet.

The liveness budget is ``initialDelaySeconds + failureThreshold x periodSeconds``; warden
waits ``--ready-timeout`` for the program's readiness gate. A liveness probe on warden's own
``/livez`` is exempt: it answers while the program starts.
"""

from __future__ import annotations

from .._deployment import Deployment
from .._results import Result, error, ok
from ._probes import endpoint, field, product
from ._unknown import cannot_check

ID = "liveness-start"


def check(d: Deployment) -> list[Result]:
    live = d.probes.get("livenessProbe")
    if d.platform != "kubernetes" or d.warden is None or live is None:
        return []
    where = d.at(live.line)
    if "startupProbe" in d.probes:
        return [ok(ID, where, "a startupProbe holds the liveness probe back during the start")]
    asked = endpoint(live)
    livez = asked is not None and asked[0] == "http" and asked[2] == "/livez"
    unknown = d.warden.unknown("ready_timeout", *(("health",) if livez else ()))
    if _warden_livez(d, asked):
        return [
            ok(ID, where, "liveness asks warden's /livez, which answers while the program starts")
        ]
    delay, _ = field(live, "initialDelaySeconds")
    after, said = product(live)
    budget = delay + after
    ready = d.warden["ready_timeout"]
    sum_ = f"initialDelaySeconds {delay:g} + {said} = {budget:g} s"
    if unknown:
        return [
            cannot_check(
                ID,
                where,
                unknown,
                f"without a startupProbe, --ready-timeout must be at most {sum_}",
                f"make sure that value is at most {budget:g}s, or add a startupProbe",
            )
        ]
    if budget >= float(ready.value):
        return [ok(ID, where, f"{sum_} >= {ready.said()}")]
    return [
        error(
            ID,
            where,
            f"no startupProbe, and {sum_} < {ready.said()}: a start slower than {budget:g} s "
            "is killed by the kubelet before warden's gate gives up",
            f"add a startupProbe (failureThreshold x periodSeconds >= {float(ready.value):g} s), "
            "or lower --ready-timeout",
        )
    ]


def _warden_livez(d: Deployment, asked: tuple[str, ...] | None) -> bool:
    assert d.warden is not None
    health = d.warden["health"].value
    if asked is None or asked[0] != "http" or asked[2] != "/livez" or not health:
        return False
    port = str(health).rpartition(":")[2]
    return asked[1] == port or d.ports.get(asked[1]) == int(port)
