"""Every error warden raises.

One base class, so ``except warden.WardenError`` catches all of warden's own errors, and
subclasses of the built-in exceptions callers already expect. Public classes are exported from
``warden``; the others (marked ``_``) are caught inside warden and reach a user as a message::

    WardenError
    ├── ConfigurationError(ValueError)   a bad value: timeout, duration, option, env variable
    │   ├── DependencyError               unknown name in depends_on, cycle, duplicate name
    │   ├── ConfigError                   a config file cannot be used: file, line, field, reason
    │   ├── _UsageError                   the command line (cli: one line, exit 2)
    │   └── _ControlInUseError            another warden is live on the control path
    ├── LifecycleError(RuntimeError)      an operation at the wrong time (add after start, ...)
    │   └── SignalHandlerError            signal handling asked for off the main thread
    ├── StartupError(RuntimeError)        a component failed to start (the cause is chained)
    ├── SpawnError(OSError)               warden run: the command cannot be executed (126/127)
    ├── ListenError(OSError)              warden run: a --listen socket cannot be bound
    ├── _NotReady                         warden run: the program missed its readiness gate
    ├── _UpgradeRefused                   no upgrade can start now (nothing ready, stopping)
    ├── _UpgradeFailed                    an upgrade's step failed; the old release serves
    │   └── _UpgradeRolledBack            the new release failed inside the confirmation window
    ├── _ControlError                     a control request that cannot be done (the reply)
    ├── MissingExtraError(ImportError)    an optional extra is not installed: warden[watch], [yaml]
    ├── MemoryCgroupError(OSError)        a memory cgroup cannot be read, created, limited, removed
    │   └── MemoryUnavailableError        no memory cgroup visible; the host is watched instead
    └── ServeError(OSError)               integrations: a server cannot listen where told

The underscored classes are defined here too (without the underscore), so the supervisor and
the CLI import them from here; ``SpawnError`` and ``ListenError`` carry the logic that explains
their cause, so they live beside it (``supervisor/process/_spawn.py``,
``supervisor/sockets/_held.py``) and derive from :class:`WardenError` there; so do the config
store's (``config/_errors.py``), the memory sentinel's (``memory/_errors.py``) and the
integrations' (``integrations/_errors.py``).

Every message names the thing, the value and what to do about it.
"""

from __future__ import annotations


class WardenError(Exception):
    """Base class of every error raised by warden."""


class ConfigurationError(WardenError, ValueError):
    """A value given to warden is invalid; the message names it and the fix."""


class DependencyError(ConfigurationError):
    """The component graph is invalid: unknown dependency, cycle or duplicate name."""


class LifecycleError(WardenError, RuntimeError):
    """An operation was asked for in a lifecycle state that does not allow it."""


class SignalHandlerError(LifecycleError):
    """Signal handlers can only be installed from the main thread."""


class UsageError(ConfigurationError):
    """Bad command-line or environment input: one line, exit code 2."""


class ControlInUseError(ConfigurationError):
    """Another warden is live on the control socket's path."""


class NotReady(WardenError):
    """The program did not become ready; the message says why."""


class UpgradeRefused(WardenError):
    """No upgrade can start now (nothing is running, or warden is stopping); says why."""


class UpgradeFailed(WardenError):
    """A step of an upgrade failed; the old release keeps serving. The message is the detail."""

    def __init__(self, detail: str, *, new_pid: int | None = None) -> None:
        super().__init__(detail)
        #: The new release that was started and is gone again, if one was.
        self.new_pid = new_pid


class UpgradeRolledBack(UpgradeFailed):
    """The new release failed inside the confirmation window; it was stopped and the old
    release, never told to stop, keeps serving."""


class ControlError(WardenError):
    """A control request that cannot be done; its message goes to the client as the error."""


class StartupError(WardenError, RuntimeError):
    """A component failed to start; the service was stopped again."""

    def __init__(self, component: str, cause: BaseException) -> None:
        super().__init__(
            f"component {component!r} failed to start: {type(cause).__name__}: {cause}"
        )
        self.component = component
