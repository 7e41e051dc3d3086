"""``warden run``: a PID 1-grade supervisor for any program, built on the lifecycle.

The CLI needs :class:`Supervisor` and :class:`SupervisorOptions` (and the pieces it parses
into them); everything else here is private.
"""

from __future__ import annotations

from ._options import SupervisorOptions as SupervisorOptions
from ._supervisor import Supervisor as Supervisor
from .process._reason import ExitKind as ExitKind
from .process._reason import ExitReason as ExitReason
from .process._signals import parse_signal as parse_signal
from .process._spawn import SpawnError as SpawnError
from .release._restart import Backoff as Backoff
from .release._restart import RestartPolicy as RestartPolicy

__all__ = [
    "Backoff",
    "ExitKind",
    "ExitReason",
    "RestartPolicy",
    "SpawnError",
    "Supervisor",
    "SupervisorOptions",
    "parse_signal",
]
