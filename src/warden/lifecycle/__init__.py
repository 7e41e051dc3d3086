"""The lifecycle core: states, component graph, signals, deadline guard, leak report, timeline.

Imports nothing else of warden's: every other part builds on this one.
"""

from __future__ import annotations

from .._durations import parse_duration as parse_duration
from .._exitcodes import EXIT_DEADLINE as EXIT_DEADLINE
from .._exitcodes import EXIT_FAILURE as EXIT_FAILURE
from .._exitcodes import EXIT_OK as EXIT_OK
from .._exitcodes import EXIT_SIGNAL_BASE as EXIT_SIGNAL_BASE
from .._exitcodes import EXIT_USAGE as EXIT_USAGE
from . import _children, _leaks
from ._clock import Clock as Clock
from ._clock import ManualClock as ManualClock
from ._clock import Timer as Timer
from ._events import KINDS as KINDS
from ._events import ComponentStarted as ComponentStarted
from ._events import ComponentStopped as ComponentStopped
from ._events import Event as Event
from ._events import Fact as Fact
from ._events import LeakFound as LeakFound
from ._events import LogsReopened as LogsReopened
from ._events import MainFinished as MainFinished
from ._events import Outcome as Outcome
from ._events import Reloaded as Reloaded
from ._events import ReloadFinished as ReloadFinished
from ._events import Reloading as Reloading
from ._events import ReloadSkipped as ReloadSkipped
from ._events import Says as Says
from ._events import SignalHookFailed as SignalHookFailed
from ._events import SignalReceived as SignalReceived
from ._events import StateChanged as StateChanged
from ._events import StatusUpdate as StatusUpdate
from ._events import StopRequested as StopRequested
from ._events import TimeoutExtended as TimeoutExtended
from ._leaks import Leak as Leak
from ._lifecycle import DEFAULT_SHUTDOWN_TIMEOUT as DEFAULT_SHUTDOWN_TIMEOUT
from ._lifecycle import Component as Component
from ._lifecycle import Lifecycle as Lifecycle
from ._signals import signal_name as signal_name
from ._states import State as State
from ._timeline import Timeline as Timeline

# Internal, for warden's other packages (the supervisor's reaper and stop ladder, gunicorn's
# leak report); not public API.
_child_pids = _children.child_pids
_Baseline = _leaks.Baseline
_take_baseline = _leaks.take_baseline
_find_leaks = _leaks.find_leaks

__all__ = [
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "EXIT_DEADLINE",
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_SIGNAL_BASE",
    "EXIT_USAGE",
    "KINDS",
    "Clock",
    "Component",
    "ComponentStarted",
    "ComponentStopped",
    "Event",
    "Fact",
    "Leak",
    "LeakFound",
    "Lifecycle",
    "LogsReopened",
    "MainFinished",
    "ManualClock",
    "Outcome",
    "ReloadFinished",
    "ReloadSkipped",
    "Reloaded",
    "Reloading",
    "Says",
    "SignalHookFailed",
    "SignalReceived",
    "State",
    "StateChanged",
    "StatusUpdate",
    "StopRequested",
    "Timeline",
    "TimeoutExtended",
    "Timer",
    "parse_duration",
    "signal_name",
]
