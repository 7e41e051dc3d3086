"""The lifecycle core: states, component graph, signals, deadline guard, leak report, timeline.

Imports nothing else of warden's: every other part builds on this one.
"""

from __future__ import annotations

from ._durations import parse_duration as parse_duration
from ._exitcodes import EXIT_DEADLINE as EXIT_DEADLINE
from ._exitcodes import EXIT_FAILURE as EXIT_FAILURE
from ._exitcodes import EXIT_OK as EXIT_OK
from ._exitcodes import EXIT_SIGNAL_BASE as EXIT_SIGNAL_BASE
from ._exitcodes import EXIT_USAGE as EXIT_USAGE
from ._leaks import Leak as Leak
from ._lifecycle import DEFAULT_SHUTDOWN_TIMEOUT as DEFAULT_SHUTDOWN_TIMEOUT
from ._lifecycle import Component as Component
from ._lifecycle import Lifecycle as Lifecycle
from ._signals import signal_name as signal_name
from ._states import State as State
from ._timeline import Event as Event
from ._timeline import Timeline as Timeline
