"""runc, the Containerfile's entrypoint and warden as PID 1, judged from ``guest/container.py``."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Guest

CHECK = "container"
pytestmark = [pytest.mark.system, pytest.mark.timeout(1800)]


def warden(seen: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in seen["warden"] if r["kind"] == kind]


def test_runc_kill_term_is_the_graceful_stop(guest: Guest) -> None:
    image = guest.saw(CHECK, "containerfile")
    assert image["entrypoint"][:2] == ["warden", "run"] and image["entrypoint"][-1] == "--"
    seen = guest.saw(CHECK, "graceful")
    assert seen["ready"] is True
    assert seen["served"] == [200, "hello from warden\n"]
    assert seen["exit_code"] == 0, seen
    # The program's 5 s drain (--drain-delay 5), within warden's 25 s (WARDEN_STOP_TIMEOUT).
    assert 5 <= seen["seconds"] < 25
    kinds = [kind for kind, _ in seen["warden"]]
    assert "stop_ladder" in kinds and "child.exited" in kinds, seen["warden"]


def test_orphans_are_reaped_by_warden_as_pid_1(guest: Guest) -> None:
    seen = guest.saw(CHECK, "orphans")
    (report,) = seen["report"]
    assert report["pid"] != 1  # the program is warden's child; warden is PID 1
    assert len(report["orphans"]) == 5
    assert report["zombies"] == []
    assert seen["exit_code"] == 0


def test_the_bundles_memory_limit_is_what_the_sentinel_reads(guest: Guest) -> None:
    seen = guest.saw(CHECK, "memory_ramp")
    (watching,) = warden(seen, "memory.watching")
    assert watching["data"]["reader"] == "cgroup v2 /sys/fs/cgroup, limit 96 MiB"
    assert "v2 memory.events" in watching["data"]["sources"]


def test_a_ramp_in_the_container_is_stopped_before_the_oom_kill(guest: Guest) -> None:
    seen = guest.saw(CHECK, "memory_ramp")
    levels = [r["data"]["level"] for r in warden(seen, "memory.level")]
    assert levels[:3] == ["warn", "high", "critical"], levels
    program = seen["program"]
    assert "warned: SIGUSR1" in program  # --memory-warn-signal at high, first
    assert any(line.startswith("stopped cleanly") for line in program), program
    assert not [r for r in warden(seen, "memory.oom_kill") if r["data"]["oom_killed"]]
    (exited,) = warden(seen, "child.exited")
    assert exited["message"].endswith("exited(0)")
    assert seen["exit_code"] == 0


def test_an_oom_kill_in_the_container_is_named(guest: Guest) -> None:
    seen = guest.saw(CHECK, "memory_oom")
    (verdict,) = warden(seen, "memory.oom_kill")
    assert verdict["data"]["oom_killed"] is True
    (exited,) = warden(seen, "child.exited")
    assert exited["message"].endswith("oom-killed")
    assert seen["exit_code"] == 137
