"""Reading a probe: what it asks (its endpoint), and how long it takes to fail.

Kubernetes' defaults when a field is absent: ``periodSeconds`` 10, ``failureThreshold`` 3,
``initialDelaySeconds`` 0, ``timeoutSeconds`` 1.
"""

from __future__ import annotations

from .._manifests import Node
from .._numbers import NumberError, kubernetes_seconds

DEFAULTS = {"periodSeconds": 10.0, "failureThreshold": 3.0, "initialDelaySeconds": 0.0}


def field(probe: Node, key: str) -> tuple[float, bool]:
    """A probe's number and whether it is the default."""
    value = probe.get(key)
    if value is None or value.value is None:
        return DEFAULTS[key], True
    try:
        return kubernetes_seconds(value.value), False
    except NumberError:
        return DEFAULTS[key], True


def failing_after(probe: Node) -> tuple[float, str]:
    """Seconds for the probe to fail (periodSeconds x failureThreshold), and that product
    said with its result: ``periodSeconds 10 x failureThreshold 3 = 30 s``."""
    seconds, said = product(probe)
    return seconds, f"{said} = {seconds:g} s"


def product(probe: Node) -> tuple[float, str]:
    """The same without its result, to be part of a longer sum:
    ``periodSeconds 10 x failureThreshold 3``."""
    period, p_default = field(probe, "periodSeconds")
    failures, f_default = field(probe, "failureThreshold")
    said = (
        f"periodSeconds {period:g}{' (default)' if p_default else ''} x failureThreshold "
        f"{failures:g}{' (default)' if f_default else ''}"
    )
    return period * failures, said


def endpoint(probe: Node) -> tuple[str, ...] | None:
    """What the probe asks, comparable between probes: ``("http", port, path)``..."""
    http = probe.get("httpGet")
    if http is not None:
        path = http.text("path") or "/"
        return ("http", http.text("port") or "", path.partition("?")[0], http.text("host") or "")
    tcp = probe.get("tcpSocket")
    if tcp is not None:
        return ("tcp", tcp.text("port") or "")
    grpc = probe.get("grpc")
    if grpc is not None:
        return ("grpc", grpc.text("port") or "", grpc.text("service") or "")
    command = probe.get("exec", "command")
    if command is not None and isinstance(command.value, list):
        return ("exec", *(str(word) for word in command.value))
    return None


def described(found: tuple[str, ...]) -> str:
    kind, *rest = found
    if kind == "http":
        return f"httpGet {rest[1]} on port {rest[0]}"
    if kind == "exec":
        return "exec " + " ".join(rest)
    return f"{kind} port {rest[0]}"
