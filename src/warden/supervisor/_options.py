"""The supervisor's options: one frozen value, validated once, read everywhere."""

from __future__ import annotations

import dataclasses
import signal
from typing import Literal

from .._exceptions import ConfigurationError
from ._listenspec import ListenSpec
from ._readiness import ReadySpec
from ._restart import Backoff, RestartPolicy

#: Added to ``stop_timeout`` to get the lifecycle's hard shutdown deadline: the SIGKILL step of
#: the ladder and the reaping after it must fit in it, so the deadline guard (exit 124) only
#: fires when a process cannot be killed at all (stuck in uninterruptible sleep).
KILL_MARGIN = 5.0


@dataclasses.dataclass(frozen=True)
class SupervisorOptions:
    """Everything ``warden run`` was told; the CLI builds it, the supervisor reads it.

    Attributes:
        command: the program and its arguments; ``command[0]`` is searched in ``PATH``.
        stop_signal: sent to the child (or its group) first when warden stops.
        stop_timeout: seconds between the stop signal and SIGKILL to the whole group.
        group: forward signals, the stop signal included, to the child's whole process group.
        restart: when the child is started again after ending on its own.
        backoff: the delay between restarts of a crash loop.
        min_uptime: a run at least this long counts as healthy and resets the crash loop.
        max_restarts: restarts of a crash loop before giving up; None: never give up.
        listen: sockets warden binds and holds, handed to every child at fds 3..
        ready: how warden knows a started child is ready (the readiness gate).
        ready_timeout: how long a child may take to become ready.
        notify_access: whose sd_notify messages are accepted: the child's only, or all.
        watchdog: the child's watchdog interval (WATCHDOG_USEC); None: no watchdog.
        on_hup: what SIGHUP to warden (and ``warden reload``) does: a zero-downtime upgrade,
            or forwarding SIGHUP to the program; None: upgrade when there is a readiness gate
            (an upgrade needs one), forward otherwise (as tini does).
        drain_timeout: during an upgrade, seconds between the old release's stop signal and
            SIGKILL to its group; None: ``stop_timeout``.
        upgrade_check: a command run before each upgrade; a non-zero exit cancels it.
        control: the control socket's path; None: no control socket.
        control_optional: the path is a default, not the user's choice: when another warden
            holds it, run without a control socket instead of failing.
        pid_file: where warden writes its pid (atomically), removed at exit; None: nowhere.
    """

    command: tuple[str, ...]
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout: float = 10.0
    group: bool = False
    restart: RestartPolicy = RestartPolicy.NO
    backoff: Backoff = dataclasses.field(default_factory=Backoff)
    min_uptime: float = 10.0
    max_restarts: int | None = 5
    listen: tuple[ListenSpec, ...] = ()
    ready: ReadySpec = dataclasses.field(default_factory=lambda: ReadySpec("none"))
    ready_timeout: float = 30.0
    notify_access: Literal["main", "all"] = "main"
    watchdog: float | None = None
    on_hup: Literal["upgrade", "forward"] | None = None
    drain_timeout: float | None = None
    upgrade_check: tuple[str, ...] = ()
    control: str | None = None
    control_optional: bool = False
    pid_file: str | None = None

    def __post_init__(self) -> None:
        if not self.command or not self.command[0]:
            raise ConfigurationError(
                "no command to run; give it after '--', e.g. warden run -- python -m http.server"
            )
        if self.stop_timeout < 0:
            raise ConfigurationError(f"stop_timeout={self.stop_timeout!r} is negative")
        if self.backoff.initial > self.backoff.maximum:
            raise ConfigurationError(
                f"backoff initial {self.backoff.initial:g}s is above its maximum "
                f"{self.backoff.maximum:g}s; raise the maximum or lower the initial delay"
            )
        if not 0.0 <= self.backoff.jitter <= 1.0:
            raise ConfigurationError(
                f"backoff jitter {self.backoff.jitter!r} must be a fraction from 0 to 1"
            )
        if self.ready_timeout <= 0:
            raise ConfigurationError(f"ready_timeout={self.ready_timeout!r} must be above 0")
        if self.watchdog is not None and self.watchdog <= 0:
            raise ConfigurationError(f"watchdog={self.watchdog!r} must be above 0 seconds")
        if self.drain_timeout is not None and self.drain_timeout < 0:
            raise ConfigurationError(f"drain_timeout={self.drain_timeout!r} is negative")
        if self.on_hup not in ("upgrade", "forward", None):
            raise ConfigurationError(f"on_hup={self.on_hup!r} is invalid; use upgrade or forward")
        if self.max_restarts is not None and self.max_restarts < 0:
            raise ConfigurationError(f"max_restarts={self.max_restarts!r} is negative")

    @property
    def hup_action(self) -> Literal["upgrade", "forward"]:
        """What SIGHUP does, the default decided."""
        if self.on_hup is not None:
            return self.on_hup
        return "forward" if self.ready.kind == "none" else "upgrade"

    @property
    def drain_seconds(self) -> float:
        """How long the old release may drain during an upgrade."""
        return self.stop_timeout if self.drain_timeout is None else self.drain_timeout

    @property
    def shutdown_timeout(self) -> float:
        """The lifecycle's hard deadline: the ladder's timeout plus room for SIGKILL."""
        return self.stop_timeout + KILL_MARGIN
