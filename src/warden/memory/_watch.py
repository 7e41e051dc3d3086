"""``watch_memory(lc)``: a sentinel with the default actions, as a lifecycle component."""

from __future__ import annotations

import functools
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from warden._exceptions import ConfigurationError
from warden._exitcodes import EXIT_FAILURE
from warden.lifecycle import Clock, Fact

from ._actions import collect_and_trim, graceful_stop, shed_load, tracemalloc_top
from ._cgroup import MemoryCgroup
from ._levels import Level, Thresholds
from ._sentinel import Action, Callback, MemorySentinel, MemoryStatus

#: Lines of allocation sites written at ``warn``: each is a log line, on the way to an OOM kill.
_MAX_TRACEMALLOC_LINES = 1000


class _Lifecycle(Protocol):
    @property
    def clock(self) -> Clock: ...

    def add(self, name: str, *, start: Any = ..., stop: Any = ...) -> None: ...

    def publish(self, fact: Fact) -> object: ...

    def request_stop(self, reason: str = ..., *, exit_code: int | None = ...) -> None: ...

    def ready_when(self, check: Callable[[], bool], *, what: str = ...) -> None: ...


def watch_memory(
    lc: _Lifecycle,
    *,
    warn: float = 0.80,
    high: float = 0.90,
    critical: float = 0.95,
    hysteresis: float = 0.05,
    flush_budget: float = 1.0,
    on_ok: Callback | None = None,
    on_warn: Callback | None = None,
    on_high: Callback | None = None,
    on_critical: Callback | None = None,
    evict_idle: Callable[[MemoryStatus], object] | None = None,
    warn_actions: Sequence[Action] | None = None,
    high_actions: Sequence[Action] | None = None,
    critical_actions: Sequence[Action] | None = None,
    trace: bool = False,
    tracemalloc_lines: int = 10,
    cgroup: MemoryCgroup | str | None = "self",
    name: str = "memory",
    **sentinel: Any,
) -> MemorySentinel:
    """Watch this process's memory for the lifecycle ``lc`` and act before the OOM killer.

    The sentinel is registered as the component ``name``: it starts with the service (on
    its event loop), polls on its clock, and stops with it. Default actions, each
    replaceable by the matching ``*_actions`` argument (``[]`` for none), after the ``on_*``
    callback:

    * ``warn`` (80 %): ``gc.collect()`` and ``malloc_trim(0)``; with tracemalloc tracing
      (``trace=True`` starts it), the top allocation sites by line, to the log.
    * ``high`` (90 %): shed load: ``sentinel.accepting`` and the lifecycle's readiness
      (``lc.ready``, ``/readyz``) turn false until memory falls below ``high`` (wrap the app in
      :class:`ShedLoadASGI`/:class:`ShedLoadWSGI` to answer 503 with ``Retry-After``), and
      ``evict_idle`` is called to close idle connections.
    * ``critical`` (95 %, or a projected time to the limit below ``flush_budget`` seconds
      once above ``warn``): ``lc.request_stop()``, the graceful stop that flushes; ``run()``
      then returns 1, so a service manager restarts the service (``Restart=on-failure``).

    Example::

        lc = warden.Lifecycle()
        sentinel = warden.watch_memory(lc, flush_budget=2.0, on_high=pool.shrink)
        lc.run(main)
        sentinel.level, sentinel.working_set, sentinel.limit, sentinel.time_to_limit

    Args:
        lc: the lifecycle (a :class:`warden.Lifecycle`).
        warn, high, critical, hysteresis, flush_budget: see :class:`Thresholds`.
        sentinel: further keyword arguments for :class:`MemorySentinel` (``psi``,
            ``poll_min``, ``idle_interval``, ...).

    Returns:
        The sentinel, for inspection: ``level``, ``working_set``, ``limit``,
        ``time_to_limit``, ``accepting``, ``timeline()``.
    """
    thresholds = Thresholds(
        warn=warn, high=high, critical=critical, hysteresis=hysteresis, flush_budget=flush_budget
    )
    if (
        isinstance(tracemalloc_lines, bool)
        or not isinstance(tracemalloc_lines, int)
        or not 0 <= tracemalloc_lines <= _MAX_TRACEMALLOC_LINES
    ):
        raise ConfigurationError(
            f"watch_memory(tracemalloc_lines={tracemalloc_lines!r}): give a number of lines "
            f"from 0 (none) to {_MAX_TRACEMALLOC_LINES}"
        )
    if trace and not tracemalloc.is_tracing():
        tracemalloc.start()
    defaults_warn = [Action("gc", collect_and_trim)]
    if tracemalloc_lines and (trace or tracemalloc.is_tracing()):
        defaults_warn.append(Action("tracemalloc", tracemalloc_top(tracemalloc_lines)))
    defaults_high = [Action("shed", shed_load)]
    if evict_idle is not None:
        defaults_high.append(Action("evict-idle", evict_idle))
    actions = {
        Level.WARN: list(defaults_warn if warn_actions is None else warn_actions),
        Level.HIGH: list(defaults_high if high_actions is None else high_actions),
        Level.CRITICAL: list(
            [
                Action(
                    "stop",
                    graceful_stop(functools.partial(lc.request_stop, exit_code=EXIT_FAILURE)),
                )
            ]
            if critical_actions is None
            else critical_actions
        ),
    }
    watcher = MemorySentinel(
        cgroup,
        thresholds=thresholds,
        actions=actions,
        on_ok=on_ok,
        on_warn=on_warn,
        on_high=on_high,
        on_critical=on_critical,
        publish=lc.publish,
        root=sentinel.pop("root", Path("/")),
        clock=sentinel.pop("clock", lc.clock),
        **sentinel,
    )
    lc.add(name, start=watcher.start, stop=watcher.stop)
    if any(action.name == "shed" for action in actions[Level.HIGH]):
        lc.ready_when(lambda: watcher.accepting, what="memory high")  # readiness false from high on
    return watcher
