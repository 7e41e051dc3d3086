"""Why ``warden run`` exits, in plain words: composed from the timeline, said once, last.

:class:`ClosingReason` follows the supervisor's timeline (the program's runs and ends, the
memory sentinel's levels and its stop at ``critical``, the stop signal and the ladder's
SIGKILL) and, when warden has decided to exit, :meth:`ClosingReason.decide` turns what it saw
into one :class:`WardenExiting` fact: the log's closing line, the final STATUS= upward and
the termination message all say its ``reason``::

    oom-killed: working set 511 of 512 MiB; warned at 80 % 41 s before
    stopped by the memory sentinel at critical (51 of 64 MiB), before the OOM killer; the
        program exited(0), counted as a failure so that it is restarted
    the program exited(3)
    stopped by SIGTERM; the program exited(0)

:meth:`ClosingReason.last_exit` gives ``warden status`` the same words for the program's last
end while warden still runs.
"""

from __future__ import annotations

import dataclasses
import signal
import time

from ..lifecycle import (
    ComponentStarted,
    Event,
    Outcome,
    SignalReceived,
    StopRequested,
    signal_name,
)
from ..memory import Level, MemoryLevelChanged
from ._events import (
    ChildExited,
    ChildStarted,
    EverythingKilled,
    ExitCause,
    MemoryAtExit,
    MemoryStopSent,
    MemoryWarning,
    StopSignalSent,
    WardenExiting,
    mib_of,
)
from .process._reason import ExitKind, ExitReason

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

#: An OOM kill frees the victim's memory at once: the sentinel may see it back at ``ok`` a
#: moment before warden reaps the victim. A fall to ``ok`` this close to an end is its own.
_SAME_EPISODE = 2.0


@dataclasses.dataclass(frozen=True, slots=True)
class LastExit:
    """The program's last end, as ``warden status`` shows it.

    Attributes:
        reason: the precise reason (``oom-killed``, ``exited(3)``).
        words: the reason with what is known around it ("oom-killed: working set 61 of
            64 MiB; warned at 80 % 2.1 s before").
        exit_code: the code that end stands for.
        at: ``time.monotonic()`` of the end.
    """

    reason: ExitReason
    words: str
    exit_code: int
    at: float


@dataclasses.dataclass(frozen=True, slots=True)
class _End:
    fact: ChildExited
    at: float
    warnings: tuple[MemoryWarning, ...]
    memory_stop: MemoryAtExit | None
    stopped_by_memory: bool


class ClosingReason:
    """The timeline's observer that knows, at the end, why warden exits.

    Example::

        closing = ClosingReason(stop_timeout=10.0)
        lifecycle.timeline.subscribe(closing.observe)
        ...
        lifecycle.publish(closing.decide(exit_code, final_message))
    """

    def __init__(self, *, stop_timeout: float) -> None:
        self._stop_timeout = stop_timeout
        self._alive: set[int] = set()
        self._rising: list[tuple[MemoryLevelChanged, float]] = []  # the last rise from ok
        self._fell_at: float | None = None  # when memory was back to ok after it
        self._memory_stops: dict[int, tuple[MemoryStopSent, float]] = {}
        self._asked_by: str | None = None  # a stop signal's name, or "warden stop"
        self._stopped_by: str | None = None  # a stop that came while the program ran
        self._stopped_while_down: str | None = None  # ... or while it was not running
        self._killed_at_deadline = False
        #: The ladder's stop signal, to whom and when: a program that then dies *of* it may
        #: have had no handler, or re-raised it after its own graceful stop (uvicorn does).
        self._stop_sent: tuple[StopSignalSent, float] | None = None
        self._last: _End | None = None
        #: The line for a component whose start failed without a word of its own (the
        #: control socket out of descriptors...): the run never got to the program.
        self._failed_start: str | None = None

    # -- what happened -------------------------------------------------------------------

    def observe(self, event: Event) -> None:
        """The timeline's observer (call with every event, in order)."""
        fact = event.fact
        if isinstance(fact, ChildStarted):
            self._alive.add(fact.pid)
        elif isinstance(fact, ChildExited):
            self._alive.discard(fact.pid)
            if fact.current:
                self._last = self._end(fact, event.at)
        elif isinstance(fact, MemoryLevelChanged):
            if fact.level > fact.previous:
                if fact.previous is Level.OK:  # a new rise: the last one is over
                    self._rising = []
                self._rising.append((fact, event.at))
                self._fell_at = None
            elif fact.level is Level.OK:
                self._fell_at = event.at
        elif isinstance(fact, StopSignalSent):
            self._stop_sent = (fact, event.at)
        elif isinstance(fact, MemoryStopSent):
            self._memory_stops[fact.pid] = (fact, event.at)
        elif isinstance(fact, SignalReceived):
            if fact.signum in _STOP_SIGNALS and not fact.second_stop:
                self._asked_by = signal_name(fact.signum)
        elif isinstance(fact, StopRequested) and self._asked_by is not None:
            # A stop someone asked for; the others (main returned: the program ended, a
            # component failed) are said by the program's end or by warden's own message.
            if self._alive or self._last is None:
                self._stopped_by = self._asked_by
            else:
                self._stopped_while_down = self._asked_by
        elif isinstance(fact, EverythingKilled) and fact.cause == "deadline":
            self._killed_at_deadline = True
        elif isinstance(fact, ComponentStarted) and fact.result is Outcome.FAILED:
            failed = f"the program was not started: {fact.component} failed: {fact.error}"
            self._failed_start = self._failed_start or failed

    def stop_asked(self, by: str) -> None:
        """A stop asked for other than by a signal (``warden stop``): call before the
        lifecycle's ``request_stop``."""
        self._asked_by = self._asked_by or by

    def _end(self, fact: ChildExited, at: float) -> _End:
        rising = self._rising
        if self._fell_at is not None and at - self._fell_at > _SAME_EPISODE:
            rising = []  # memory was back to ok well before this end: not its story
        warnings = tuple(
            MemoryWarning(
                level=level.level,
                working_set=level.working_set,
                limit=level.limit,
                before=max(0.0, at - when),
            )
            for level, when in rising
        )
        stop = self._memory_stops.pop(fact.pid, None)
        memory_stop = None
        if stop is not None:
            memory_stop = MemoryAtExit(working_set=stop[0].working_set, limit=stop[0].limit)
        return _End(
            fact=fact,
            at=at,
            warnings=warnings,
            memory_stop=memory_stop,
            stopped_by_memory=stop is not None and self._stopped_by is None,
        )

    # -- what to say -----------------------------------------------------------------------

    def last_exit(self) -> LastExit | None:
        """The program's last end with what is known around it; None before the first."""
        end = self._last
        if end is None:
            return None
        reason = end.fact.reason
        return LastExit(reason, _exit_words(end), reason.exit_code, end.at)

    def decide(self, exit_code: int, message: str | None = None) -> WardenExiting:
        """The closing fact for ``exit_code``; ``message``: warden's own words, if warden
        decided (the give-up line, an exec failure, a socket it could not bind); else those
        of a component whose start failed, if one did."""
        message = message or self._failed_start
        end = self._last
        cause, reason = self._why(end, message)
        return WardenExiting(
            exit_code=exit_code,
            cause=cause,
            reason=reason,
            stopped_by=self._stopped_by or self._stopped_while_down,
            last_exit=None if end is None else end.fact.reason,
            memory=None if end is None else end.fact.memory,
            warnings=() if end is None else end.warnings,
            memory_stop=None if end is None else end.memory_stop,
            message=message,
            on_stop_signal=cause == "stop" and self._on_stop_signal(end) is not None,
        )

    def _why(self, end: _End | None, message: str | None) -> tuple[ExitCause, str]:
        """What caused the exit, and the words for it."""
        if message:
            return "warden", message
        if self._stopped_by is not None:
            return "stop", self._stopped(self._stopped_by, end)
        if end is None:
            return "none", "the program did not run"
        if self._stopped_while_down is not None:
            return "stop", (
                f"stopped by {self._stopped_while_down} while the program was down (waiting "
                f"to restart); its last end: {_exit_words(end)}"
            )
        oom = end.fact.reason.kind is ExitKind.OOM_KILLED
        if end.stopped_by_memory and end.memory_stop is not None and not oom:
            reason = end.fact.reason
            clean = reason.kind is ExitKind.EXITED and reason.code == 0
            return "memory", (
                f"stopped by the memory sentinel at critical ({_mib(end.memory_stop)}), "
                f"before the OOM killer; {_the_program(end)}"
                + (", counted as a failure so that it is restarted" if clean else "")
            )
        return "program", _the_program(end)

    def _stopped(self, who: str, end: _End | None) -> str:
        if end is None:
            return f"stopped by {who} before the program started"
        reason = end.fact.reason
        if self._killed_at_deadline and reason.kind is ExitKind.KILLED and reason.signum == 9:
            return (
                f"stopped by {who}; the program was still running after --stop-timeout "
                f"{self._stop_timeout:g}s: killed(SIGKILL)"
            )
        took = self._on_stop_signal(end)
        if took is not None:
            # Dying of the stop signal is no verdict: a program without a handler does, and
            # so does one that re-raises it after its own graceful stop (uvicorn does, to
            # report the signal). How long it took says which, to a person.
            return (
                f"stopped by {who}; the program ended on the stop signal "
                f"{_elapsed(took)} after it was sent: {reason}"
            )
        if reason.kind is ExitKind.KILLED and reason.signum in _STOP_SIGNALS:
            return f"stopped by {who}; the program did not handle it: {reason}"
        return f"stopped by {who}; {_the_program(end)}"

    def _on_stop_signal(self, end: _End | None) -> float | None:
        """Seconds from the ladder's stop signal to the program's death *of that signal*
        (None when it ended otherwise, or no stop signal was sent to it)."""
        if end is None or self._stop_sent is None:
            return None
        sent, at = self._stop_sent
        reason = end.fact.reason
        if reason.kind is not ExitKind.KILLED or reason.signum != sent.signum:
            return None
        if end.fact.pid != sent.pid or end.at < at:
            return None
        return end.at - at


# -- words ---------------------------------------------------------------------------------


def _the_program(end: _End) -> str:
    """The program's end as a clause: "the program exited(3)", "oom-killed: ..."."""
    reason = end.fact.reason
    kind = reason.kind
    words = _exit_words(end)
    if kind is ExitKind.OOM_KILLED:
        return words
    if kind is ExitKind.EXITED:
        return f"the program {words}"
    if kind is ExitKind.KILLED:
        return f"the program was {words}"
    if kind is ExitKind.NOT_READY:
        return f"the program {words}"
    if kind is ExitKind.EXEC_FAILED:
        return f"the program could not be started: {words}"
    return f"the program ended: {words}"


def _exit_words(end: _End) -> str:
    """The reason, with memory where it explains the end (an OOM kill)."""
    reason = end.fact.reason
    if reason.kind is not ExitKind.OOM_KILLED:
        return str(reason)
    memory = end.fact.memory
    if memory is not None and memory.working_set is not None:
        text = f"oom-killed: working set {_mib(memory)}"
    elif memory is not None:
        text = f"oom-killed at the {_mib_value(memory.limit)} MiB limit"
    else:
        text = "oom-killed"
    said = _warnings(end.warnings)
    if end.memory_stop is not None and said:
        said[-1] += " (the stop signal sent then did not stop it)"
    elif end.memory_stop is not None:
        said.append(f"its stop signal at critical ({_mib(end.memory_stop)}) did not stop it")
    return f"{text}; {', '.join(said)}" if said else text


def _warnings(warnings: tuple[MemoryWarning, ...]) -> list[str]:
    """ "warned at 80 % 41 s before", and the highest level reached after it."""
    if not warnings:
        return []
    first = warnings[0]
    said = [f"warned at {_percent(first)} {_seconds(first.before)} before"]
    last = warnings[-1]
    if last is not first:
        said.append(f"{last.level.value} at {_percent(last)} {_seconds(last.before)} before")
    return said


def _percent(warning: MemoryWarning) -> str:
    return f"{100 * warning.working_set / max(1, warning.limit):.0f} %"


def _elapsed(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else _seconds(value)


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def _mib(memory: MemoryAtExit) -> str:
    return mib_of(memory.working_set or 0, memory.limit)


def _mib_value(value: int) -> str:
    number = value / 2**20
    return f"{number:.0f}" if number >= 10 else f"{number:.1f}"


def monotonic_age(at: float) -> float:
    """Seconds since ``at`` (a ``time.monotonic()`` reading)."""
    return max(0.0, time.monotonic() - at)
