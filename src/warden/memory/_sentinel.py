"""The sentinel: samples a cgroup when the kernel says memory moved, and acts per level.

Between kernel events it polls while memory grows, and the poll interval follows the
headroom: a quarter of the projected time to the next level at the measured growth rate (never
below ``poll_min``), so a ramp is sampled faster and faster as it nears each level (earlyoom's
idea, driven by the growth rate instead of fixed steps). While nothing grows and the kernel's
thresholds stand guard (cgroup v1), it does not poll at all: besides the thresholds at the
levels, a *band* of two usage thresholds (:func:`band`, about 1% of the limit, either side
of the usage last seen) wakes it when the usage moves, so an idle service costs no wake-up.
Where no threshold guards the levels (v2, the host) it polls every ``unarmed_interval``.

Rising, the sentinel passes through every level in order (a jump from ``ok`` to ``critical``
runs the ``warn`` and ``high`` actions first); falling, hysteresis holds each level until the
working set is ``hysteresis`` below where it begins.

Everything runs on the event loop given to :meth:`MemorySentinel.start` (callbacks too).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import inspect
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from warden._durations import parse_duration
from warden.lifecycle import Clock, Fact, Outcome
from warden.lifecycle import Timer as _Timer

from ._cgroup import MemoryCgroup, find_memory_cgroup
from ._errors import MemoryUnavailableError
from ._events import MemoryActionTaken, MemoryLevelChanged, MemoryWatchDegraded, MemoryWatching
from ._levels import GrowthRate, Level, LevelTracker, Thresholds, time_to_limit
from ._readers import MemoryReader, Sample, reader_for
from ._sources import MemoryEventsFile, PriorityEvents, V1Events, open_psi_trigger, psi_trigger

_log = logging.getLogger("warden.memory")


@dataclass(frozen=True, slots=True)
class MemoryStatus:
    """The sentinel's latest view, swapped by one reference (safe to read from any thread).

    Attributes:
        level: the current level.
        working_set: bytes.
        limit: the effective limit in bytes.
        time_to_limit: projected seconds to the limit, ``None`` when not growing.
        rate: smoothed growth of the working set, bytes per second.
        at: when it was taken, on the sentinel's clock (``time.monotonic()``).
    """

    level: Level
    working_set: int
    limit: int
    time_to_limit: float | None
    rate: float
    at: float


Callback = Callable[[MemoryStatus], object]


@dataclass(frozen=True, slots=True)
class Action:
    """Something done when a level is entered: a name for the timeline, and the call."""

    name: str
    run: Callback


class MemorySentinel:
    """Watches one memory cgroup and runs actions as its working set nears the limit.

    Usable without a lifecycle (the supervisor watches a child's cgroup with it)::

        sentinel = MemorySentinel(child.cgroup, on_high=lambda s: os.kill(pid, SIGUSR2))
        await sentinel.start()
        ...
        sentinel.stop()

    Args:
        cgroup: the cgroup to watch; ``"self"`` (default) finds this process's, ``None``
            watches the host's memory.
        thresholds: where the levels begin, hysteresis and flush budget.
        actions: what runs when each level is entered, in order (see :func:`watch_memory`
            for the defaults a lifecycle gets); callbacks ``on_warn`` ... come first.
        on_ok, on_warn, on_high, on_critical: called with a :class:`MemoryStatus` when the
            level is entered (``on_ok`` when memory falls back to ``ok``); a coroutine
            returned is run as a task.
        on_sample: called with the :class:`MemoryStatus` after every sample, level changed
            or not (the supervisor's ``--recycle-at SIZE`` and OOM attribution use it).
        publish: where facts go (``Lifecycle.publish``); ``None``: the ``warden.memory`` log.
        psi: arm a PSI trigger (honouring ``$MEMORY_PRESSURE_WATCH``/``WRITE``).
        poll_min: the shortest poll interval, seconds.
        idle_interval: the poll interval while memory does not grow; shorter
            (``unarmed_interval``) where no kernel threshold guards the levels (v2, host).
        history: seconds of samples kept for :meth:`timeline`.
        root: where ``/proc`` and ``/sys`` are (tests).
        clock: what the polls wait on and the samples are timed by (``watch_memory``
            gives the lifecycle's); a test gives a :class:`~warden.lifecycle.ManualClock`.
    """

    def __init__(
        self,
        cgroup: MemoryCgroup | str | None = "self",
        *,
        thresholds: Thresholds | None = None,
        actions: Mapping[Level, Sequence[Action]] | None = None,
        on_ok: Callback | None = None,
        on_warn: Callback | None = None,
        on_high: Callback | None = None,
        on_critical: Callback | None = None,
        on_sample: Callback | None = None,
        publish: Callable[[Fact], object] | None = None,
        psi: bool = True,
        poll_min: float = 0.005,
        idle_interval: float = 10.0,
        unarmed_interval: float = 1.0,
        history: float = 10.0,
        root: Path = Path("/"),
        clock: Clock | None = None,
    ) -> None:
        self.thresholds = thresholds or Thresholds()
        self._target = cgroup
        self._actions = {level: list(found) for level, found in (actions or {}).items()}
        self._callbacks = {
            Level.OK: on_ok,
            Level.WARN: on_warn,
            Level.HIGH: on_high,
            Level.CRITICAL: on_critical,
        }
        self._on_sample = on_sample
        self._publish = publish
        self._psi = psi
        # A timer of 0 s, NaN or a negative one spins the loop; inf never fires: refused here,
        # with the keyword named, not found as a busy event loop later.
        self.poll_min = parse_duration(poll_min, what="poll_min", allow_zero=False)
        self.idle_interval = parse_duration(idle_interval, what="idle_interval", allow_zero=False)
        self.unarmed_interval = parse_duration(
            unarmed_interval, what="unarmed_interval", allow_zero=False
        )
        history = parse_duration(history, what="history")
        self._root = root
        self._clock = clock or Clock()
        self._tracker = LevelTracker(self.thresholds)
        self._rate = GrowthRate()
        self._history: collections.deque[Sample] = collections.deque()
        self._history_seconds = history
        self._reader: MemoryReader | None = None
        self._v1: V1Events | None = None
        self._pri: PriorityEvents | None = None
        self._events_file: MemoryEventsFile | None = None
        self._timer: _Timer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self._armed_inactive: int | None = None
        self._armed_limit: int | None = None
        self._band_at: int | None = None  # the usage the idle band is armed around
        #: Why the sentinel woke, per reason (for the benchmark and the curious).
        self.wakeups: collections.Counter[str] = collections.Counter()
        self.status = MemoryStatus(Level.OK, 0, 0, None, 0.0, 0.0)

    # -- inspection ---------------------------------------------------------------------

    @property
    def level(self) -> Level:
        return self.status.level

    @property
    def working_set(self) -> int:
        return self.status.working_set

    @property
    def limit(self) -> int:
        return self.status.limit

    @property
    def time_to_limit(self) -> float | None:
        return self.status.time_to_limit

    @property
    def accepting(self) -> bool:
        """False from ``high`` up: new work should be refused (see the shed-load helpers)."""
        return self.status.level < Level.HIGH

    @property
    def cgroup(self) -> MemoryCgroup | None:
        return self._reader.cgroup if self._reader is not None else None

    @property
    def sources(self) -> list[str]:
        """The kernel event sources armed."""
        return [*(self._v1.names if self._v1 else []), *(self._pri.names if self._pri else [])]

    def timeline(self) -> list[Sample]:
        """The samples of the last ``history`` seconds, oldest first."""
        return list(self._history)

    # -- start and stop -----------------------------------------------------------------

    async def start(self) -> None:
        """Discover, arm the kernel's event sources, take the first sample (on this loop)."""
        self.attach(asyncio.get_running_loop())

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """:meth:`start` for a caller that is on ``loop``'s thread but not in a coroutine."""
        self._loop = loop
        self._reader = self._open_reader()
        self._arm_sources()
        self._emit(MemoryWatching(reader=self._reader.description, sources=tuple(self.sources)))
        self._wake("start")

    def stop(self) -> None:
        """Disarm everything; the sentinel can be inspected afterwards."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._v1 is not None:
            self._v1.close()
            self._v1 = None
        if self._pri is not None:
            self._pri.close()
            self._pri = None
        if self._events_file is not None:
            with contextlib.suppress(OSError):
                os.close(self._events_file.fd)
            self._events_file = None
        if self._reader is not None:
            self._reader.close()
        self._loop = None

    def _open_reader(self) -> MemoryReader:
        cgroup: MemoryCgroup | None
        if isinstance(self._target, str):
            try:
                cgroup = find_memory_cgroup(self._target, root=self._root)
            except MemoryUnavailableError as exc:
                self._emit(MemoryWatchDegraded(reason=str(exc)))
                cgroup = None
        else:
            cgroup = self._target
        return reader_for(cgroup, meminfo=self._root / "proc" / "meminfo")

    def _arm_sources(self) -> None:
        assert self._loop is not None and self._reader is not None
        cgroup = self._reader.cgroup
        if cgroup is not None and cgroup.version == 1:
            try:
                self._v1 = V1Events(cgroup, self._loop, self._wake)
            except OSError as exc:
                self._emit(
                    MemoryWatchDegraded(
                        reason=f"cannot register v1 memory events in {cgroup.path} "
                        f"({exc.strerror}); polling instead"
                    )
                )
        self._pri = PriorityEvents(self._loop, self._wake)
        if cgroup is not None and cgroup.version == 2:
            try:
                events = MemoryEventsFile(cgroup.file("memory.events"))
            except OSError as exc:
                self._emit(MemoryWatchDegraded(reason=f"cannot open memory.events: {exc}"))
            else:
                try:
                    self._pri.add(events.fd, "v2 memory.events", events.acknowledge)
                except OSError as exc:
                    # epoll refuses what cannot signal POLLPRI (EPERM: not a kernfs file).
                    os.close(events.fd)
                    self._emit(
                        MemoryWatchDegraded(
                            reason=f"cannot poll {events.path} ({exc.strerror}); polling instead"
                        )
                    )
                else:
                    self._events_file = events
        if self._psi:
            self._arm_psi(cgroup)

    def _arm_psi(self, cgroup: MemoryCgroup | None) -> None:
        assert self._pri is not None
        # A v2 cgroup has its own memory.pressure; v1 has only the system-wide file.
        default = (
            cgroup.file("memory.pressure")
            if cgroup is not None and cgroup.version == 2
            else self._root / "proc" / "pressure" / "memory"
        )
        try:
            found = psi_trigger(default_path=default)
        except ValueError as exc:
            self._emit(MemoryWatchDegraded(reason=str(exc)))
            return
        if found is None:
            return
        path, trigger = found
        try:
            fd = open_psi_trigger(path, trigger)
        except OSError as exc:
            # EINVAL is the window (a multiple of 2 s without CAP_SYS_RESOURCE); a container's
            # read-only cgroupfs (EROFS) or another user's cgroup (EACCES) refuse the open.
            why = (
                "windows must be multiples of 2 s without CAP_SYS_RESOURCE"
                if exc.errno == errno.EINVAL
                else "not writable by this process (a read-only cgroupfs, another user's "
                "cgroup); the other sources and polling still wake it"
            )
            self._emit(
                MemoryWatchDegraded(
                    reason=f"PSI trigger {trigger.rstrip(bytes(1)).decode(errors='replace')!r}"
                    f" on {path} refused ({exc.strerror}); {why}"
                )
            )
            return
        self._pri.add(fd, f"PSI {path}", lambda _fd: None)

    # -- sampling -----------------------------------------------------------------------

    def check(self) -> MemoryStatus:
        """Sample now (on the loop's thread), act on the level, and return the status."""
        self._wake("check")
        return self.status

    def _wake(self, reason: str) -> None:
        if self._loop is None or self._reader is None:
            return
        self.wakeups[reason.partition(":")[0]] += 1
        try:
            sample = self._reader.sample(self._clock.now())
        except (OSError, ValueError) as exc:
            self._emit(MemoryWatchDegraded(reason=f"cannot read memory ({exc}); stopped"))
            self.stop()
            return
        rate = self._rate.update(sample)
        ttl = time_to_limit(sample, rate)
        self._remember(sample)
        previous = self.status.level
        level = self._tracker.update(sample, ttl)
        self.status = MemoryStatus(level, sample.working_set, sample.limit, ttl, rate, sample.at)
        if level > previous:
            for step in (Level.WARN, Level.HIGH, Level.CRITICAL):
                if previous < step <= level:
                    self._enter(step, self._step_from(step, previous), sample, ttl, rate)
        elif level < previous:
            self._enter(level, previous, sample, ttl, rate)
        self._rearm(sample)
        self._schedule(sample, rate)
        if self._on_sample is not None:
            self._run_sample_hook(self.status)

    def _poll(self) -> None:
        self._wake("poll")

    def _run_sample_hook(self, status: MemoryStatus) -> None:
        assert self._on_sample is not None
        try:
            self._on_sample(status)
        except Exception as exc:
            self._emit(
                MemoryActionTaken(
                    level=status.level,
                    action="on_sample",
                    result=Outcome.FAILED,
                    took=0.0,
                    error=f"{type(exc).__name__}: {exc}",
                )
            )

    @staticmethod
    def _step_from(step: Level, previous: Level) -> Level:
        return step.below() if step.below() > previous else previous

    def _remember(self, sample: Sample) -> None:
        self._history.append(sample)
        while self._history and self._history[0].at < sample.at - self._history_seconds:
            self._history.popleft()

    def _enter(
        self, level: Level, previous: Level, sample: Sample, ttl: float | None, rate: float
    ) -> None:
        self._emit(
            MemoryLevelChanged(
                level=level,
                previous=previous,
                working_set=sample.working_set,
                limit=sample.limit,
                time_to_limit=ttl,
                rate=rate,
                cgroup=str(self.cgroup.path) if self.cgroup else "host",
            )
        )
        status = MemoryStatus(level, sample.working_set, sample.limit, ttl, rate, sample.at)
        callback = self._callbacks[level]
        todo = ([Action("callback", callback)] if callback else []) + self._actions.get(level, [])
        for action in todo:
            self._run(level, action, status)

    def _run(self, level: Level, action: Action, status: MemoryStatus) -> None:
        started = self._clock.now()
        try:
            result = action.run(status)
        except Exception as exc:
            self._emit(
                MemoryActionTaken(
                    level=level,
                    action=action.name,
                    result=Outcome.FAILED,
                    took=self._clock.now() - started,
                    error=f"{type(exc).__name__}: {exc}",
                )
            )
            return
        if inspect.isawaitable(result) and self._loop is not None:
            task: asyncio.Task[object] = self._loop.create_task(_awaited(result))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        note = result if isinstance(result, str) else None
        self._emit(
            MemoryActionTaken(
                level=level,
                action=action.name,
                result=Outcome.OK,
                took=self._clock.now() - started,
                note=note,
            )
        )

    def _rearm(self, sample: Sample) -> None:
        """Keep the v1 usage thresholds at ``level x limit + inactive_file``."""
        if self._v1 is None:
            return
        drift = 2 * 2**20  # re-register only when inactive_file moved by more than 2 MiB
        if (
            self._armed_inactive is not None
            and abs(sample.inactive_file - self._armed_inactive) < drift
            and sample.limit == self._armed_limit
        ):
            return
        self._armed_inactive = sample.inactive_file
        self._armed_limit = sample.limit
        fractions = [self._attention(), self.thresholds.warn, self.thresholds.high]
        fractions.append(self.thresholds.critical)
        usages = [int(f * sample.limit) + sample.inactive_file for f in fractions]
        try:
            self._v1.arm(u for u in usages if u < sample.limit)
        except OSError as exc:
            self._emit(MemoryWatchDegraded(reason=f"cannot re-arm v1 thresholds ({exc})"))

    def _attention(self) -> float:
        """Below ``warn``, where fast sampling begins so the growth rate is known in time."""
        return self.thresholds.warn * 0.75

    def _guarded(self, sample: Sample) -> bool:
        """Whether kernel thresholds will wake the sentinel before the next level."""
        if self._v1 is None:
            return False
        return any(value > sample.usage for value in self._v1.armed)

    def _quiet(self, sample: Sample, rate: float) -> bool:
        """Nothing to poll for: below the levels and not growing by a band per idle interval.
        Then the band's two usage thresholds are armed around this usage (they wake the
        sentinel when it moves either way), once per quiet spell: a registration waits for
        an RCU grace period in the kernel, too slow to repeat at every sample of a ramp."""
        width = band(sample.limit)
        if (
            self._v1 is None
            or self._tracker.level is not Level.OK
            or sample.ratio >= self._attention()
            or rate * self.idle_interval >= width
        ):
            return False
        if self._band_at is None or abs(sample.usage - self._band_at) >= width // 2:
            try:
                self._v1.arm_band(u for u in (sample.usage - width, sample.usage + width) if u > 0)
            except OSError as exc:
                self._band_at = None
                self._emit(MemoryWatchDegraded(reason=f"cannot arm the idle band ({exc})"))
                return False
            self._band_at = sample.usage
        return True

    def _schedule(self, sample: Sample, rate: float) -> None:
        assert self._loop is not None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._quiet(sample, rate):
            return  # no timer: the kernel's thresholds are the only wake-ups
        interval = self._interval(sample, rate)
        self._timer = self._clock.call_later(interval, self._poll)

    def _interval(self, sample: Sample, rate: float) -> float:
        idle = self.idle_interval if self._guarded(sample) else self.unarmed_interval
        ratio = sample.ratio
        if ratio >= self._attention():
            idle = min(idle, 0.1)  # near the levels: measure the growth rate
        if rate <= 0:
            return idle
        nearest = idle
        for level in (Level.WARN, Level.HIGH, Level.CRITICAL):
            begins = self.thresholds.begins(level) * sample.limit
            if begins > sample.working_set:
                nearest = min(nearest, (begins - sample.working_set) / rate)
                break
        ttl = sample.headroom / rate
        if self._tracker.level >= Level.WARN or ratio >= self._attention():
            nearest = min(nearest, max(0.0, ttl - self.thresholds.flush_budget))
        return max(self.poll_min, min(idle, nearest / 4))

    # -- facts --------------------------------------------------------------------------

    def _emit(self, fact: Fact) -> None:
        if self._publish is not None:
            self._publish(fact)
            return
        _log.log(fact.log_level, "%s %s: %s", fact.kind, fact.name or "", fact.detail or "")


def band(limit: int) -> int:
    """Half the width of the usage band that wakes an idle sentinel: 1% of the limit, at
    least 2 MiB (a program's own noise: a few pages come and go at every request)."""
    return max(2 * 2**20, limit // 100)


async def _awaited(result: object) -> object:
    return await result  # type: ignore[misc]
