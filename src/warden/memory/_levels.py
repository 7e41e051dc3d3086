"""Memory levels (ok, warn, high, critical) with hysteresis, and the time-to-limit projection.

Measured on these machines (SPEC §6): an EWMA of *usage* lags a ramp and predicts nothing;
``time-to-limit = headroom ÷ smoothed growth rate`` warned earlier than a static threshold.
So the rate is smoothed, not the level: each new sample gives the slope since the previous
one, and the slopes are averaged with a time constant (not a sample count), so irregular
event-driven sampling weighs them by the time they cover.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from warden._durations import parse_duration
from warden._exceptions import ConfigurationError

from ._readers import Sample


class Level(enum.Enum):
    """How close the working set is to the effective limit; ordered ``ok < warn < high <
    critical``."""

    OK = "ok"
    WARN = "warn"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _ORDER.index(self)

    def below(self) -> Level:
        """The next level down (``ok`` stays ``ok``)."""
        return _ORDER[max(0, self.rank - 1)]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.rank >= other.rank


_ORDER = (Level.OK, Level.WARN, Level.HIGH, Level.CRITICAL)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Where each level begins, as fractions of the effective limit.

    Attributes:
        warn: default 0.80.
        high: default 0.90.
        critical: default 0.95.
        hysteresis: a level is left downward only once the working set is this fraction of
            the limit below where it begins (default 0.05), so a level does not flap.
        flush_budget: seconds the service needs to stop cleanly; once above ``warn``, a
            projected time-to-limit below it is ``critical`` whatever the ratio (default 1 s),
            and stays so while the projection is below twice the budget (its hysteresis: a
            ramp whose smoothed rate wobbles around the budget does not flap).
    """

    warn: float = 0.80
    high: float = 0.90
    critical: float = 0.95
    hysteresis: float = 0.05
    flush_budget: float = 1.0

    def __post_init__(self) -> None:
        for name in ("warn", "high", "critical", "hysteresis", "flush_budget"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                example = (
                    "seconds, such as 1.0"
                    if name == "flush_budget"
                    else "a fraction of the limit, such as 0.9"
                )
                raise ConfigurationError(f"memory {name}={value!r} is not a number; give {example}")
        if not 0 < self.warn < self.high < self.critical < 1:
            raise ConfigurationError(
                f"memory levels warn={self.warn:g} high={self.high:g} "
                f"critical={self.critical:g} must rise strictly between 0 and 1; "
                "give fractions of the limit such as 0.8, 0.9, 0.95"
            )
        if not 0 <= self.hysteresis < self.warn:
            raise ConfigurationError(
                f"memory hysteresis={self.hysteresis:g} must be at least 0 and below "
                f"warn={self.warn:g}; use a small fraction such as 0.05"
            )
        parse_duration(self.flush_budget, what="memory flush_budget")

    def begins(self, level: Level) -> float:
        """The fraction of the limit where ``level`` begins (0 for ``ok``)."""
        return {
            Level.OK: 0.0,
            Level.WARN: self.warn,
            Level.HIGH: self.high,
            Level.CRITICAL: self.critical,
        }[level]


class GrowthRate:
    """The working set's growth in bytes per second, smoothed over ``tau`` seconds."""

    def __init__(self, tau: float = 0.25) -> None:
        self.tau = tau
        self.rate = 0.0
        self._last: Sample | None = None

    def update(self, sample: Sample) -> float:
        last, self._last = self._last, sample
        if last is None:
            return self.rate
        elapsed = sample.at - last.at
        if elapsed <= 0:
            return self.rate
        slope = (sample.working_set - last.working_set) / elapsed
        weight = 1.0 - math.exp(-elapsed / self.tau)
        self.rate += weight * (slope - self.rate)
        return self.rate


def time_to_limit(sample: Sample, rate: float) -> float | None:
    """Seconds until the working set reaches the limit at ``rate``; ``None`` if not growing."""
    if rate <= 0:
        return None
    return sample.headroom / rate


class LevelTracker:
    """Turns samples into a level, with hysteresis and the time-to-limit rule."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        self.level = Level.OK

    def by_ratio(self, ratio: float) -> Level:
        """The level a ratio is in, ignoring where it came from."""
        found = Level.OK
        for level in (Level.WARN, Level.HIGH, Level.CRITICAL):
            if ratio >= self.thresholds.begins(level):
                found = level
        return found

    def update(self, sample: Sample, ttl: float | None) -> Level:
        """The new level for ``sample`` and its projected time-to-limit ``ttl``."""
        ratio = sample.ratio
        target = self.by_ratio(ratio)
        budget = self.thresholds.flush_budget
        if self.level is Level.CRITICAL:
            budget *= 2  # the projection's hysteresis: left only well clear of the budget
        if ttl is not None and ttl < budget and target >= Level.WARN:
            target = Level.CRITICAL
        if target < self.level:
            # Down only as far as the hysteresis allows: each level is held until the ratio is
            # ``hysteresis`` below where that level begins.
            held = self.level
            while (
                held > target and ratio < self.thresholds.begins(held) - self.thresholds.hysteresis
            ):
                held = held.below()
            target = held
        self.level = target
        return target
