"""Ramps in a real v1 memory cgroup: every level fires, in order, before the OOM kill.

The sentinel runs in the test process and watches the ramp's cgroup (another cgroup than its
own, as the supervisor watches a child's): v1 usage thresholds registered through
``cgroup.event_control`` wake it, and adaptive polling follows the growth. Lead times are
printed (``-s``); their size against the theoretical crossing is the benchmark's business.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Spawn
from warden.lifecycle import ManualClock
from warden.memory import Level, MemorySentinel

from ._watching import watch_ramp
from .conftest import MakeCgroup, MiB


async def _ramp(
    memory_cgroup: MakeCgroup, spawn: Spawn, tmp_path: Path, rate: float, limit: int
) -> None:
    group = memory_cgroup(limit * MiB)
    watched = await watch_ramp(group, spawn, tmp_path, rate, timeout=limit / rate * 3 + 10)
    assert watched.verdict is not None and watched.verdict.oom_killed, watched.verdict
    order = [Level.WARN, Level.HIGH, Level.CRITICAL]
    assert list(watched.entered) == order, watched.facts
    times = [watched.entered[level] for level in order]
    assert times == sorted(times)
    assert times[-1] < watched.died_at
    leads = ", ".join(
        f"{level.value} {watched.died_at - watched.entered[level]:.3f} s" for level in order
    )
    print(f"{rate:g} MiB/s into {limit} MiB: lead before the kill: {leads}")


@pytest.mark.slow
async def test_ramp_5_mib_per_s(memory_cgroup: MakeCgroup, spawn: Spawn, tmp_path: Path) -> None:
    await _ramp(memory_cgroup, spawn, tmp_path, 5, 48)


async def test_ramp_20_mib_per_s(memory_cgroup: MakeCgroup, spawn: Spawn, tmp_path: Path) -> None:
    await _ramp(memory_cgroup, spawn, tmp_path, 20, 64)


async def test_ramp_100_mib_per_s(memory_cgroup: MakeCgroup, spawn: Spawn, tmp_path: Path) -> None:
    await _ramp(memory_cgroup, spawn, tmp_path, 100, 128)


async def test_a_still_cgroup_arms_no_poll_on_the_sentinels_clock(
    memory_cgroup: MakeCgroup,
) -> None:
    """The idle goal: nothing grows, the kernel's thresholds (and the band around the usage)
    stand guard, and the sentinel keeps no timer at all. A poll due is a timer on its clock."""
    group = memory_cgroup(64 * MiB)
    clock = ManualClock()
    sentinel = MemorySentinel(group.cgroup, psi=False, publish=lambda _fact: None, clock=clock)
    await sentinel.start()
    try:
        assert sentinel.sources[0] == "v1 usage thresholds"
        assert sentinel.level is Level.OK
        assert clock.pending == 0
        clock.jump(3600)  # an idle hour
        assert sentinel.wakeups == {"start": 1}
    finally:
        sentinel.stop()
