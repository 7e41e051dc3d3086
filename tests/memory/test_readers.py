"""Working set, effective limit and OOM counter: v1 on a real cgroup, v2 on a faithful tree."""

from __future__ import annotations

from pathlib import Path

from warden.memory import ChildCgroup, MemoryCgroup, reader_for

from ._trees import V1_UNLIMITED, MiB, proc_self, v1_group, v2_group, write
from .conftest import MakeCgroup


def test_v1_effective_limit_is_the_smallest_up_the_hierarchy(memory_cgroup: MakeCgroup) -> None:
    outer = memory_cgroup(64 * MiB)
    inner = ChildCgroup.create(256 * MiB, parent=outer.cgroup, name="inner")
    try:
        reader = reader_for(inner.cgroup)
        sample = reader.sample(0.0)
        kills = reader.oom_kills()
        reader.close()
        assert sample.limit == 64 * MiB
        assert sample.working_set == sample.usage - sample.inactive_file
        assert kills == 0
    finally:
        inner.remove()


def test_v1_working_set_leaves_out_inactive_file(tmp_path: Path) -> None:
    mount = tmp_path / "memory"
    v1_group(mount, usage=10 * MiB, inactive=0)
    v1_group(mount / "app", usage=160 * MiB, inactive=150 * MiB, limit=str(200 * MiB), oom_kill=3)
    write(tmp_path / "meminfo", "MemAvailable:   24000000 kB\n")
    reader = reader_for(MemoryCgroup(1, mount / "app", mount), meminfo=tmp_path / "meminfo")
    sample = reader.sample(1.0)
    assert (sample.usage, sample.inactive_file, sample.working_set) == (
        160 * MiB,
        150 * MiB,
        10 * MiB,
    )
    assert sample.limit == 200 * MiB
    assert reader.oom_kills() == 3
    assert "200 MiB" in reader.description


def test_v2_limit_is_the_smallest_of_max_and_high_up_the_hierarchy(tmp_path: Path) -> None:
    mount = tmp_path / "cgroup"
    write(mount / "cgroup.controllers", "cpu memory pids\n")  # the root has no memory.max
    v2_group(mount / "slice", current=300 * MiB, inactive=0, max_=str(512 * MiB))
    v2_group(
        mount / "slice/app",
        current=120 * MiB,
        inactive=20 * MiB,
        max_="max",
        high=str(400 * MiB),
        oom_kill=2,
    )
    write(tmp_path / "meminfo", "MemAvailable:   24000000 kB\n")
    reader = reader_for(MemoryCgroup(2, mount / "slice/app", mount), meminfo=tmp_path / "meminfo")
    sample = reader.sample(2.0)
    assert sample.working_set == 100 * MiB
    assert sample.limit == 400 * MiB  # memory.high of the cgroup, below the slice's max
    assert reader.oom_kills() == 2
    write(mount / "slice/app/memory.high", "max\n")
    assert reader.sample(3.0).limit == 512 * MiB


def test_no_limit_means_mem_available(tmp_path: Path) -> None:
    mount = tmp_path / "memory"
    v1_group(mount, usage=0, inactive=0)
    v1_group(mount / "app", usage=100 * MiB, inactive=0, limit=V1_UNLIMITED)
    write(tmp_path / "meminfo", f"MemAvailable:   {300 * 1024} kB\n")
    reader = reader_for(MemoryCgroup(1, mount / "app", mount), meminfo=tmp_path / "meminfo")
    sample = reader.sample(0.0)
    assert sample.limit == 400 * MiB  # working set + MemAvailable
    assert sample.headroom == 300 * MiB


def test_a_short_host_lowers_a_cgroup_limit(tmp_path: Path) -> None:
    mount = tmp_path / "memory"
    v1_group(mount, usage=0, inactive=0)
    v1_group(mount / "app", usage=100 * MiB, inactive=0, limit=str(1024 * MiB))
    write(tmp_path / "meminfo", f"MemAvailable:   {50 * 1024} kB\n")
    reader = reader_for(MemoryCgroup(1, mount / "app", mount), meminfo=tmp_path / "meminfo")
    assert reader.sample(0.0).limit == 150 * MiB


def test_host_reader(tmp_path: Path) -> None:
    proc_self(tmp_path, "", "", available_kib=20_000_000)
    reader = reader_for(None, meminfo=tmp_path / "proc/meminfo")
    sample = reader.sample(0.0)
    assert sample.limit == 24683520 * 1024
    assert sample.working_set == (24683520 - 20_000_000) * 1024
    assert "host memory" in reader.description
