"""The table of facts: every kind of event, declared once with the data it carries.

A *fact* is a frozen dataclass: its fields are the structured data (pid, exit code, signal,
outcome, duration, reason), and its class attribute ``kind`` names it on the timeline. Every
subclass of :class:`Fact` is entered in :data:`KINDS` when it is defined, so the table is the
set of classes, wherever in warden they live (the lifecycle's below; the supervisor's, the
config store's and the memory sentinel's in their own packages), and a kind can be declared
only once.

Observers read the fields (``match event.fact: case ComponentStopped(outcome=...)``), never
text. For people, each fact also renders itself in four short strings (``name``, ``outcome``,
``detail``, and ``duration`` in seconds) that the log observer prints; nothing parses them.
A kind declares them once, as formats over its fields (:class:`Says`: ``name="pid {pid}"``,
``detail="gate: {gate}"``), and the base renders them; only a text that depends on a value
(a plural, a choice of words) is written as a property of its own. How loud it is printed is
declared on its kind too (``for_people``, ``log_level``): a person on a terminal hears what
matters, the JSON log and the journal get every fact.

A few bases say what a fact means to a service manager, so the systemd observer can report
facts of layers it does not import: :class:`Reloading`, :class:`Reloaded`,
:class:`StatusUpdate` and :class:`TimeoutExtended`.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import re
import signal
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from ._leaks import Leak
from ._signals import signal_name
from ._states import State

KINDS: dict[str, type[Fact]] = {}
"""Every kind of fact, by its ``kind`` name; filled as the classes are defined."""


class Outcome(enum.Enum):
    """How a step ended."""

    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


_WARNING_OUTCOMES = frozenset({"failed", "timeout", "refused", "warning", "rolled back"})


@dataclass(frozen=True, slots=True)
class Says:
    """How a person reads a fact, declared once on its kind.

    ``name``, ``outcome`` and ``detail`` are :meth:`str.format` templates over the fact's
    fields (``"pid {pid}"``, ``"after {after}; starting again in {delay:.3g}s"``,
    ``"{result.value}"``), with three formats of warden's own: ``{signum:signal}`` is a
    signal's name (``SIGTERM``), ``{argv:words}`` a sequence joined by spaces and
    ``{paths:list}`` one joined by commas. ``duration`` names the field that holds the
    seconds the step took. ``warning``: always worth a look, whatever the outcome.
    """

    name: str | None = None
    outcome: str | None = None
    detail: str | None = None
    duration: str | None = None
    warning: bool = False


class _Words(string.Formatter):
    """``str.format`` over a fact's fields, with the formats :class:`Says` names."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec == "signal":
            return signal_name(value)
        if format_spec == "words":
            return " ".join(value)
        if format_spec == "list":
            return ", ".join(value)
        return format(value, format_spec)


class _Fields(Mapping[str, object]):
    """A fact's fields (and properties) by name, for :class:`_Words`."""

    def __init__(self, fact: Fact) -> None:
        self._fact = fact

    def __getitem__(self, key: str) -> object:
        return getattr(self._fact, key)

    def __iter__(self) -> Iterator[str]:
        return iter(f.name for f in dataclasses.fields(self._fact))

    def __len__(self) -> int:
        return len(dataclasses.fields(self._fact))


_WORDS = _Words()
_ONE_FIELD = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Fact:
    """Base of every kind of event. Subclasses set ``kind``, declare their fields and say
    how a person reads them (``says``)."""

    kind: ClassVar[str] = ""

    #: Whether a person watching a terminal hears of a fact of this kind when it went as it
    #: should (logged at INFO). ``False`` marks an internal step (a component of warden's own
    #: started, ``main`` returned, a stop was requested), logged at DEBUG: the JSON log and
    #: the journal keep it, a terminal does not show it. A fact that calls for a look
    #: (``warning``) is a WARNING either way; a kind can say more by overriding ``log_level``.
    for_people: ClassVar[bool] = True

    #: The four short strings for people, as formats over the fields (see :class:`Says`).
    says: ClassVar[Says] = Says()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        object.__init_subclass__(**kwargs)  # not super(): slots=True remakes the class
        kind = cls.__dict__.get("kind")
        if not kind:
            return  # an intermediate base (Reloading, ...): not a kind of its own
        known = KINDS.get(kind)
        # The slots dataclass decorator makes a second class of the same name: that is a
        # redefinition of the same declaration, not a second declaration of the kind.
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise TypeError(f"event kind {kind!r} is declared twice: {known!r} and {cls!r}")
        KINDS[kind] = cls

    # -- how a person reads it (the log); observers use the fields -----------------------

    @property
    def name(self) -> str | None:
        """What the fact is about: a component, a signal, a pid."""
        return self._said(self.says.name)

    @property
    def outcome(self) -> str | None:
        return self._said(self.says.outcome)

    @property
    def duration(self) -> float | None:
        """Seconds the step took, where it applies."""
        field = self.says.duration
        return None if field is None else cast("float | None", getattr(self, field))

    @property
    def detail(self) -> str | None:
        return self._said(self.says.detail)

    @property
    def warning(self) -> bool:
        """Whether a person should look (logged at warning level)."""
        return self.says.warning or self.outcome in _WARNING_OUTCOMES

    @property
    def log_level(self) -> int:
        """How loud the log says it, in :mod:`logging`'s numbers: WARNING when a person should
        look, else INFO for a fact :attr:`for_people` and DEBUG for an internal step."""
        if self.warning:
            return logging.WARNING
        return logging.INFO if self.for_people else logging.DEBUG

    def data(self) -> dict[str, object]:
        """The fields as JSON-ready values (enums by value, nested records as dicts)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def _said(self, template: str | None) -> str | None:
        if template is None:
            return None
        alone = _ONE_FIELD.fullmatch(template)
        if alone is not None and getattr(self, alone[1]) is None:
            return None  # "{error}" of no error: no detail, not "None"
        return _WORDS.vformat(template, (), _Fields(self))


def _plain(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value if not isinstance(value, signal.Signals) else value.name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


# -- what a fact means to a service manager (the systemd observer reads these) -----------


@dataclass(frozen=True, slots=True, kw_only=True)
class Reloading(Fact):
    """The service begins to reload or upgrade: RELOADING=1 to a manager above."""

    @property
    def status(self) -> str:
        return "reloading"


@dataclass(frozen=True, slots=True, kw_only=True)
class Reloaded(Fact):
    """The reload or upgrade begun by a :class:`Reloading` is over: READY=1 again."""

    @property
    def status(self) -> str:
        return "ready"


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusUpdate(Fact):
    """A new STATUS= line for a manager above."""

    @property
    def status(self) -> str:
        return ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeoutExtended(Fact):
    """Ask a manager above for more time (EXTEND_TIMEOUT_USEC)."""

    usec: int


# -- the lifecycle's own facts ------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StateChanged(Fact):
    """The lifecycle moved to ``state``; ``took`` is the phase that ended, where it applies."""

    kind: ClassVar[str] = "state"
    says: ClassVar[Says] = Says(name="{state.value}", duration="took")
    state: State
    took: float | None = None

    @property
    def log_level(self) -> int:
        """Ready and stopped are for people (with the time they took); the steps between
        them (starting, draining, stopping) are internal."""
        if self.for_people and self.state in (State.READY, State.STOPPED):
            return logging.INFO
        return logging.DEBUG


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalReceived(Fact):
    """A signal the lifecycle handles arrived (coalesced: at least one of it)."""

    kind: ClassVar[str] = "signal"
    says: ClassVar[Says] = Says(name="{signum:signal}")
    signum: int
    second_stop: bool = False

    @property
    def detail(self) -> str | None:
        return "second stop signal" if self.second_stop else None


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalHookFailed(Fact):
    """A callback given to ``on_signal`` raised."""

    kind: ClassVar[str] = "signal.hook_failed"
    says: ClassVar[Says] = Says(name="{signum:signal}", outcome="failed", detail="{error}")
    signum: int
    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class _ComponentStep(Fact):
    for_people: ClassVar[bool] = False  # a failure or a timeout is a warning all the same
    says: ClassVar[Says] = Says(
        name="{component}", outcome="{result.value}", detail="{error}", duration="took"
    )
    component: str
    result: Outcome
    took: float | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentStarted(_ComponentStep):
    """A component's start ended: ok, failed, cancelled or skipped (a stop came first)."""

    kind: ClassVar[str] = "start"


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentStopped(_ComponentStep, StatusUpdate):
    """A component's stop ended: ok, failed or timeout."""

    kind: ClassVar[str] = "stop"

    @property
    def status(self) -> str:
        return f"stopping: {self.component} {self.result.value}"


@dataclass(frozen=True, slots=True, kw_only=True)
class StopRequested(Fact):
    """The graceful stop began (readiness is false from here on)."""

    kind: ClassVar[str] = "stop_requested"
    for_people: ClassVar[bool] = False  # the signal, or main's end, says why
    says: ClassVar[Says] = Says(detail="{reason}")
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MainFinished(Fact):
    """The service body (``main``) returned, raised or was cancelled."""

    kind: ClassVar[str] = "main"
    for_people: ClassVar[bool] = False  # raising is a warning all the same
    says: ClassVar[Says] = Says(outcome="{result.value}", detail="{error}", duration="took")
    result: Outcome
    took: float
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class _HooksRan(Fact):
    says: ClassVar[Says] = Says(outcome="{result.value}", duration="took")
    result: Outcome
    took: float
    errors: tuple[str, ...] = ()

    @property
    def detail(self) -> str | None:
        return "; ".join(self.errors) or None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReloadFinished(_HooksRan, StatusUpdate):
    """The reload hooks ran (SIGHUP or ``Lifecycle.reload()``)."""

    kind: ClassVar[str] = "reload"

    @property
    def status(self) -> str:
        if self.result is Outcome.OK:
            return "ready"
        return f"reload failed: {self.detail or ''}"[:200].replace("\n", " ")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReloadSkipped(Fact):
    """A reload was asked for while the service was not serving."""

    kind: ClassVar[str] = "reload.skipped"
    says: ClassVar[Says] = Says(outcome="skipped", detail="lifecycle is {state.value}")
    state: State


@dataclass(frozen=True, slots=True, kw_only=True)
class LogsReopened(_HooksRan):
    """The reopen-logs hooks ran (SIGUSR1)."""

    kind: ClassVar[str] = "reopen_logs"


@dataclass(frozen=True, slots=True, kw_only=True)
class LeakFound(Fact):
    """Something the service started is still alive after the stop."""

    kind: ClassVar[str] = "leak"
    says: ClassVar[Says] = Says(name="{leak.kind} {leak.name}", detail="{leak.stack}", warning=True)
    leak: Leak


@dataclass(frozen=True, slots=True)
class Event:
    """One fact on the timeline, with where and when it happened.

    Attributes:
        seq: position on the timeline, from 1.
        at: ``time.monotonic()`` when it happened (system-wide on Linux, so comparable with
            another process's monotonic clock).
        state: the lifecycle's state when it was published.
        fact: what happened, with its structured data (see :data:`KINDS`).
    """

    seq: int
    at: float
    state: State
    fact: Fact

    @property
    def kind(self) -> str:
        return self.fact.kind

    @property
    def name(self) -> str | None:
        return self.fact.name

    @property
    def outcome(self) -> str | None:
        return self.fact.outcome

    @property
    def duration(self) -> float | None:
        return self.fact.duration

    @property
    def detail(self) -> str | None:
        return self.fact.detail
