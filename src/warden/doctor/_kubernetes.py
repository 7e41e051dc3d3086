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
from ._env import EnvVar
from ._inputs import InputError
from ._manifests import Balancer, Manifests, Node, PodTemplate
from ._numbers import Number, NumberError, kubernetes_quantity, kubernetes_seconds
from ._results import Where
from ._warden import Expansion, read_launched

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


#: Images of well-known programs other than the one a Containerfile given builds: a sidecar
#: that runs one of these is never read through it (its repository's last name, or that
#: name followed by ``-``: ``envoyproxy/envoy``, ``bitnami/redis-cluster``).
OTHER_PROGRAMS = frozenset(
    {
        "redis", "valkey", "memcached", "envoy", "nginx", "haproxy", "traefik", "caddy",
        "proxyv2", "linkerd2-proxy", "cloud-sql-proxy", "cloudsql-proxy", "oauth2-proxy",
        "postgres", "postgresql", "mysql", "mariadb", "mongo", "mongodb", "rabbitmq", "kafka",
        "zookeeper", "etcd", "elasticsearch", "opensearch", "consul", "vault", "fluent-bit",
        "fluentd", "vector", "promtail", "opentelemetry-collector",
        "opentelemetry-collector-contrib", "otel-collector", "jaeger-agent", "prometheus",
        "node-exporter", "statsd-exporter", "busybox", "alpine", "debian", "ubuntu", "curl",
    }
)  # fmt: skip


def container_deployments(
    manifests: Manifests, images: list[Image], notes: list[tuple[str, str]]
) -> tuple[list[Deployment], set[str]]:
    """One deployment per container of every pod template read, and the Containerfiles a
    container was read through (see :func:`image_of`)."""
    containers = [(pod, c) for pod in manifests.pods for c in pod.containers()]
    runs_image = [c for _, c in containers if c.get("command") is None]
    found = []
    used: set[str] = set()
    for pod, container in containers:
        balancers = _balancers_of(pod, manifests.balancers)
        image = image_of(container, images, runs_image) if container in runs_image else None
        if image is not None:
            used.add(image.file)
        found.append(_container(pod, container, image, balancers, manifests=manifests, notes=notes))
    return found, used


def image_name(reference: str) -> str:
    """The repository's last name of an image reference: ``web`` of
    ``registry.example.org:5000/team/web:1.0@sha256:...``."""
    name = reference.partition("@")[0].rsplit("/", 1)[-1]
    return name.partition(":")[0].lower()


def image_of(container: Node, images: list[Image], runs_image: list[Node]) -> Image | None:
    """The Containerfile a container without a ``command`` runs the image of, if doctor can
    tell: the one whose name is the image's (``web.Containerfile``, ``Dockerfile.web``, or
    ``web/Containerfile`` for ``registry/team/web:1.0``); else, when one Containerfile is
    given and this is the one container of the manifests that runs its image's command, that
    one; never for an image of a well-known other program (:data:`OTHER_PROGRAMS`: a
    sidecar)."""
    name = image_name(container.text("image") or "")
    named = [image for image in images if name and name in image.names]
    if len(named) == 1:
        return named[0]
    if named or _other_program(name):
        return None
    candidates = [c for c in runs_image if not _other_program(image_name(c.text("image") or ""))]
    if len(images) == 1 and candidates == [container]:
        return images[0]
    return None


def _other_program(name: str) -> bool:
    return any(name == other or name.startswith(other + "-") for other in OTHER_PROGRAMS)


def _container(
    pod: PodTemplate,
    container: Node,
    image: Image | None,
    balancers: list[Balancer],
    *,
    manifests: Manifests,
    notes: list[tuple[str, str]],
) -> Deployment:
    file = container.file
    subject = f"{pod.workload}, container {container.text('name') or '?'}"
    env, unseen_sources = _environment(container, image, pod.namespace, manifests)
    known = {name: var.value for name, var in env.items() if var.value is not None}
    argv, argv_line = _argv(container, image, known)
    launch: Launch | None = None
    if argv is None:
        reference = container.text("image") or "?"
        name = image_name(reference) or "NAME"
        said = (
            f"{subject} runs its image's command ({reference}, a well-known other program): "
            "not checked"
            if _other_program(name)
            else f"{subject} runs its image's command ({reference}), and no Containerfile given "
            f"is known to build it: not checked (give it as {name}.Containerfile or "
            f"{name}/Containerfile)"
        )
        notes.append((file, said))
    else:
        launch = read_launch(argv, env=known)
    here = Where(file, argv_line or container.line, subject)
    warden = None
    server = None
    if launch is not None:
        env = {**env, **{k: EnvVar(v, here) for k, v in launch.assignments.items()}}
        expansion = _expansion(env, launch, from_image=container.get("command") is None)
        warden, server = read_launched(launch, env, here, expansion)
        if warden is not None:
            notes += [(file, f"{subject}: {source}") for source in unseen_sources]
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


def _expansion(env: dict[str, EnvVar], launch: Launch, *, from_image: bool) -> Expansion:
    """What expanded the words warden gets: the kubelet's ``$(VAR)`` in the manifest's
    command and args (a reference to a variable of the container's that doctor cannot see
    stays as written), then the shell's ``$VAR`` when a shell runs warden; nothing else (an
    exec form)."""
    unseen = {name: var.origin for name, var in env.items() if var.value is None}
    if launch.shell is not None:
        return Expansion(unseen, "shell")
    literal = (
        "Kubernetes expands $(VAR) in command and args, for a variable of the container only, "
        "and never $VAR or ${VAR}"
    )
    if from_image:
        literal = "the image's exec form expands no variable, only a shell does; " + literal
    return Expansion(unseen, "k8s", literal + ": warden run gets it as written")


def _environment(
    container: Node, image: Image | None, namespace: str, manifests: Manifests
) -> tuple[dict[str, EnvVar], list[str]]:
    """The container's variables (the image's ENV first, ``envFrom``, then ``env``), and the
    ``envFrom`` sources doctor cannot see (a note each: they may set WARDEN_* variables)."""
    env: dict[str, EnvVar] = {}
    unseen: list[str] = []
    if image is not None:
        # The image's ENV is the container's too; the image is known only when the container
        # runs its command: a container with a command of its own may run another image.
        env.update(image.env)
    for source in (container.get("envFrom") or container).items():
        prefix = source.text("prefix") or ""
        name = source.text("configMapRef", "name")
        data = None if name is None else manifests.configmaps.get((namespace, name))
        if data is not None:
            env.update({prefix + k: EnvVar(v, Where(source.file, source.line)) for k, v in data})
        else:
            kind = "configMapRef" if name is not None else "secretRef"
            named = name or source.text("secretRef", "name") or "?"
            unseen.append(
                f"envFrom {kind} {named} is not among the files given: a WARDEN_* variable in "
                "it would change the numbers checked here (give its manifest too)"
            )
    for item in (container.get("env") or container).items():
        name = item.text("name")
        if name is None:
            continue
        value = item.get("value")
        where = Where(container.file, item.line)
        if value is not None:
            text = "" if value.value is None else str(value.value)
            env[name] = _expand_value(text, env, where)
        elif item.get("valueFrom") is not None:
            env[name] = _value_from(item, namespace, manifests, where)
        else:
            env[name] = EnvVar("", where)  # a variable without a value is empty
    return env, unseen


def _expand_value(text: str, env: dict[str, EnvVar], where: Where) -> EnvVar:
    """A ``value`` with the ``$(VAR)`` of the variables before it, as the kubelet expands it."""
    for match in _REFERENCE.finditer(text):
        found = env.get(match.group(1) or "")
        if match.group(0) != "$$" and found is not None and found.value is None:
            return EnvVar(None, where, f"{match.group(1)}, which comes from {found.origin}")
    return EnvVar(_expand(text, {k: v.value for k, v in env.items() if v.value is not None}), where)


def _value_from(item: Node, namespace: str, manifests: Manifests, where: Where) -> EnvVar:
    """A ``valueFrom``: a ConfigMap among the inputs gives its value; anything else (a
    Secret, a ConfigMap not given, a field of the pod) is not known here, and says why."""
    ref = item.get("valueFrom", "configMapKeyRef")
    if ref is not None:
        name, key = ref.text("name") or "?", ref.text("key") or "?"
        data = dict(manifests.configmaps.get((namespace, name), ()))
        if key in data:
            return EnvVar(data[key], where)
        return EnvVar(None, where, f"ConfigMap {name} (key {key}), not among the files given")
    ref = item.get("valueFrom", "secretKeyRef")
    if ref is not None:
        return EnvVar(None, where, f"Secret {ref.text('name')} (key {ref.text('key')})")
    field = item.text("valueFrom", "fieldRef", "fieldPath")
    if field is not None:
        return EnvVar(None, where, f"the pod's field {field}")
    resource = item.text("valueFrom", "resourceFieldRef", "resource")
    if resource is not None:
        return EnvVar(None, where, f"the container's {resource}")
    return EnvVar(None, where, "a valueFrom doctor does not read")


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
