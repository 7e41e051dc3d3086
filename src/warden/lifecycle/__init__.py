"""The lifecycle core: states, component graph, signals, deadline guard, leak report, timeline.

Imports nothing else of warden's: every other part builds on this one. ``__all__`` is what a
service written on it uses: :class:`Lifecycle`, its timeline and facts, and the clock its
waits run on (:class:`ManualClock` for tests). A few more names are re-exported for warden's
own packages (``KINDS``, ``Timer``, ``signal_name``) and are not a promise.
"""

from __future__ import annotations

from .._exitcodes import EXIT_DEADLINE as EXIT_DEADLINE
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
    "EXIT_DEADLINE",
    "Clock",
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
]
