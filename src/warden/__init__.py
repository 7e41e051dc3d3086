"""warden: keeps a production service alive and honest through its whole life.

The library: ordered graceful shutdown with hard deadlines, signal handling and a leak report
(:class:`Lifecycle`); timeline observers for logs (:func:`log_events`).
"""

from __future__ import annotations

from ._exceptions import ConfigurationError as ConfigurationError
from ._exceptions import DependencyError as DependencyError
from ._exceptions import LifecycleError as LifecycleError
from ._exceptions import SignalHandlerError as SignalHandlerError
from ._exceptions import StartupError as StartupError
from ._exceptions import WardenError as WardenError
from .lifecycle import EXIT_DEADLINE as EXIT_DEADLINE
from .lifecycle import Event as Event
from .lifecycle import Leak as Leak
from .lifecycle import Lifecycle as Lifecycle
from .lifecycle import State as State
from .lifecycle import Timeline as Timeline
from .observe import log_events as log_events
from .observe import notify_systemd as notify_systemd
from .systemd import Notifier as Notifier
from .systemd import listen_fds as listen_fds

__version__ = "0.1.0"

__all__ = [
    "EXIT_DEADLINE",
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
    "listen_fds",
    "log_events",
    "notify_systemd",
]
