"""Kubernetes manifests: the pod templates of every workload, and the Services and Ingresses
that put a load balancer in front of them.

ConfigMaps are kept for the variables that name them. Multi-document YAML (``---``),
``kind: List`` included, read with warden's one safe loader
(:func:`warden._yaml.safe_load_all_located`: aliases that expand too far are refused, each
value keeps its line). A pod spec is found in a ``Pod``, at ``spec.template`` of a
``Deployment``, ``StatefulSet``, ``DaemonSet``, ``ReplicaSet``, ``ReplicationController`` or
``Job``, and at ``spec.jobTemplate.spec.template`` of a ``CronJob``. Documents of other kinds
(RBAC, Secrets...) and non-Kubernetes YAML are passed over.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from .._yaml import Lines, RefusedYAMLError, safe_load_all_located
from ._inputs import InputError

_TEMPLATE_AT: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


@dataclasses.dataclass(frozen=True, slots=True)
class Node:
    """A value of a document, with its path and the document's lines (for messages)."""

    value: Any
    path: tuple[str | int, ...]
    lines: Lines
    file: str

    def get(self, *keys: str | int) -> Node | None:
        """The value at ``keys`` below this one, or None where any step is missing."""
        value, path = self.value, self.path
        for key in keys:
            in_mapping = isinstance(key, str) and isinstance(value, dict) and key in value
            in_list = isinstance(key, int) and isinstance(value, list) and 0 <= key < len(value)
            if in_mapping or in_list:
                value = value[key]
            else:
                return None
            path = (*path, key)
        return Node(value, path, self.lines, self.file)

    @property
    def line(self) -> int | None:
        """The line where this value starts (its key's line for a mapping's value)."""
        path = self.path
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None

    @property
    def dotted(self) -> str:
        """``spec.template.spec.containers[0].lifecycle``."""
        text = ""
        for key in self.path:
            text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else key)
        return text

    def items(self) -> list[Node]:
        """The elements of a list (none for anything else)."""
        if not isinstance(self.value, list):
            return []
        return [Node(v, (*self.path, i), self.lines, self.file) for i, v in enumerate(self.value)]

    def text(self, *keys: str | int) -> str | None:
        """The scalar at ``keys`` as text, or None."""
        found = self.get(*keys)
        if found is None or isinstance(found.value, dict | list) or found.value is None:
            return None
        return str(found.value)

    def mapping(self, *keys: str | int) -> dict[str, str]:
        """A mapping of scalars (labels, annotations), as text."""
        found = self.get(*keys)
        if found is None or not isinstance(found.value, dict):
            return {}
        return {str(k): str(v) for k, v in found.value.items() if not isinstance(v, dict | list)}


@dataclasses.dataclass(frozen=True, slots=True)
class PodTemplate:
    """A pod spec and what it belongs to.

    Attributes:
        workload: ``Deployment/app`` (the object holding the template).
        namespace: its namespace (``default`` when not said).
        labels, annotations: the pod's own (the template's metadata).
        spec: the pod spec.
    """

    workload: str
    namespace: str
    labels: dict[str, str]
    annotations: dict[str, str]
    spec: Node

    def containers(self) -> list[Node]:
        found = self.spec.get("containers")
        return [] if found is None else found.items()


@dataclasses.dataclass(frozen=True, slots=True)
class Balancer:
    """A Service or an Ingress: what it routes to and the annotations that tune it.

    Attributes:
        name: ``Service/app``.
        selector: a Service's pod selector (an Ingress: empty).
        services: an Ingress's backend Services (a Service: empty).
        annotations: its annotations, and where.
    """

    name: str
    namespace: str
    selector: dict[str, str]
    services: tuple[str, ...]
    annotations: dict[str, str]
    node: Node


@dataclasses.dataclass
class Manifests:
    """Every pod template and load balancer in the manifests read, and the ConfigMaps'
    data (``(namespace, name)`` -> ``(key, value)`` pairs: a variable's ``valueFrom`` or
    ``envFrom`` may name one)."""

    pods: list[PodTemplate] = dataclasses.field(default_factory=list)
    balancers: list[Balancer] = dataclasses.field(default_factory=list)
    configmaps: dict[tuple[str, str], tuple[tuple[str, str], ...]] = dataclasses.field(
        default_factory=dict
    )


def read_manifest(file: str, text: str, into: Manifests) -> int:
    """Add the objects of ``text`` (the file ``file``) to ``into``; returns how many
    Kubernetes objects it held. Raises :class:`InputError` for YAML it cannot read."""
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        raise InputError(
            file, "reading YAML needs PyYAML, which is not installed: pip install 'warden[yaml]'"
        ) from None
    count = 0
    try:
        for document, lines in safe_load_all_located(text):
            for obj in _objects(Node(document, (), lines, file)):
                count += 1
                _add(obj, into)
    except RefusedYAMLError as exc:
        raise InputError(file, f"refused: {exc}", exc.line) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else mark.line + 1
        problem = exc.problem or exc.context or "not YAML"
        raise InputError(file, f"not valid YAML: {problem}", line) from None
    except yaml.YAMLError as exc:
        raise InputError(file, f"not valid YAML: {exc}") from None
    return count


def _objects(document: Node) -> Iterator[Node]:
    value = document.value
    if not isinstance(value, dict) or "kind" not in value:
        return
    if value.get("kind") == "List" or str(value.get("kind", "")).endswith("List"):
        for item in (document.get("items") or document).items():
            yield from _objects(item)
        return
    yield document


def _add(obj: Node, into: Manifests) -> None:
    kind = obj.text("kind") or ""
    name = obj.text("metadata", "name") or "?"
    namespace = obj.text("metadata", "namespace") or "default"
    at = _TEMPLATE_AT.get(kind)
    if at is not None:
        template = obj.get(*at)
        spec = None if template is None else template.get("spec")
        if template is not None and spec is not None and isinstance(spec.value, dict):
            into.pods.append(
                PodTemplate(
                    workload=f"{kind}/{name}",
                    namespace=namespace,
                    labels=template.mapping("metadata", "labels"),
                    annotations=template.mapping("metadata", "annotations"),
                    spec=spec,
                )
            )
    elif kind == "Service":
        into.balancers.append(
            Balancer(
                name=f"Service/{name}",
                namespace=namespace,
                selector=obj.mapping("spec", "selector"),
                services=(),
                annotations=obj.mapping("metadata", "annotations"),
                node=obj,
            )
        )
    elif kind == "ConfigMap":
        data = obj.mapping("data")
        into.configmaps[(namespace, name)] = tuple(sorted(data.items()))
    elif kind == "Ingress":
        into.balancers.append(
            Balancer(
                name=f"Ingress/{name}",
                namespace=namespace,
                selector={},
                services=tuple(sorted(_backends(obj.value))),
                annotations=obj.mapping("metadata", "annotations"),
                node=obj,
            )
        )


def _backends(value: object) -> set[str]:
    """Every ``service: {name: ...}`` (networking.k8s.io/v1) or ``serviceName`` below."""
    found: set[str] = set()
    if isinstance(value, dict):
        service = value.get("service")
        if isinstance(service, dict) and isinstance(service.get("name"), str):
            found.add(service["name"])
        if isinstance(value.get("serviceName"), str):
            found.add(value["serviceName"])
        for child in value.values():
            found |= _backends(child)
    elif isinstance(value, list):
        for child in value:
            found |= _backends(child)
    return found
