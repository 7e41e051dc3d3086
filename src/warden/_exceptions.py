"""Every error warden raises.

One base class, so ``except warden.WardenError`` catches all of warden's own errors, and
subclasses of the built-in exceptions callers already expect::

    WardenError
    ├── ConfigurationError(ValueError)   a bad value: timeout, duration, option, env variable
    │   └── DependencyError               unknown name in depends_on, cycle, duplicate name
    ├── LifecycleError(RuntimeError)      an operation at the wrong time (add after start, ...)
    │   └── SignalHandlerError            signal handling asked for off the main thread
    ├── StartupError(RuntimeError)        a component failed to start (the cause is chained)
    ├── SpawnError(OSError)               warden run: the command cannot be executed (126/127)
    └── ListenError(OSError)              warden run: a --listen socket cannot be bound

(``SpawnError`` and ``ListenError`` live with the supervisor, in ``supervisor/_spawn.py`` and
``supervisor/_sockets.py``.)

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


class StartupError(WardenError, RuntimeError):
    """A component failed to start; the service was stopped again."""

    def __init__(self, component: str, cause: BaseException) -> None:
        super().__init__(
            f"component {component!r} failed to start: {type(cause).__name__}: {cause}"
        )
        self.component = component
