"""Every error warden raises.

One base class, so ``except warden.WardenError`` catches all of warden's own errors, and
subclasses of the built-in exceptions callers already expect. The public ones are exported
from ``warden`` (or from their package: ``warden.doctor.InputError``); the others are caught
inside warden and reach a user as a message. The whole tree (``tests/test_exceptions.py``
walks every class warden defines and checks it against this drawing)::

    WardenError(Exception)
    ├── ConfigurationError(ValueError)   a bad value: timeout, duration, option, env variable
    │   ├── DependencyError               unknown name in depends_on, cycle, duplicate name
    │   ├── ConfigError                   a config file cannot be used: file, line, field, reason
    │   ├── UsageError                    the command line (cli: one line, exit 2)
    │   └── ControlInUseError             another warden is live on the control path
    ├── LifecycleError(RuntimeError)      an operation at the wrong time (add after start, ...)
    │   └── SignalHandlerError            signal handling asked for off the main thread
    ├── StartupError(RuntimeError)        a component failed to start (the cause is chained)
    ├── MissingExtraError(ImportError)    an optional extra is not installed: warden[watch], [yaml]
    ├── MemoryCgroupError(OSError)        a memory cgroup cannot be read, created, limited, removed
    │   └── MemoryUnavailableError        no memory cgroup visible; the host is watched instead
    ├── ServeError(OSError)               integrations: a server cannot listen where told
    ├── SpawnError(OSError)               warden run: the command cannot be executed (126/127)
    ├── ListenError(OSError)              warden run: a --listen socket cannot be bound
    ├── TerminationLogError(OSError)      warden run: the termination message is not written
    ├── NotReady                          warden run: the program missed its readiness gate
    ├── UpgradeRefused                    no upgrade can start now (nothing ready, stopping)
    ├── UpgradeFailed                     an upgrade's step failed; the old release serves
    │   └── UpgradeRolledBack             the new release failed inside the confirmation window
    ├── ControlError                      a control request that cannot be done (the reply)
    ├── RefusedYAMLError(ValueError)      a YAML document refused before it is built
    ├── InputError                        warden doctor: a file it cannot read (exit 2)
    ├── NumberError(ValueError)           warden doctor: not a quantity or time span
    ├── NoRoom                            warden demo: no room to write its files (exit 2)
    └── _NoWarden                         the control client: no warden answers (exit 1)

Most are defined here. Those that carry the logic that explains their cause live beside it
and derive from :class:`WardenError` there: ``SpawnError`` (``supervisor/process/_spawn.py``),
``ListenError`` (``supervisor/sockets/_held.py``), ``TerminationLogError``
(``supervisor/_termination_log.py``), the config store's (``config/_errors.py``), the memory
sentinel's (``memory/_errors.py``), the integrations' (``integrations/_errors.py``), the YAML
reader's (``_yaml.py``), doctor's (``doctor/_inputs.py``, ``doctor/_numbers.py``), the demo's
(``demo/_room.py``) and the control client's (``cli/_control.py``).

Two classes are not errors and derive from :class:`BaseException`, as ``KeyboardInterrupt``
does, so that no ``except Exception`` in the code they cross stops them: the demo's
``Interrupted`` (a signal ends its steps) and ``OutputClosed`` (no one reads its output any
more), both in ``demo/_interrupts.py``.

Every message names the thing, the value and what to do about it (:func:`shown` writes a
value given, cut to a readable length).
"""

from __future__ import annotations


def shown(value: object, limit: int = 40) -> str:
    """``repr(value)`` for an error line, cut to about ``limit`` characters (a value of
    thousands of digits is named, not printed)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 12]}... ({len(text)} chars)"


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
