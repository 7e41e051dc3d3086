"""``keepalive-lb``: the server must keep an idle connection open longer than the load
balancer in front of it does.

A balancer reuses its idle connections to the pod; if the server closes one first, a request
the balancer sends on it at that moment meets a closed connection: a 502. The balancer's idle
timeout is read from the annotations of the Services and Ingresses in front of the pod
(AWS, Azure, DigitalOcean, OCI load balancers; the ALB ingress controller).
"""

from __future__ import annotations

from .._deployment import Deployment
from .._results import Result, error, ok
from ._unknown import cannot_check

ID = "keepalive-lb"


def check(d: Deployment) -> list[Result]:
    if d.server is None or d.server.keepalive is None or not d.idle:
        return []
    keepalive = d.server.keepalive
    results = []
    for idle in d.idle:
        where = d.at(None)
        balancer = f"{idle.balancer}'s idle timeout {idle.seconds:g} s ({idle.annotation})"
        if keepalive.unknown:
            results.append(
                cannot_check(
                    ID,
                    where,
                    [keepalive.unknown],
                    f"{keepalive.label} must be above {balancer}",
                    f"make sure it is above {idle.seconds:g} s",
                )
            )
            continue
        if keepalive.seconds > idle.seconds:
            results.append(ok(ID, where, f"{keepalive.said()} > {balancer}"))
            continue
        flag = keepalive.flag
        results.append(
            error(
                ID,
                where,
                f"{keepalive.said()} <= {balancer}: the balancer reuses connections the "
                "server has just closed (502s)",
                f"set {d.server.name}'s {flag} above {idle.seconds:g} (e.g. "
                f"{idle.seconds + 5:g}), or lower the balancer's idle timeout below it",
            )
        )
    return results
