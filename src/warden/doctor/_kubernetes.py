"""A container of a pod template as a :class:`Deployment`: its command (or its image's), its
environment, and the pod's numbers around it.

Kubernetes' rules (the Pod API reference): ``command`` replaces the image's ENTRYPOINT and
``args`` its CMD; ``command`` without ``args`` ignores the CMD; ``$(VAR)`` in either is the
container's variable of that name (``$$(VAR)`` stays literal). ``terminationGracePeriodSeconds``
is 30 when absent. A probe's ``periodSeconds`` is 10, ``failureThreshold`` 3,
``initialDelaySeconds`` 0 and ``timeoutSeconds`` 1 when absent.
"""

from __future__ import annotations

import re

from ._commands import Launch, read_launch
from ._containerfiles import Image
from ._deployment import Deployment, Idle, Mount
from ._inputs import InputError
from ._manifests import Balancer, Manifests, Node, PodTemplate
from ._numbers import Number, NumberError, kubernetes_quantity, kubernetes_seconds
from ._results import Where
from ._warden import EnvVar, read_launched

DEFAULT_GRACE = 30.0
DRAIN_ANNOTATION = "warden.dev/drain-seconds"
PROPAGATION_ANNOTATION = "warden.dev/propagation-seconds"

#: Load balancer annotations that set an idle timeout: name -> seconds per unit.
IDLE_ANNOTATIONS = {
    "service.beta.kubernetes.io/aws-load-balancer-connection-idle-timeout": 1.0,
    "service.beta.kubernetes.io/azure-load-balancer-tcp-idle-timeout": 60.0,  # minutes
    "service.beta.kubernetes.io/do-loadbalancer-http-idle-timeout-seconds": 1.0,
    "service.beta.kubernetes.io/oci-load-balancer-connection-idle-timeout": 1.0,
}
#: The ALB ingress controller sets it inside a list of attributes.
ALB_ATTRIBUTES = "alb.ingress.kubernetes.io/load-balancer-attributes"

_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def container_deployments(
    manifests: Manifests, images: list[Image], notes: list[tuple[str, str]]
) -> list[Deployment]:
    """One deployment per container of every pod template read."""
    found = []
    for pod in manifests.pods:
        balancers = _balancers_of(pod, manifests.balancers)
        for container in pod.containers():
            found.append(_container(pod, container, images, balancers, notes))
    return found


def _container(
    pod: PodTemplate,
    container: Node,
    images: list[Image],
    balancers: list[Balancer],
    notes: list[tuple[str, str]],
) -> Deployment:
    file = container.file
    subject = f"{pod.workload}, container {container.text('name') or '?'}"
    image = images[0] if len(images) == 1 and container.get("command") is None else None
    env = _environment(container, image)
    known = {name: var.value for name, var in env.items() if var.value is not None}
    argv, argv_line = _argv(container, image, known)
    launch: Launch | None = None
    if argv is None:
        notes.append(
            (
                file,
                f"{subject} runs its image's command, and no single Containerfile was given "
                "with it: its command is not checked (give the Containerfile too)",
            )
        )
    else:
        launch = read_launch(argv, env=known)
    here = Where(file, argv_line or container.line, subject)
    warden = None
    server = None
    if launch is not None:
        env = {**env, **{k: EnvVar(v, here) for k, v in launch.assignments.items()}}
        warden, server = read_launched(launch, env, here)
    spec = pod.spec
    return Deployment(
        platform="kubernetes",
        where=here,
        launch=launch,
        env=env,
        warden=warden,
        server=server,
        grace=_seconds(spec, "terminationGracePeriodSeconds", subject, DEFAULT_GRACE),
        pre_stop=_pre_stop(container, subject),
        pre_stop_node=container.get("lifecycle", "preStop"),
        probes={
            kind: node
            for kind in ("livenessProbe", "readinessProbe", "startupProbe")
            if (node := container.get(kind)) is not None
        },
        ports=_ports(container),
        memory_limit=_quantity(container, ("resources", "limits", "memory"), subject),
        memory_request=_quantity(container, ("resources", "requests", "memory"), subject),
        mounts=_mounts(spec, container, subject),
        drain=_annotation(pod, DRAIN_ANNOTATION, spec, subject),
        propagation=_annotation(pod, PROPAGATION_ANNOTATION, spec, subject),
        idle=tuple(idle for balancer in balancers for idle in _idle(balancer)),
        balancers=tuple(balancers),
    )


def _environment(container: Node, image: Image | None) -> dict[str, EnvVar]:
    env: dict[str, EnvVar] = {}
    if image is not None and container.get("command") is None:
        # The image's ENV is the container's too; the image is known only when the container
        # runs its command (the one Containerfile given): a container with a command of its
        # own may run another image.
        env.update({k: EnvVar(v, Where(image.file, line)) for k, (v, line) in image.env.items()})
    for item in (container.get("env") or container).items():
        name = item.text("name")
        if name is None:
            continue
        value = item.get("value")
        known = None if value is None else (None if value.value is None else str(value.value))
        if value is None and item.get("valueFrom") is None:
            known = ""  # a variable without a value is empty
        env[name] = EnvVar(known, Where(container.file, item.line))
    return env


def _argv(
    container: Node, image: Image | None, env: dict[str, str]
) -> tuple[list[str] | None, int | None]:
    command = container.get("command")
    args = container.get("args")
    if command is not None:
        words = _words(command) + (_words(args) if args is not None else [])
        return [_expand(word, env) for word in words], command.line
    if image is None:
        return None, None
    entry = list(image.entrypoint.argv) if image.entrypoint is not None else []
    if args is not None:
        if image.entrypoint is not None and image.entrypoint.shell_form:
            return entry, args.line  # a shell-form ENTRYPOINT ignores the arguments
        return entry + [_expand(w, env) for w in _words(args)], args.line
    return list(image.argv()), container.line


def _words(node: Node) -> list[str]:
    if not isinstance(node.value, list):
        raise InputError(node.file, f"{node.dotted} must be a list of strings", node.line)
    return [str(word) for word in node.value]


def _expand(word: str, env: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _REFERENCE.sub(replace, word)


def _seconds(spec: Node, key: str, subject: str, default: float) -> Number:
    node = spec.get(key)
    if node is None or node.value is None:
        return Number(default, key, Where(spec.file, None, subject), default=True)
    try:
        value = kubernetes_seconds(node.value)
    except NumberError as exc:
        raise InputError(spec.file, f"{node.dotted}: {exc}", node.line) from None
    return Number(value, key, Where(spec.file, node.line, subject))


def _pre_stop(container: Node, subject: str) -> Number | None:
    """The preStop's seconds: a ``sleep`` action, or an ``exec`` of ``sleep N``."""
    hook = container.get("lifecycle", "preStop")
    if hook is None:
        return None
    where = Where(container.file, hook.line, subject)
    sleep = hook.get("sleep", "seconds")
    if sleep is not None:
        try:
            return Number(kubernetes_seconds(sleep.value), "preStop", where)
        except NumberError as exc:
            raise InputError(container.file, f"{sleep.dotted}: {exc}", sleep.line) from None
    command = hook.get("exec", "command")
    if command is not None and isinstance(command.value, list):
        words = [str(word) for word in command.value]
        script = words[2] if len(words) == 3 and words[1] == "-c" else None
        if script is not None:
            words = script.split()
        if len(words) == 2 and words[0].rsplit("/", 1)[-1] == "sleep":
            try:
                return Number(kubernetes_seconds(words[1].rstrip("s")), "preStop", where)
            except NumberError:
                return None
    return None


def _quantity(container: Node, keys: tuple[str, ...], subject: str) -> Number | None:
    node = container.get(*keys)
    if node is None or node.value is None:
        return None
    try:
        value = kubernetes_quantity(node.value)
    except NumberError as exc:
        raise InputError(container.file, f"{node.dotted}: {exc}", node.line) from None
    label = f"{'.'.join(keys[1:])} {node.value}"
    return Number(value, label, Where(container.file, node.line, subject))


def _ports(container: Node) -> dict[str, int]:
    found = {}
    for port in (container.get("ports") or container).items():
        name, number = port.text("name"), port.text("containerPort")
        if name is not None and number is not None and number.isdigit():
            found[name] = int(number)
    return found


def _mounts(spec: Node, container: Node, subject: str) -> tuple[Mount, ...]:
    volumes: dict[str, str] = {}
    for volume in (spec.get("volumes") or spec).items():
        name = volume.text("name")
        if name is not None and isinstance(volume.value, dict):
            kinds = [k for k in volume.value if k != "name"]
            volumes[name] = kinds[0] if kinds else ""
    found = []
    for mount in (container.get("volumeMounts") or container).items():
        path = mount.text("mountPath")
        if path is None:
            continue
        sub = mount.text("subPath") or mount.text("subPathExpr")
        kind = volumes.get(mount.text("name") or "", "")
        found.append(Mount(path, sub, kind, Where(container.file, mount.line, subject)))
    return tuple(found)


def _annotation(pod: PodTemplate, key: str, spec: Node, subject: str) -> Number | None:
    text = pod.annotations.get(key)
    if text is None:
        return None
    try:
        value = kubernetes_seconds(text)
    except NumberError as exc:
        raise InputError(spec.file, f"annotation {key}: {exc}") from None
    return Number(value, key, Where(spec.file, None, subject))


def _balancers_of(pod: PodTemplate, balancers: list[Balancer]) -> list[Balancer]:
    """The Services that select the pod, and the Ingresses in front of those Services."""
    services = [
        b
        for b in balancers
        if b.selector
        and b.namespace == pod.namespace
        and all(pod.labels.get(k) == v for k, v in b.selector.items())
    ]
    names = {s.name.partition("/")[2] for s in services}
    ingresses = [
        b
        for b in balancers
        if b.services and b.namespace == pod.namespace and names & set(b.services)
    ]
    return services + ingresses


def _idle(balancer: Balancer) -> list[Idle]:
    found = []
    line = None
    annotations = balancer.node.get("metadata", "annotations")
    for key, scale in IDLE_ANNOTATIONS.items():
        text = balancer.annotations.get(key)
        if text is None:
            continue
        if annotations is not None:
            line = (annotations.get(key) or annotations).line
        try:
            seconds = float(text) * scale
        except ValueError:
            continue
        found.append(Idle(balancer.name, key, seconds, Where(balancer.node.file, line)))
    attributes = balancer.annotations.get(ALB_ATTRIBUTES, "")
    for pair in attributes.split(","):
        key, _, value = pair.strip().partition("=")
        if key == "idle_timeout.timeout_seconds":
            if annotations is not None:
                line = (annotations.get(ALB_ATTRIBUTES) or annotations).line
            try:
                seconds = float(value)
            except ValueError:
                continue
            where = Where(balancer.node.file, line)
            found.append(Idle(balancer.name, f"{ALB_ATTRIBUTES} {pair.strip()}", seconds, where))
    return found
