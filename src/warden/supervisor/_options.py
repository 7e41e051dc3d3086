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
        if self.max_restarts is not None and self.max_restarts < 0:
            raise ConfigurationError(f"max_restarts={self.max_restarts!r} is negative")

    @property
    def shutdown_timeout(self) -> float:
        """The lifecycle's hard deadline: the ladder's timeout plus room for SIGKILL."""
        return self.stop_timeout + KILL_MARGIN
