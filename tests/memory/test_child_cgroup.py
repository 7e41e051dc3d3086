"""A child's own memory cgroup: created with a limit, joined by pid, removed with its leftovers."""

from __future__ import annotations

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
