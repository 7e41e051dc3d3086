"""Levels with hysteresis and the time-to-limit rule, on samples with chosen times."""

from __future__ import annotations

import pytest

from warden import ConfigurationError
from warden.memory import Level, Sample, Thresholds
from warden.memory._levels import GrowthRate, LevelTracker, time_to_limit

MiB = 2**20
LIMIT = 100 * MiB


def _at(t: float, mib: float) -> Sample:
    ws = int(mib * MiB)
    return Sample(t, ws, 0, ws, LIMIT)


def test_levels_by_ratio_and_hysteresis() -> None:
    tracker = LevelTracker(Thresholds(flush_budget=0))
    steps = [
        (50, Level.OK),
        (81, Level.WARN),
        (91, Level.HIGH),
        (96, Level.CRITICAL),
        (93, Level.CRITICAL),
        (89, Level.HIGH),
        (86, Level.HIGH),
        (84, Level.WARN),
        (76, Level.WARN),
        (74, Level.OK),
    ]
    for mib, expected in steps:
        assert tracker.update(_at(0, mib), None) is expected, mib


def test_a_fast_ramp_is_critical_before_95_percent() -> None:
    tracker = LevelTracker(Thresholds(flush_budget=1.0))
    assert tracker.update(_at(0, 82), ttl=0.9) is Level.CRITICAL
    # Below warn the projection alone does not act: a burst is not a ramp.
    assert LevelTracker(Thresholds(flush_budget=1.0)).update(_at(0, 50), ttl=0.1) is Level.OK


def test_critical_by_projection_holds_until_twice_the_budget() -> None:
    # A ramp whose smoothed rate wobbles around the budget stays critical: one stop signal,
    # one warn signal, not one per wobble (seen under `warden run --memory-warn-signal`).
    tracker = LevelTracker(Thresholds(flush_budget=1.0))
    assert tracker.update(_at(0, 86), ttl=0.99) is Level.CRITICAL
    assert tracker.update(_at(0, 86), ttl=1.02) is Level.CRITICAL
    assert tracker.update(_at(0, 86), ttl=1.9) is Level.CRITICAL
    assert tracker.update(_at(0, 86), ttl=2.1) is Level.HIGH
    assert tracker.update(_at(0, 86), ttl=None) is Level.HIGH


def test_growth_rate_follows_a_ramp_and_projects_the_limit() -> None:
    rate = GrowthRate(tau=0.25)
    for i in range(40):
        value = rate.update(_at(i * 0.05, 10 + i))  # 20 MiB/s
    assert value == pytest.approx(20 * MiB, rel=0.01)
    ttl = time_to_limit(_at(2.0, 60), value)
    assert ttl == pytest.approx(2.0, rel=0.01)
    assert time_to_limit(_at(0, 60), 0.0) is None


def test_levels_are_ordered() -> None:
    assert Level.OK < Level.WARN < Level.HIGH < Level.CRITICAL
    assert Level.CRITICAL.below() is Level.HIGH and Level.OK.below() is Level.OK


@pytest.mark.parametrize(
    "kwargs",
    [{"warn": 0.9, "high": 0.8}, {"critical": 1.2}, {"hysteresis": 0.9}, {"flush_budget": -1}],
)
def test_bad_thresholds_are_a_clear_error(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError, match="memory"):
        Thresholds(**kwargs)
