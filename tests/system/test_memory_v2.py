"""cgroup v2's memory controller for real, judged from ``guest/memory.py``."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Guest

CHECK = "memory"
MiB = 2**20
pytestmark = [pytest.mark.system, pytest.mark.timeout(1800)]


def events(seen: dict[str, Any]) -> dict[str, int]:
    words = seen["memory_events"] or []
    return {words[i]: int(words[i + 1]) for i in range(0, len(words) - 1, 2)}


def kinds(seen: dict[str, Any], kind: str) -> list[dict[str, str]]:
    return [e for e in seen["journal"] if e.get("WARDEN_KIND") == kind]


def test_watch_memory_reads_the_units_v2_files_and_stops_the_leak_first(guest: Guest) -> None:
    seen = guest.saw(CHECK, "library")
    report = seen["report"]
    assert report is not None, seen
    assert report["cgroup"] == "/sys/fs/cgroup/system.slice/t-mem-lib.service"
    assert report["limit"] == 128 * MiB  # the unit's MemoryMax=
    path = "/sys/fs/cgroup/system.slice/t-mem-lib.service/memory.pressure"
    assert report["sources"] == ["v2 memory.events", f"PSI {path}"]
    # Woken by the kernel: memory.events' "max" as the page cache was reclaimed at the limit.
    assert report["wakeups"].get("v2 memory.events", 0) > 0, report["wakeups"]
    levels = [e["LEVEL"] for e in kinds(seen, "memory.level")]
    assert levels[:3] == ["warn", "high", "critical"], levels
    actions = [(e["LEVEL"], e["ACTION"], e["RESULT"]) for e in kinds(seen, "memory.action")]
    assert ("critical", "stop", "ok") in actions
    # The 48 MiB of page cache filled the cgroup to its limit, and was no warning.
    assert events(seen)["max"] > 0
    assert events(seen)["oom_kill"] == 0
    # Stopped before the OOM killer, and no success: Restart=on-failure would restart it.
    assert (seen["Result"], seen["ExecMainStatus"]) == ("exit-code", "1"), seen["manager"]


def _tree(seen: dict[str, Any], unit: str) -> None:
    tree = seen["tree"]
    assert tree["warden"] == f"/system.slice/{unit}/supervisor", tree
    assert tree["program"].startswith(f"/system.slice/{unit}/warden-"), tree
    assert tree["program_memory_max"] == str(64 * MiB)


def test_memory_limit_under_delegate_names_a_real_oom_kill(guest: Guest) -> None:
    seen = guest.saw(CHECK, "delegate_oom")
    _tree(seen, "t-delegate-oom.service")
    (exited,) = kinds(seen, "child.exited")
    assert exited["MESSAGE"].endswith(": oom-killed"), exited
    (verdict,) = kinds(seen, "memory.oom_kill")
    assert verdict["OOM_KILLED"] == "True"
    assert events(seen)["oom_kill"] >= 1
    assert seen["ExecMainStatus"] == "137", seen["manager"]


def test_memory_limit_under_delegate_a_kill_9_is_not_an_oom_kill(guest: Guest) -> None:
    seen = guest.saw(CHECK, "delegate_kill")
    _tree(seen, "t-delegate-kill.service")
    (exited,) = kinds(seen, "child.exited")
    assert exited["MESSAGE"].endswith("killed(SIGKILL) — not an OOM kill"), exited
    assert events(seen)["oom_kill"] == 0
    assert seen["ExecMainStatus"] == "137", seen["manager"]


def test_memory_limit_under_delegate_stops_a_ramp_before_the_oom_killer(guest: Guest) -> None:
    seen = guest.saw(CHECK, "delegate_ramp")
    _tree(seen, "t-delegate-ramp.service")
    levels = [e["LEVEL"] for e in kinds(seen, "memory.level")]
    assert "critical" in levels, levels
    assert any(line.startswith("stopped cleanly") for line in seen["program"]), seen["program"]
    (exited,) = kinds(seen, "child.exited")
    assert exited["MESSAGE"].endswith("exited(0)"), exited
    assert events(seen)["oom_kill"] == 0
    # The program exited 0 on its stop signal; warden exits 1: a failure to restart on.
    assert (seen["Result"], seen["ExecMainStatus"]) == ("exit-code", "1"), seen["manager"]
