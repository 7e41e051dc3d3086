"""``readiness-drain``: nothing may still route to the pod once it stops listening.

A load balancer that follows readiness stops sending only once the readiness probe failed
(``periodSeconds x failureThreshold`` after the program's ``/readyz`` turned 503 at SIGTERM):
the program's drain must last that long. Proxies that follow the endpoints hear of the pod's
removal a propagation delay after it is deleted: preStop (and the drain) must outlast it.
Without a preStop and with no drain said, readiness is all there is, and SIGTERM closes the
listener while traffic still arrives. The drain and the propagation delay are said by the
pod's annotations ``warden.dev/drain-seconds`` and ``warden.dev/propagation-seconds``.
"""

from __future__ import annotations

from .._deployment import Deployment
from .._results import Result, error, ok
from ._probes import failing_after

ID = "readiness-drain"


def check(d: Deployment) -> list[Result]:
    if d.platform != "kubernetes":
        return []
    results: list[Result] = []
    ready = d.probes.get("readinessProbe")
    pre_stop = 0.0 if d.pre_stop is None else d.pre_stop.value
    if ready is not None:
        where = d.at(ready.line)
        after, said = failing_after(ready)
        if d.drain is not None:
            drain = f"the drain ({d.drain.label}) {d.drain.value:g} s"
            if after <= d.drain.value:
                results.append(ok(ID, where, f"readiness fails within {said} <= {drain}"))
            else:
                results.append(
                    error(
                        ID,
                        where,
                        f"readiness needs {said} to fail, longer than {drain}: a balancer "
                        "that follows readiness still sends after the listener closes",
                        f"lower periodSeconds x failureThreshold to {d.drain.value:g} s or "
                        f"less, or drain longer",
                    )
                )
        elif d.pre_stop_node is None:
            results.append(
                error(
                    ID,
                    where,
                    f"no preStop, and readiness needs {said} to fail: SIGTERM closes the "
                    "listener while traffic still arrives",
                    "add a preStop sleep longer than the endpoint propagation (e.g. "
                    "lifecycle.preStop.sleep.seconds: 5), or drain in the program at least "
                    "that long and say so with the annotation warden.dev/drain-seconds",
                )
            )
        else:
            results.append(
                ok(ID, where, f"preStop {pre_stop:g} s serves while the endpoint is removed")
            )
    if d.propagation is not None:
        results.append(_propagation(d, pre_stop))
    return results


def _propagation(d: Deployment, pre_stop: float) -> Result:
    assert d.propagation is not None
    drain = 0.0 if d.drain is None else d.drain.value
    serving = pre_stop + drain
    where = d.at(d.pre_stop.where if d.pre_stop is not None else None)
    said = f"preStop {pre_stop:g} s" if d.pre_stop is not None else "no preStop (0 s)"
    if d.drain is not None:
        said += f" + drain {drain:g} s"
    propagation = f"the propagation delay ({d.propagation.label}) {d.propagation.value:g} s"
    if serving > d.propagation.value:
        return ok(ID, where, f"{said} = {serving:g} s > {propagation}")
    return error(
        ID,
        where,
        f"{said} = {serving:g} s <= {propagation}: proxies still route to the pod after it "
        "stops listening",
        f"raise the preStop sleep above {d.propagation.value:g} s",
    )
