"""warden: keeps a production service alive and honest through its whole life.

The library: ordered graceful shutdown with hard deadlines, signal handling and a leak report
(:class:`Lifecycle`); config hot reload (:class:`ConfigStore`); the memory sentinel
(:func:`watch_memory`); health and metrics (:func:`serve_health`, :func:`health_asgi`,
:func:`health_wsgi`); timeline observers for logs (:func:`log_events`) and systemd
(:func:`notify_systemd`); systemd's protocols (:class:`Notifier`, :func:`listen_fds`).

The names are loaded on first use (PEP 562), so ``warden run`` imports only what a supervisor
needs: a PID 1 should stay small.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._exceptions import ConfigurationError as ConfigurationError
from ._exceptions import DependencyError as DependencyError
from ._exceptions import LifecycleError as LifecycleError
from ._exceptions import SignalHandlerError as SignalHandlerError
from ._exceptions import StartupError as StartupError
from ._exceptions import WardenError as WardenError
from ._lazy import lazy

if TYPE_CHECKING:
    from .config import ConfigStore as ConfigStore
    from .lifecycle import EXIT_DEADLINE as EXIT_DEADLINE
    from .lifecycle import Event as Event
    from .lifecycle import Leak as Leak
    from .lifecycle import Lifecycle as Lifecycle
    from .lifecycle import State as State
    from .lifecycle import Timeline as Timeline
    from .memory import watch_memory as watch_memory
    from .observe import health_asgi as health_asgi
    from .observe import health_wsgi as health_wsgi
    from .observe import log_events as log_events
    from .observe import notify_systemd as notify_systemd
    from .observe import serve_health as serve_health
    from .systemd import Notifier as Notifier
    from .systemd import listen_fds as listen_fds

from ._version import __version__ as __version__

_LAZY = {
    "EXIT_DEADLINE": "warden.lifecycle",
    "Event": "warden.lifecycle",
    "Leak": "warden.lifecycle",
    "Lifecycle": "warden.lifecycle",
    "State": "warden.lifecycle",
    "Timeline": "warden.lifecycle",
    "log_events": "warden.observe",
    "notify_systemd": "warden.observe",
    "Notifier": "warden.systemd",
    "listen_fds": "warden.systemd",
    "ConfigStore": "warden.config",
    "watch_memory": "warden.memory",
    "serve_health": "warden.observe",
    "health_asgi": "warden.observe",
    "health_wsgi": "warden.observe",
}

__getattr__ = lazy(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "EXIT_DEADLINE",
    "ConfigStore",
    "ConfigurationError",
    "DependencyError",
    "Event",
    "Leak",
    "Lifecycle",
    "LifecycleError",
    "Notifier",
    "SignalHandlerError",
    "StartupError",
    "State",
    "Timeline",
    "WardenError",
    "__version__",
    "health_asgi",
    "health_wsgi",
    "listen_fds",
    "log_events",
    "notify_systemd",
    "serve_health",
    "watch_memory",
]
