"""``memory-limit``: warden's memory sizes must sit below the container's limit.

The container's limit (``resources.limits.memory``, a unit's ``MemoryMax=``) is where the
kernel OOM-kills the whole container, warden included: ``--memory-limit`` or a
``--recycle-at`` size at or above it is never reached. The sentinel's levels are fractions of
a limit: without one (no container limit, no ``--memory-limit``) they are fractions of the
node's free memory. A request below the limit (Burstable QoS) lets the node run out of memory
before the container reaches its limit. Kubernetes reads ``512M`` as 512 x 10^6 bytes and
warden as 512 MiB: the check compares bytes.
"""

from __future__ import annotations

from .._deployment import Deployment
from .._numbers import Number, amount
from .._results import Result, error, ok, warning
from ._unknown import cannot_check

ID = "memory-limit"


def check(d: Deployment) -> list[Result]:
    results: list[Result] = []
    limit = d.memory_limit
    if d.warden is not None:
        results += _warden_sizes(d, limit)
    request = d.memory_request
    if d.platform == "kubernetes" and limit is not None and request is not None:
        where = d.at(request.where)
        if request.value < limit.value:
            results.append(
                warning(
                    ID,
                    where,
                    f"{request.label} < {limit.label} (Burstable): the node may run out of "
                    "memory, and OOM-kill or evict the pod, before the limit the sentinel "
                    "watches",
                    f"set requests.memory to the limit ({limit.label.split(' ')[-1]}) for "
                    "Guaranteed QoS",
                )
            )
        else:
            results.append(ok(ID, where, f"{request.label} = {limit.label}: Guaranteed QoS"))
    return results


def _warden_sizes(d: Deployment, limit: Number | None) -> list[Result]:
    assert d.warden is not None
    results: list[Result] = []
    own = d.warden["memory_limit"]
    recycle = d.warden["recycle_at"]
    unknown = d.warden.unknown("memory_limit", "recycle_at")
    if unknown and limit is not None:
        results.append(
            cannot_check(
                ID,
                d.at(limit.where),
                unknown,
                f"warden's memory sizes must be below {limit.label}",
                f"make sure they are below {amount(limit.value, 'B')}",
            )
        )
    for setting in (own, recycle):
        value = setting.value
        if setting.unknown:
            continue
        if setting.default or not isinstance(value, int) or limit is None:
            continue
        where = d.at(limit.where)
        said = f"{setting.label} ({value:,} bytes) >= {limit.label} ({limit.value:,.0f} bytes)"
        if value >= limit.value:
            results.append(
                error(
                    ID,
                    where,
                    f"{said}: the container's limit kills warden and the program first",
                    f"lower it below {amount(limit.value, 'B')}, e.g. "
                    f"{int(limit.value * 0.9) // 2**20}M",
                )
            )
        else:
            results.append(ok(ID, where, said.replace(">=", "<")))
    if not own.default and isinstance(recycle.value, int) and recycle.value >= own.value:  # known
        results.append(
            error(
                ID,
                d.at(None),
                f"{recycle.label} >= {own.label}: the program is OOM-killed in its own cgroup "
                "before it is recycled",
                "set --recycle-at below --memory-limit, or to a level (warn, high)",
            )
        )
    sentinel = [s for s in (d.warden["memory_warn_signal"], recycle) if not s.default]
    if sentinel and own.default and not own.unknown and limit is None and d.platform != "image":
        results.append(
            warning(
                ID,
                d.at(None),
                f"{sentinel[0].label} with no memory limit (no container limit, no "
                "--memory-limit): the sentinel's levels are fractions of the node's free "
                "memory",
                "set a memory limit on the container, or --memory-limit",
            )
        )
    return results
