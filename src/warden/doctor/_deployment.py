"""One thing that runs, with every number its stop depends on: the unit the checks read.

A deployment is a container of a pod template (with the image's ENTRYPOINT, CMD and ENV where
the manifest leaves them to the image), a systemd service (with its sockets), or a container
image on its own. Each carries what it runs (:class:`Launch`), warden's options
(:class:`WardenRun`), the program's server settings, and the numbers of the platform around
it, each with where it was written; a number left out is its platform's default, said so.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from ._commands import Launch
from ._env import EnvVar
from ._manifests import Balancer, Node
from ._numbers import Number
from ._results import Where
from ._servers import Server
from ._warden import WardenRun

Platform = Literal["kubernetes", "systemd", "image"]

MARGIN = 2.0
"""Seconds between warden's deadline and the manager's SIGKILL, at least: the process table
walk, the reaping and the exit of warden itself, on a loaded node."""


@dataclasses.dataclass(frozen=True, slots=True)
class Mount:
    """A volume mount of a container: where, the ``subPath`` if any, the volume's kind."""

    path: str
    sub_path: str | None
    volume: str  # configMap, secret, projected, emptyDir... ("" when not found)
    where: Where


@dataclasses.dataclass(frozen=True, slots=True)
class Held:
    """A socket a ``.socket`` unit holds for the service: its address as written
    (``ListenStream=8000``, ``[::]:8000``, ``/run/app.sock``), the unit, and whether the unit
    says ``ReusePort=yes`` (without it the socket has no ``SO_REUSEPORT``, and an upgrade
    cannot steer warden's probes to the new release through it)."""

    address: str
    unit: str
    reuse_port: bool

    @property
    def tcp_port(self) -> int | None:
        """The TCP port, or None (a UNIX socket, an abstract one, a device)."""
        if self.address.startswith(("/", "@")):
            return None
        text = self.address.rpartition(":")[2]
        return int(text) if text.isdigit() else None


@dataclasses.dataclass(frozen=True, slots=True)
class Idle:
    """A load balancer's idle timeout, from the annotation that sets it."""

    balancer: str
    annotation: str
    seconds: float
    where: Where


@dataclasses.dataclass(frozen=True, slots=True)
class Deployment:
    """What one container, service or image runs, and the numbers around it.

    Attributes:
        platform: ``kubernetes``, ``systemd`` or ``image``.
        where: the file and the line of its command; ``subject`` names it.
        launch: the command line, read down to warden and the program (None: not known,
            e.g. a container that runs its image's command and no Containerfile was given).
        env: the environment the command runs in.
        warden: warden's options (None: warden does not run here).
        server: the program's server settings, where known.
        only_signal_path: an image a manifest also runs: only its own form is checked here,
            the rest with the manifest's numbers.
        grace: ``terminationGracePeriodSeconds``; pre_stop: the preStop's seconds.
        probes: ``livenessProbe``, ``readinessProbe``, ``startupProbe`` as written.
        ports: the container's named ports (a probe may name one).
        memory_limit, memory_request: the container's (or the unit's ``MemoryMax=``).
        mounts: the container's volume mounts.
        drain, propagation: what the pod's ``warden.dev/`` annotations say.
        idle: the idle timeouts of the load balancers in front of it.
        timeout_stop: the unit's ``TimeoutStopSec``; kill_mode: its ``KillMode`` and line.
        held: the sockets ``.socket`` units hold for the service.
    """

    platform: Platform
    where: Where
    launch: Launch | None
    env: dict[str, EnvVar]
    warden: WardenRun | None
    server: Server | None
    only_signal_path: bool = False
    grace: Number | None = None
    pre_stop: Number | None = None
    pre_stop_node: Node | None = None
    probes: dict[str, Node] = dataclasses.field(default_factory=dict)
    ports: dict[str, int] = dataclasses.field(default_factory=dict)
    memory_limit: Number | None = None
    memory_request: Number | None = None
    mounts: tuple[Mount, ...] = ()
    drain: Number | None = None
    propagation: Number | None = None
    idle: tuple[Idle, ...] = ()
    balancers: tuple[Balancer, ...] = ()
    timeout_stop: Number | None = None
    kill_mode: tuple[str, Where] | None = None
    held: tuple[Held, ...] = ()

    def at(self, line: int | Where | None) -> Where:
        """This deployment's subject at ``line`` of its command's file, or at a number's
        :class:`Where` (a drop-in's line, an image's); its command's line when None (a
        default is written nowhere)."""
        if isinstance(line, Where):
            if line.line is None:
                return self.where
            return dataclasses.replace(self.where, file=line.file, line=line.line)
        return dataclasses.replace(self.where, line=line if line is not None else self.where.line)
