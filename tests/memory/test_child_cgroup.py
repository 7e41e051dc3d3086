"""A child's own memory cgroup: created with a limit, joined by pid, removed with its leftovers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from warden import ConfigurationError
from warden.memory import ChildCgroup, MemoryCgroup, MemoryCgroupError
from warden.memory._sizes import parse_size

from .conftest import MakeCgroup, MiB


def test_create_limit_attach_remove(memory_cgroup: MakeCgroup) -> None:
    group = memory_cgroup(parse_size("64M"))
    assert group.limit == 64 * MiB
    assert (group.cgroup.path / "memory.limit_in_bytes").read_text().strip() == str(64 * MiB)
    child = subprocess.Popen(["sleep", "30"])
    try:
        group.attach(child.pid)
        assert group.pids() == [child.pid]
        assert f"memory:{group.cgroup.path.relative_to(group.cgroup.mount)}" in Path(
            f"/proc/{child.pid}/cgroup"
        ).read_text().replace(":/", ":")
        assert group.oom_kills() == 0
        group.remove()  # kills what is left in it first
        assert child.wait(5) == -9
        assert not group.cgroup.path.exists()
    finally:
        child.kill()
        child.wait(5)


def test_attach_of_a_gone_pid_is_a_clear_error(memory_cgroup: MakeCgroup) -> None:
    group = memory_cgroup(64 * MiB)
    child = subprocess.Popen(["true"])
    child.wait(5)
    with pytest.raises(MemoryCgroupError, match=f"cannot move pid {child.pid}"):
        group.attach(child.pid)


def test_where_it_cannot_be_created_the_error_says_why(tmp_path: Path) -> None:
    parent = MemoryCgroup(1, tmp_path / "missing", tmp_path)
    with pytest.raises(MemoryCgroupError, match=r"cannot create memory cgroup .*--memory-limit"):
        ChildCgroup.create(64 * MiB, parent=parent)


def _v2_unit(tmp_path: Path, procs: list[int]) -> MemoryCgroup:
    """A delegated unit's cgroup as systemd 252 leaves it: warden in it, nothing enabled
    below (the guest's system suite meets the real one: tests/system/test_memory_v2.py)."""
    unit = tmp_path / "system.slice" / "app.service"
    unit.mkdir(parents=True)
    (unit / "cgroup.subtree_control").write_text("\n")
    (unit / "cgroup.procs").write_text("".join(f"{pid}\n" for pid in procs))
    return MemoryCgroup(2, unit, tmp_path)


def test_v2_warden_moves_to_a_leaf_before_it_enables_memory_below(tmp_path: Path) -> None:
    unit = _v2_unit(tmp_path, [os.getpid()])
    group = ChildCgroup.create(64 * MiB, parent=unit, name="warden-1-1")
    assert (unit.path / "supervisor" / "cgroup.procs").read_text() == str(os.getpid())
    assert (unit.path / "cgroup.subtree_control").read_text() == "+memory"
    assert group.cgroup.path == unit.path / "warden-1-1"
    assert (group.cgroup.path / "memory.max").read_text() == str(64 * MiB)


def test_v2_a_cgroup_shared_with_other_processes_is_refused(tmp_path: Path) -> None:
    unit = _v2_unit(tmp_path, [1, os.getpid()])
    with pytest.raises(MemoryCgroupError, match=r"holds processes other than warden \(1\)"):
        ChildCgroup.create(64 * MiB, parent=unit)
    assert not (unit.path / "supervisor").exists()
    assert (unit.path / "cgroup.subtree_control").read_text() == "\n"


@pytest.mark.parametrize(
    "text, expected",
    [("512M", 512 * MiB), ("1.5GiB", 3 * 2**29), ("4096", 4096), (65536, 65536), ("64k", 65536)],
)
def test_parse_size(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "12 parsecs", "0", "-5M"])
def test_parse_size_errors(text: str) -> None:
    with pytest.raises(ConfigurationError, match="--memory-limit"):
        parse_size(text, what="--memory-limit")
