"""runc, the Containerfile's entrypoint and warden as PID 1, judged from ``guest/container.py``.

Each test twice: in the guest (cgroup v2) and on this host (cgroup v1, hybrid).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .conftest import Guest

CHECK = "container"
pytestmark = [pytest.mark.system, pytest.mark.timeout(1800)]
#: Where the memory cgroup is, as warden inside the container sees it.
READER = {"v2": "cgroup v2 /sys/fs/cgroup", "v1": "cgroup v1 /sys/fs/cgroup/memory"}

Saw = Callable[[str], Any]


@pytest.fixture(params=["v2", "v1"], ids=["guest-v2", "host-v1"])
def saw(request: pytest.FixtureRequest) -> Saw:
    place: Guest = request.getfixturevalue("guest" if request.param == "v2" else "host_runc")
    return lambda name: place.saw(CHECK, name)


@pytest.fixture
def version(request: pytest.FixtureRequest) -> str:
    return str(request.node.callspec.params["saw"])


def warden(seen: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in seen["warden"] if r["kind"] == kind]


def test_runc_kill_term_is_the_graceful_stop(saw: Saw) -> None:
    image = saw("containerfile")
    assert image["entrypoint"][:2] == ["warden", "run"] and image["entrypoint"][-1] == "--"
    seen = saw("graceful")
    assert seen["ready"] is True
    assert seen["served"] == [200, "hello from warden\n"]
    assert seen["exit_code"] == 0, seen
    # The program's 5 s drain (--drain-delay 5), within warden's 25 s (WARDEN_STOP_TIMEOUT).
    assert 5 <= seen["seconds"] < 25
    kinds = [kind for kind, _ in seen["warden"]]
    assert "stop_ladder" in kinds and "child.exited" in kinds, seen["warden"]


def test_orphans_are_reaped_by_warden_as_pid_1(saw: Saw) -> None:
    seen = saw("orphans")
    (report,) = seen["report"]
    assert report["pid"] != 1  # the program is warden's child; warden is PID 1
    assert len(report["orphans"]) == 5
    assert report["zombies"] == []
    assert seen["exit_code"] == 0


def test_the_bundles_memory_limit_is_what_the_sentinel_reads(saw: Saw, version: str) -> None:
    seen = saw("memory_ramp")
    (watching,) = warden(seen, "memory.watching")
    assert watching["data"]["reader"] == f"{READER[version]}, limit 96 MiB"
    if version == "v2":
        assert "v2 memory.events" in watching["data"]["sources"]
    # The container's cgroupfs is read-only: a refused PSI trigger is said to be that.
    for degraded in warden(seen, "memory.degraded"):
        assert "multiples of 2 s" not in degraded["message"], degraded


def test_a_ramp_in_the_container_is_stopped_before_the_oom_kill(saw: Saw) -> None:
    seen = saw("memory_ramp")
    levels = [r["data"]["level"] for r in warden(seen, "memory.level")]
    assert levels[:3] == ["warn", "high", "critical"], levels
    program = seen["program"]
    assert "warned: SIGUSR1" in program  # --memory-warn-signal at high, first
    assert any(line.startswith("stopped cleanly") for line in program), program
    assert not [r for r in warden(seen, "memory.oom_kill") if r["data"]["oom_killed"]]
    (exited,) = warden(seen, "child.exited")
    assert exited["message"].endswith("exited(0)")
    assert seen["exit_code"] == 1  # no success: the runtime's restart policy brings it back


def test_an_oom_kill_in_the_container_is_named(saw: Saw) -> None:
    seen = saw("memory_oom")
    (verdict,) = warden(seen, "memory.oom_kill")
    assert verdict["data"]["oom_killed"] is True
    (exited,) = warden(seen, "child.exited")
    assert exited["message"].endswith("oom-killed")
    assert seen["exit_code"] == 137
