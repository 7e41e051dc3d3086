"""``warden run``: a PID 1-grade supervisor for any program, built on the lifecycle.

The CLI needs :class:`Supervisor` and :class:`SupervisorOptions` (and the pieces it parses
into them: :class:`RestartPolicy`; a run's end is an :class:`ExitReason` of an
:class:`ExitKind`); everything else here is private.
"""

from __future__ import annotations

from . import _declare, _options
from ._options import SupervisorOptions as SupervisorOptions
from ._supervisor import Supervisor as Supervisor
from .process import _signals
from .process._reason import ExitKind as ExitKind
from .process._reason import ExitReason as ExitReason
from .release._restart import RestartPolicy as RestartPolicy

# Internal, for the CLI and warden doctor (the option table and its parser, the signals warden
# run leaves to the program); not public API.
_OPTIONS = _options.OPTIONS
_KILL_MARGIN = _options.KILL_MARGIN
_add_arguments = _declare.add_arguments
_given_values = _declare.given_values
_parse_command_line = _declare.parse_command_line
_paths = _declare.paths
_ignore_unforwarded = _signals.ignore_unforwarded

__all__ = [
    "ExitKind",
    "ExitReason",
    "RestartPolicy",
    "Supervisor",
    "SupervisorOptions",
]
