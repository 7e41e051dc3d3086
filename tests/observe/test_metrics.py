"""/metrics scraped from a real lifecycle's health server, parsed with prometheus_client's
own parser; every series is checked to move when its fact is published."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import warden
from tests.observe._http import get
from warden.config._events import ConfigReloaded, ConfigReloadFailed
from warden.lifecycle import Fact
from warden.memory._events import MemoryLevelChanged, MemoryWatching, OomKillAttributed
from warden.memory._levels import Level
from warden.observe._metrics import FAMILIES, Metrics
from warden.observe._server import HealthServer, serve_health
from warden.supervisor._events import (
    ChildExited,
    ChildStarted,
    DrainTimedOut,
    EverythingKilled,
    RestartScheduled,
    UpgradeFinished,
    WatchdogExpired,
)
from warden.supervisor.process._reason import ExitKind, ExitReason

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, by (sample name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def scrape(server: HealthServer) -> Samples:
    response = await asyncio.to_thread(get, f"{server.url}/metrics")
    assert response.status_code == 200
    return parse(response.text)


def key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (name, tuple(sorted(labels.items())))


def _upgrade(result: str, took: float) -> Fact:
    return UpgradeFinished(result=result, reason="test", old_pid=1, new_pid=2, took=took)  # type: ignore[arg-type]


def _killed_by(status: int) -> ExitReason:
    return ExitReason.from_wait_status(status)


MOVES: list[tuple[str, Callable[[], Fact], tuple[str, tuple[tuple[str, str], ...]], float]] = [
    ("child start", lambda: ChildStarted(pid=7, argv=("x",)), key("warden_child_starts_total"), 1),
    (
        "crash by signal",
        lambda: ChildExited(pid=7, reason=_killed_by(signal.SIGSEGV), uptime=1.0, current=True),
        key("warden_child_exits_total", reason="killed"),
        1,
    ),
    (
        "exit",
        lambda: ChildExited(pid=7, reason=_killed_by(3 << 8), uptime=1.0, current=True),
        key("warden_child_exits_total", reason="exited"),
        1,
    ),
    (
        "oom kill",
        lambda: ChildExited(
            pid=8,
            reason=_killed_by(signal.SIGKILL).refined(ExitKind.OOM_KILLED),
            uptime=1.0,
            current=True,
        ),
        key("warden_oom_kills_total"),
        1,
    ),
    (
        "the same oom kill seen by the sentinel",
        lambda: OomKillAttributed(
            pid=8, oom_killed=True, signum=9, exit_code=None, kills_during_run=1
        ),
        key("warden_oom_kills_total"),
        0,
    ),
    (
        "a sentinel oom kill",
        lambda: OomKillAttributed(
            pid=9, oom_killed=True, signum=9, exit_code=None, kills_during_run=1
        ),
        key("warden_oom_kills_total"),
        1,
    ),
    (
        "restart",
        lambda: RestartScheduled(attempt=1, delay=0.1, after=None),
        key("warden_child_restarts_total"),
        1,
    ),
    ("upgrade ok", lambda: _upgrade("ok", 2.0), key("warden_upgrades_total", result="ok"), 1),
    (
        "upgrade duration",
        lambda: _upgrade("ok", 2.0),
        key("warden_upgrade_duration_seconds_count", result="ok"),
        1,
    ),
    (
        "upgrade failed",
        lambda: _upgrade("failed", 1.0),
        key("warden_upgrades_total", result="failed"),
        1,
    ),
    (
        "upgrade rolled back",
        lambda: _upgrade("rolled back", 1.0),
        key("warden_upgrades_total", result="rolled back"),
        1,
    ),
    (
        "deadline kill",
        lambda: EverythingKilled(cause="deadline", pgid=None, killed=2),
        key("warden_forced_exits_total", cause="deadline"),
        1,
    ),
    (
        "watchdog",
        lambda: WatchdogExpired(pid=7, triggered=False, interval=1.0, kill_after=1.0),
        key("warden_forced_exits_total", cause="watchdog"),
        1,
    ),
    (
        "drain timeout",
        lambda: DrainTimedOut(old_pid=7),
        key("warden_forced_exits_total", cause="drain timeout"),
        1,
    ),
    (
        "config reloaded",
        lambda: ConfigReloaded(
            file=Path("/c"), revision=4, digest="d", changed=True, took=0.01, trigger="test"
        ),
        key("warden_config_reloads_total", result="ok"),
        1,
    ),
    (
        "config revision",
        lambda: ConfigReloaded(
            file=Path("/c"), revision=5, digest="d", changed=True, took=0.01, trigger="test"
        ),
        key("warden_config_revision"),
        1,
    ),
    (
        "config reload failed",
        lambda: ConfigReloadFailed(
            file=Path("/c"), revision=5, error="bad", stage="parse", took=0.01, trigger="test"
        ),
        key("warden_config_reloads_total", result="failed"),
        1,
    ),
]


def _level(level: Level, working_set: int, ttl: float | None) -> Fact:
    return MemoryLevelChanged(
        level=level,
        previous=Level.OK,
        working_set=working_set,
        limit=1000,
        time_to_limit=ttl,
        rate=1.0,
        cgroup="/test",
    )


async def test_a_sentinel_is_at_level_ok_from_its_start() -> None:
    # It starts at ok and publishes a level only when the level changes: a service that
    # never leaves ok had no memory level at all on /metrics or /readyz?verbose.
    lifecycle = warden.Lifecycle(handle_signals=False)
    server = serve_health(lifecycle, "127.0.0.1:0")
    async with lifecycle:
        assert key("warden_memory_level", level="ok") not in await scrape(server)
        lifecycle.publish(MemoryWatching(reader="v1 /sys/fs/cgroup/memory/x", sources=()))
        samples = await scrape(server)
        assert samples[key("warden_memory_level", level="ok")] == 1
        assert samples[key("warden_memory_level", level="critical")] == 0
        verbose = await asyncio.to_thread(get, f"{server.url}/readyz?verbose")
        assert "memory level ok" in verbose.text.splitlines(), verbose.text


async def test_the_config_revision_serving_from_the_start_is_on_metrics(tmp_path: Path) -> None:
    # The first load happens in the store's constructor: before it was said at the start,
    # /metrics and /readyz?verbose showed no revision until the first reload.
    path = tmp_path / "app.toml"
    path.write_text("n = 1\n")
    lifecycle = warden.Lifecycle(handle_signals=False)
    warden.ConfigStore(path).attach(lifecycle)
    server = serve_health(lifecycle, "127.0.0.1:0")
    async with lifecycle:
        samples = await scrape(server)
        assert samples[key("warden_config_revision")] == 1
        assert samples.get(key("warden_config_reloads_total", result="ok"), 0) == 0  # no reload
        verbose = await asyncio.to_thread(get, f"{server.url}/readyz?verbose")
        assert "config revision 1" in verbose.text.splitlines(), verbose.text


async def test_each_series_moves_when_its_fact_is_published() -> None:
    lifecycle = warden.Lifecycle(handle_signals=False)
    server = serve_health(lifecycle, "127.0.0.1:0")
    async with lifecycle:
        for what, make, series, delta in MOVES:
            before = (await scrape(server)).get(series, 0.0)
            lifecycle.publish(make())
            after = (await scrape(server)).get(series, 0.0)
            assert after - before == delta, what
        samples = await scrape(server)
        assert samples[key("warden_config_revision")] == 5
        assert samples[key("warden_upgrade_duration_seconds_sum", result="ok")] == 4.0

        lifecycle.publish(_level(Level.HIGH, 900, 12.5))
        samples = await scrape(server)
        assert samples[key("warden_memory_level", level="high")] == 1
        assert samples[key("warden_memory_level", level="ok")] == 0
        assert samples[key("warden_memory_working_set_bytes")] == 900
        assert samples[key("warden_memory_limit_bytes")] == 1000
        assert samples[key("warden_memory_time_to_limit_seconds")] == 12.5
        lifecycle.publish(_level(Level.OK, 100, None))
        samples = await scrape(server)
        assert key("warden_memory_time_to_limit_seconds") not in samples  # not rising
        assert samples[key("warden_memory_level", level="ok")] == 1
        assert samples[key("warden_events_total", kind="child.started")] == 1


async def test_reloads_by_result_and_lifecycle_state() -> None:
    lifecycle = warden.Lifecycle(handle_signals=False)
    fail = {"now": False}
    done = asyncio.Event()

    def hook() -> None:
        if fail["now"]:
            raise RuntimeError("bad config")

    lifecycle.on_reload(hook)
    lifecycle.timeline.subscribe(lambda e: done.set() if e.kind == "reload" else None)
    server = serve_health(lifecycle, "127.0.0.1:0")
    async with lifecycle:
        samples = await scrape(server)
        assert samples[key("warden_lifecycle_state", state="ready")] == 1
        assert samples[key("warden_lifecycle_state", state="starting")] == 0
        for failing, result in ((False, "ok"), (True, "failed")):
            fail["now"] = failing
            done.clear()
            lifecycle.reload()
            await asyncio.wait_for(done.wait(), 5)
            assert (await scrape(server))[key("warden_reloads_total", result=result)] == 1


def test_shutdown_histograms_forced_exits_and_signal_to_drain() -> None:
    # A real SIGTERM belongs to the main thread of a process of its own: the scenario runs
    # there (apps/shutdown_metrics.py) and prints its scrape once stopped.
    script = Path(__file__).with_name("apps") / "shutdown_metrics.py"
    done = subprocess.run(
        [sys.executable, str(script)], check=False, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    samples = parse(done.stdout)
    count = key("warden_shutdown_duration_seconds_count", stage="drain")
    assert samples[count] == 1
    assert samples[key("warden_shutdown_duration_seconds_sum", stage="drain")] >= 0.05
    assert samples[key("warden_shutdown_duration_seconds_count", stage="components")] == 1
    assert samples[key("warden_shutdown_duration_seconds_count", stage="total")] == 1
    # The 10 ms .. 120 s buckets, as the issue asks.
    assert samples[key("warden_shutdown_duration_seconds_bucket", stage="total", le="0.01")] == 0
    assert key("warden_shutdown_duration_seconds_bucket", stage="total", le="120.0") in samples
    assert samples[key("warden_forced_exits_total", cause="component timeout")] == 1
    assert samples[key("warden_component_stop_duration_seconds_count", component="quick")] == 1
    assert 0 <= samples[key("warden_signal_to_drain_seconds")] < 5
    assert samples[key("warden_lifecycle_state", state="stopped")] == 1


def test_counters_kept_elsewhere_are_read_at_scrape_time() -> None:
    metrics = Metrics()
    drops: collections.Counter[str] = collections.Counter()
    reaped = {"n": 0}
    metrics.read("notify_drops", lambda: drops)
    metrics.read("orphans_reaped", lambda: reaped["n"])
    metrics.read("control_refusals", lambda: 3)
    drops["not-main-pid"] += 2
    reaped["n"] = 5
    samples = parse(metrics.exposition().decode())
    assert samples[key("warden_notify_drops_total", reason="not-main-pid")] == 2
    assert samples[key("warden_orphans_reaped_total")] == 5
    assert samples[key("warden_control_refusals_total")] == 3
    with pytest.raises(ValueError, match="not read from a callback"):
        metrics.read("child_starts", lambda: 1)


def test_every_family_is_exposed_with_its_type() -> None:
    families = {
        f.name: f.type for f in text_string_to_metric_families(Metrics().exposition().decode())
    }
    for family in FAMILIES:
        assert families["warden_" + family.name.removesuffix("_total")] == family.type


def test_the_table_reads_only_declared_kinds_and_fields() -> None:
    import warden.config._events
    import warden.memory._events
    import warden.supervisor._events  # noqa: F401  (declares the supervisor's kinds)
    from warden.lifecycle import KINDS
    from warden.observe._metrics import FIELDS, RULES

    for kind in RULES:
        assert kind in KINDS, f"metrics rule for undeclared kind {kind!r}"
        declared = {f.name for f in dataclasses.fields(KINDS[kind])}
        missing = set(FIELDS[kind]) - declared
        assert not missing, f"rule for {kind!r} reads {missing}, not fields of {KINDS[kind]}"
