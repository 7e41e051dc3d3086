"""``warden run``: a PID 1-grade supervisor for any program, built on the lifecycle.

The CLI needs :class:`Supervisor` and :class:`SupervisorOptions` (and the pieces it parses
into them); everything else here is private.
"""

from __future__ import annotations

from ._options import SupervisorOptions as SupervisorOptions
from ._reason import ExitKind as ExitKind
from ._reason import ExitReason as ExitReason
from ._restart import Backoff as Backoff
from ._restart import RestartPolicy as RestartPolicy
from ._signals import parse_signal as parse_signal
from ._spawn import SpawnError as SpawnError
from ._supervisor import Supervisor as Supervisor

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
