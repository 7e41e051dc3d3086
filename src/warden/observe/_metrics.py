"""The timeline counted into Prometheus series (prefix ``warden_``), kept in plain Python.

:class:`Metrics` is a timeline observer. It holds every series as plain numbers (a dict per
family) and turns them into Prometheus text only when asked (:meth:`Metrics.exposition`),
written by :mod:`._exposition` with the standard library: prometheus_client is not imported
(its import costs 7-8 MiB resident in ``warden run``, see docs/benchmarks.md).
The counting starts with the lifecycle, so the first scrape still sees everything.

Which fact moves which series is one table, :data:`RULES`, keyed by the fact's declared
``kind`` and reading its typed fields by name. The table names kinds of the layers above
(the supervisor's ``child.exited``, the config store's, the memory sentinel's) without
importing them: observe sits below them, and a test checks every kind and field named here
against the declarations in :data:`warden.lifecycle.KINDS`. Counters another part keeps
(the notify server's drops, the control socket's refusals, the reaper's orphans) are read at
scrape time through :meth:`Metrics.read`.
"""

from __future__ import annotations

import enum
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from .._exceptions import ConfigurationError
from ..lifecycle import Event, Fact, State

Labels = tuple[str, ...]
Reading = float | Mapping[str, float] | Mapping[tuple[str, ...], float]

#: 10 ms to 120 s: prometheus_client's defaults stop at 10 s, and a drain is longer.
SHUTDOWN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120)


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family: its name without the prefix, type, help and label names."""

    name: str
    type: Literal["counter", "gauge", "histogram"]
    help: str
    labels: Labels = ()
    buckets: tuple[float, ...] = SHUTDOWN_BUCKETS
    initial: tuple[Labels, ...] = ()  # label values shown at 0 before anything happens


_STATES = tuple((s.value,) for s in State)

FAMILIES: tuple[Family, ...] = (
    Family(
        "lifecycle_state",
        "gauge",
        "1 for the lifecycle's current state",
        ("state",),
        initial=_STATES,
    ),
    Family("events", "counter", "Facts published on the timeline, by kind", ("kind",)),
    Family(
        "shutdown_duration_seconds",
        "histogram",
        "Shutdown phases: drain (readiness false before components stop), components "
        "(every stop), total (stop requested to stopped)",
        ("stage",),
    ),
    Family("component_stop_duration_seconds", "histogram", "Each component's stop", ("component",)),
    Family(
        "forced_exits",
        "counter",
        "Stops warden had to force: a component past its timeout, SIGKILL at the deadline "
        "or on a second signal, an old release past its drain, a missed watchdog",
        ("cause",),
    ),
    Family(
        "signal_to_drain_seconds",
        "gauge",
        "From the stop signal to the drain beginning, as the event loop saw them",
    ),
    Family(
        "reloads",
        "counter",
        "Reload rounds (SIGHUP, Lifecycle.reload()), by result",
        ("result",),
        initial=(("ok",), ("failed",)),
    ),
    Family(
        "config_reloads",
        "counter",
        "Configuration file loads, by result",
        ("result",),
        initial=(("ok",), ("failed",)),
    ),
    Family("config_revision", "gauge", "Revision of the configuration in force"),
    Family(
        "upgrades",
        "counter",
        "Upgrades, by result",
        ("result",),
        initial=(("ok",), ("failed",), ("rolled back",)),
    ),
    Family("upgrade_duration_seconds", "histogram", "Upgrades, from start to result", ("result",)),
    Family("child_starts", "counter", "Runs of the program spawned"),
    Family("child_exits", "counter", "Runs of the program ended, by reason", ("reason",)),
    Family("child_restarts", "counter", "Restarts scheduled by the restart policy"),
    Family("notify_drops", "counter", "sd_notify datagrams dropped, by reason", ("reason",)),
    Family(
        "spawn_failures",
        "counter",
        "Starts that could not run the program for want of a resource, by errno (retried)",
        ("error",),
    ),
    Family("control_refusals", "counter", "Control socket peers refused"),
    Family("orphans_reaped", "counter", "Adopted orphan processes reaped"),
    Family("memory_working_set_bytes", "gauge", "Working set (usage minus inactive file)"),
    Family("memory_limit_bytes", "gauge", "The memory limit in force"),
    Family("memory_level", "gauge", "1 for the sentinel's current level", ("level",)),
    Family(
        "memory_time_to_limit_seconds",
        "gauge",
        "Projected seconds until the working set reaches the limit (absent: not rising)",
    ),
    Family("oom_kills", "counter", "OOM kills seen (the program's or the cgroup's)"),
)
BY_NAME = {f.name: f for f in FAMILIES}
_READABLE = {
    "notify_drops",
    "spawn_failures",
    "control_refusals",
    "orphans_reaped",
    "memory_working_set_bytes",
    "memory_limit_bytes",
    "memory_time_to_limit_seconds",
}


class Metrics:
    """A timeline observer that keeps the ``warden_`` series; cheap until scraped.

    Example::

        metrics = Metrics()
        lifecycle.timeline.subscribe(metrics)
        metrics.read("orphans_reaped", lambda: tally.orphans_reaped)
        body = metrics.exposition()  # Prometheus text
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # updated on the loop, read by a scrape on another thread
        self.values: dict[str, dict[Labels, float]] = {}
        self.histograms: dict[str, dict[Labels, list[float]]] = {}
        self._readers: dict[str, Callable[[], Reading]] = {}
        self._stop_signal_at: float | None = None
        self._stop_at: float | None = None
        self._drain_at: float | None = None
        self._oom_pids: set[int] = set()  # a kill both the reaper and the sentinel report
        self._exposer: Callable[[], bytes] | None = None
        for family in FAMILIES:
            if family.type == "histogram":
                self.histograms[family.name] = {}
            else:
                plain = family.type == "counter" and not family.labels
                initial = family.initial or (((),) if plain else ())
                self.values[family.name] = dict.fromkeys(initial, 0.0)
        self.values["lifecycle_state"][(State.CREATED.value,)] = 1.0

    # -- what the rules call ------------------------------------------------------------

    def inc(self, name: str, labels: Labels = (), by: float = 1.0) -> None:
        """Add ``by`` to the counter ``name`` with ``labels``."""
        with self._lock:
            series = self.values[name]
            series[labels] = series.get(labels, 0.0) + by

    def set(self, name: str, value: float | None, labels: Labels = ()) -> None:
        """Set the gauge ``name``; ``None`` removes the series (the value is unknown)."""
        with self._lock:
            if value is None:
                self.values[name].pop(labels, None)
            else:
                self.values[name][labels] = float(value)

    def observe(self, name: str, value: float, labels: Labels = ()) -> None:
        """Count ``value`` into the histogram ``name`` (per-bucket counts, sum, count)."""
        family = BY_NAME[name]
        with self._lock:
            slot = self.histograms[name].setdefault(labels, [0.0] * (len(family.buckets) + 2))
            for i, bound in enumerate(family.buckets):
                if value <= bound:
                    slot[i] += 1
                    break
            else:
                slot[len(family.buckets)] += 1  # +Inf only
            slot[-1] += value

    def enum(self, name: str, current: str, choices: tuple[str, ...] = ()) -> None:
        """A state set: 1 for ``current``, 0 for every other value seen or listed."""
        with self._lock:
            series = self.values[name]
            for key in [*series, *((c,) for c in choices)]:
                series[key] = 0.0
            series[(current,)] = 1.0

    def read(self, name: str, fn: Callable[[], Reading]) -> None:
        """Read the counter ``name`` from ``fn()`` at each scrape, on the scraping thread.

        For counters another part keeps: ``notify_drops`` and ``spawn_failures`` (``fn``
        returns a mapping of reason or errno to count), ``control_refusals`` and
        ``orphans_reaped`` (a number); and for the
        memory gauges, which facts update only when the level changes, a sentinel's latest
        sample (``memory_working_set_bytes``, ``memory_limit_bytes``,
        ``memory_time_to_limit_seconds``). ``fn`` must only read (it runs outside the event
        loop); a reading replaces what facts said.
        """
        if name not in _READABLE:
            raise ConfigurationError(
                f"metric {name!r} is not read from a callback; use one of {sorted(_READABLE)}"
            )
        self._readers[name] = fn

    # -- the observer -------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        self.inc("events", (event.kind,))
        rule = RULES.get(event.kind)
        if rule is not None:
            rule(self, event, event.fact)

    # -- the scrape ---------------------------------------------------------------------

    def snapshot(
        self,
    ) -> tuple[dict[str, dict[Labels, float]], dict[str, dict[Labels, list[float]]]]:
        """A consistent copy of every series, with the callback counters read now."""
        read: dict[str, dict[Labels, float]] = {}
        for name, fn in self._readers.items():
            read[name] = _reading(fn())
        with self._lock:
            values = {name: dict(series) for name, series in self.values.items()}
            histograms = {n: {k: list(v) for k, v in s.items()} for n, s in self.histograms.items()}
        values.update(read)
        return values, histograms

    def exposition(self) -> bytes:
        """The Prometheus text format (0.0.4) of every series."""
        if self._exposer is None:
            # Here, not at the top: a service that is never scraped never loads it.
            from ._exposition import renderer

            self._exposer = renderer(self)
        return self._exposer()

    # -- bookkeeping the rules share ------------------------------------------------------

    def _oom_kill(self, pid: object) -> None:
        if isinstance(pid, int):
            if pid in self._oom_pids:
                return
            if len(self._oom_pids) > 1000:
                self._oom_pids.clear()
            self._oom_pids.add(pid)
        self.inc("oom_kills")

    def _state(self, event: Event, state: State, took: float | None) -> None:
        self.enum("lifecycle_state", state.value)
        if state is State.DRAINING:
            self._drain_at = event.at
            if self._stop_signal_at is not None:
                self.set("signal_to_drain_seconds", event.at - self._stop_signal_at)
        elif state is State.STOPPING and self._drain_at is not None:
            self.observe("shutdown_duration_seconds", event.at - self._drain_at, ("drain",))
        elif state is State.STOPPED:
            if took is not None:
                self.observe("shutdown_duration_seconds", took, ("components",))
            if self._stop_at is not None:
                self.observe("shutdown_duration_seconds", event.at - self._stop_at, ("total",))


def _reading(value: Reading) -> dict[Labels, float]:
    if isinstance(value, Mapping):
        for _ in range(3):  # a Counter mutated on the loop while we copy it: copy again
            try:
                items = list(value.items())
                break
            except RuntimeError:
                continue
        else:
            return {}
        return {(k if isinstance(k, tuple) else (str(k),)): float(v) for k, v in items}
    return {(): float(value)}


def _value(obj: object) -> str:
    """An enum by its value, anything else by ``str``: a label value."""
    return str(obj.value) if isinstance(obj, enum.Enum) else str(obj)


# -- the table: fact kind -> what it moves ---------------------------------------------------

Rule = Callable[[Metrics, Event, Fact], None]
RULES: dict[str, Rule] = {}
#: For each kind in :data:`RULES`, the fields its rule reads (checked against the
#: declarations by tests/observe/test_metrics_table.py).
FIELDS: dict[str, tuple[str, ...]] = {}


def rule(kind: str, *fields: str) -> Callable[[Rule], Rule]:
    def enter(fn: Rule) -> Rule:
        RULES[kind] = fn
        FIELDS[kind] = fields
        return fn

    return enter


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _get(fact: Fact, field: str) -> object:
    return getattr(fact, field, None)


@rule("state", "state", "took")
def _state_changed(m: Metrics, event: Event, fact: Fact) -> None:
    state = _get(fact, "state")
    took = _get(fact, "took")
    if isinstance(state, State):
        m._state(event, state, took if isinstance(took, float) else None)


@rule("signal", "signum", "second_stop")
def _signal(m: Metrics, event: Event, fact: Fact) -> None:
    if _get(fact, "signum") in (signal.SIGTERM, signal.SIGINT) and not _get(fact, "second_stop"):
        m._stop_signal_at = event.at


@rule("stop_requested", "reason")
def _stop_requested(m: Metrics, event: Event, fact: Fact) -> None:
    m._stop_at = event.at


@rule("stop", "component", "result", "took")
def _component_stopped(m: Metrics, event: Event, fact: Fact) -> None:
    took = _get(fact, "took")
    if isinstance(took, float):
        m.observe("component_stop_duration_seconds", took, (str(_get(fact, "component")),))
    if _value(_get(fact, "result")) == "timeout":
        m.inc("forced_exits", ("component timeout",))


@rule("reload", "result")
def _reloaded(m: Metrics, event: Event, fact: Fact) -> None:
    m.inc("reloads", (_value(_get(fact, "result")),))


@rule("reload.skipped")
def _reload_skipped(m: Metrics, event: Event, fact: Fact) -> None:
    m.inc("reloads", ("skipped",))


# The supervisor's facts (warden.supervisor._events), named by kind.


@rule("child.started", "pid")
def _child_started(m: Metrics, event: Event, fact: Fact) -> None:
    m.inc("child_starts")


@rule("child.exited", "reason", "pid")
def _child_exited(m: Metrics, event: Event, fact: Fact) -> None:
    kind = _value(getattr(_get(fact, "reason"), "kind", "unknown"))
    m.inc("child_exits", (kind,))
    if kind == "oom-killed":
        m._oom_kill(_get(fact, "pid"))


@rule("restart", "attempt")
def _restart(m: Metrics, event: Event, fact: Fact) -> None:
    m.inc("child_restarts")


@rule("watchdog", "pid")
def _watchdog(m: Metrics, event: Event, fact: Fact) -> None:
    m.inc("forced_exits", ("watchdog",))


@rule("stop_ladder.killed", "cause")
def _killed(m: Metrics, event: Event, fact: Fact) -> None:
    m.inc("forced_exits", (str(_get(fact, "cause")),))


@rule("upgrade.drain_timeout", "old_pid")
def _drain_timeout(m: Metrics, event: Event, fact: Fact) -> None:
    m.inc("forced_exits", ("drain timeout",))


@rule("upgrade.finished", "result", "took")
def _upgrade_finished(m: Metrics, event: Event, fact: Fact) -> None:
    result = _value(_get(fact, "result"))
    m.inc("upgrades", (result,))
    took = _get(fact, "took")
    if isinstance(took, int | float):
        m.observe("upgrade_duration_seconds", float(took), (result,))


# The config store's facts (warden.config._events).


@rule("config.reloaded", "revision")
def _config_reloaded(m: Metrics, event: Event, fact: Fact) -> None:
    if _get(fact, "trigger") != "start":  # the first load is no reload: only its revision
        m.inc("config_reloads", ("ok",))
    m.set("config_revision", _number(_get(fact, "revision")))


@rule("config.reload_failed", "revision")
def _config_failed(m: Metrics, event: Event, fact: Fact) -> None:
    m.inc("config_reloads", ("failed",))


# The memory sentinel's facts (warden.memory._events).

_LEVELS = ("ok", "warn", "high", "critical")


@rule("memory.watching")
def _memory_watching(m: Metrics, event: Event, fact: Fact) -> None:
    # A sentinel starts at ok and publishes a level only when it changes (from ok, at once
    # if it starts above): without this, a service that stays at ok never shows a level.
    m.enum("memory_level", "ok", _LEVELS)


@rule("memory.level", "level", "working_set", "limit", "time_to_limit")
def _memory_level(m: Metrics, event: Event, fact: Fact) -> None:
    m.enum("memory_level", _value(_get(fact, "level")), _LEVELS)
    m.set("memory_working_set_bytes", _number(_get(fact, "working_set")))
    m.set("memory_limit_bytes", _number(_get(fact, "limit")))
    m.set("memory_time_to_limit_seconds", _number(_get(fact, "time_to_limit")))


@rule("memory.oom_kill", "pid", "oom_killed")
def _memory_oom_kill(m: Metrics, event: Event, fact: Fact) -> None:
    if _get(fact, "oom_killed") is True:
        m._oom_kill(_get(fact, "pid"))
