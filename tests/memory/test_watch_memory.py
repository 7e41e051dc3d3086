"""watch_memory(lc): a lifecycle component with the default actions, inspected from outside."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from warden import Lifecycle
from warden.lifecycle import Event, Outcome
from warden.memory import (
    Level,
    MemoryActionTaken,
    MemoryLevelChanged,
    MemoryWatchDegraded,
    MemoryWatching,
    watch_memory,
)

from ._trees import MEMINFO, MiB, proc_self, v2_group, write


async def test_watches_this_process_and_can_be_inspected() -> None:
    lc = Lifecycle(handle_signals=False)
    sentinel = watch_memory(lc, psi=False)
    events: list[Event] = []
    lc.timeline.subscribe(events.append)
    async with lc:
        assert sentinel.level is Level.OK
        assert 0 < sentinel.working_set < sentinel.limit
        assert sentinel.accepting
        assert sentinel.cgroup is not None  # this machine: the v1 memory controller
        assert sentinel.sources[0] == "v1 usage thresholds"
        lc.request_stop("test over")
    watching = [e.fact for e in events if isinstance(e.fact, MemoryWatching)]
    assert len(watching) == 1 and "cgroup v1" in watching[0].reader
    assert sentinel.sources == []  # disarmed at stop


async def test_critical_runs_the_defaults_in_order_and_stops_gracefully(tmp_path: Path) -> None:
    # A faithful v2 tree whose working set is 96 % of memory.max: every level at once.
    proc_self(tmp_path, "0::/app\n", "30 22 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")
    v2_group(
        tmp_path / "sys/fs/cgroup/app", current=106 * MiB, inactive=10 * MiB, max_=str(100 * MiB)
    )
    lc = Lifecycle(handle_signals=False)
    sentinel = watch_memory(lc, root=tmp_path, psi=False, evict_idle=lambda _s: "closed 3 idle")
    events: list[Event] = []
    lc.timeline.subscribe(events.append)
    async with lc:
        await asyncio.wait_for(lc.wait_for_stop(), 5)
        assert not sentinel.accepting
    assert lc.stop_reason is not None and lc.stop_reason.startswith("memory critical")
    levels = [e.fact.level for e in events if isinstance(e.fact, MemoryLevelChanged)]
    assert levels == [Level.WARN, Level.HIGH, Level.CRITICAL]
    actions = [
        (e.fact.level, e.fact.action, e.fact.result)
        for e in events
        if isinstance(e.fact, MemoryActionTaken)
    ]
    assert actions == [
        (Level.WARN, "gc", Outcome.OK),
        (Level.HIGH, "shed", Outcome.OK),
        (Level.HIGH, "evict-idle", Outcome.OK),
        (Level.CRITICAL, "stop", Outcome.OK),
    ]


async def test_callbacks_come_first_and_a_failing_one_is_reported(tmp_path: Path) -> None:
    proc_self(tmp_path, "0::/app\n", "30 22 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")
    v2_group(tmp_path / "sys/fs/cgroup/app", current=85 * MiB, inactive=0, max_=str(100 * MiB))
    seen: list[str] = []

    def broken(_status: object) -> None:
        raise RuntimeError("boom")

    async def later(_status: object) -> None:
        seen.append("async callback ran")

    lc = Lifecycle(handle_signals=False)
    watch_memory(lc, root=tmp_path, psi=False, on_warn=broken, warn_actions=[], flush_budget=0)
    lc2_events: list[Event] = []
    lc.timeline.subscribe(lc2_events.append)
    async with lc:
        lc.request_stop("done")
    failed = [e.fact for e in lc2_events if isinstance(e.fact, MemoryActionTaken)]
    assert [(f.action, f.result, f.error) for f in failed] == [
        ("callback", Outcome.FAILED, "RuntimeError: boom")
    ]

    lc = Lifecycle(handle_signals=False)
    watch_memory(lc, root=tmp_path, psi=False, on_warn=later, flush_budget=0)
    async with lc:
        await asyncio.sleep(0)  # the coroutine runs as a task on the loop
        lc.request_stop("done")
    assert seen == ["async callback ran"]


async def test_no_cgroup_is_one_clear_line_and_the_host_is_watched(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A root with /proc/meminfo but no /proc/self: no cgroup can be found.
    write(tmp_path / "proc/meminfo", MEMINFO.format(available=20_000_000))
    lc = Lifecycle(handle_signals=False)
    sentinel = watch_memory(lc, root=tmp_path, psi=False)
    events: list[Event] = []
    lc.timeline.subscribe(events.append)
    with caplog.at_level(logging.WARNING):
        async with lc:
            lc.request_stop("done")
    degraded = [e.fact for e in events if isinstance(e.fact, MemoryWatchDegraded)]
    assert len(degraded) == 1 and "MemAvailable" in degraded[0].reason
    assert sentinel.cgroup is None
    assert sentinel.limit == 24683520 * 1024  # the host's MemTotal
