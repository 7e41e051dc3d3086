"""``warden run``: a PID 1-grade supervisor for any program, built on the lifecycle.

The CLI needs :class:`Supervisor` and :class:`SupervisorOptions` (and the pieces it parses
into them: :class:`RestartPolicy`; a run's end is an :class:`ExitReason` of an
:class:`ExitKind`); everything else here is private.
"""

from __future__ import annotations

from ._options import SupervisorOptions as SupervisorOptions
from ._supervisor import Supervisor as Supervisor
from .process._reason import ExitKind as ExitKind
from .process._reason import ExitReason as ExitReason
from .release._restart import RestartPolicy as RestartPolicy

__all__ = [
    "ExitKind",
    "ExitReason",
    "RestartPolicy",
    "Supervisor",
    "SupervisorOptions",
]
