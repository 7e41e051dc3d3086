"""Discovery of a process's memory cgroup, on faithful fake machines and on this one."""

from __future__ import annotations

from pathlib import Path

import pytest

from warden.memory import MemoryUnavailableError, find_memory_cgroup

from ._trees import MOUNTINFO_V1, MOUNTINFO_V2, MiB, proc_self, v1_group, v2_group

V1_CGROUP = "9:name=systemd:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n"


def test_v1_host(tmp_path: Path) -> None:
    proc_self(tmp_path, V1_CGROUP, MOUNTINFO_V1.format(root="/"))
    v1_group(tmp_path / "sys/fs/cgroup/memory/process_api/abc", usage=MiB, inactive=0)
    found = find_memory_cgroup(root=tmp_path)
    assert found.version == 1
    assert found.path == tmp_path / "sys/fs/cgroup/memory/process_api/abc"
    assert found.mount == tmp_path / "sys/fs/cgroup/memory"
    assert found.ancestry() == [
        found.path,
        found.path.parent,
        found.mount,
    ]


def test_hybrid_prefers_v1_memory_over_cgroup2_without_it(tmp_path: Path) -> None:
    # This machine's shape: cgroup2 at /sys/fs/cgroup/unified holds no memory controller.
    proc_self(tmp_path, V1_CGROUP.replace("0::/", "0::/session"), MOUNTINFO_V1.format(root="/"))
    v1_group(tmp_path / "sys/fs/cgroup/memory/process_api/abc", usage=MiB, inactive=0)
    (tmp_path / "sys/fs/cgroup/unified/session").mkdir(parents=True)
    assert find_memory_cgroup(root=tmp_path).version == 1


def test_v2_unified(tmp_path: Path) -> None:
    proc_self(tmp_path, "0::/system.slice/app.service\n", MOUNTINFO_V2.format(root="/"))
    v2_group(tmp_path / "sys/fs/cgroup/system.slice/app.service", current=MiB, inactive=0)
    found = find_memory_cgroup(root=tmp_path)
    assert (found.version, found.path) == (2, tmp_path / "sys/fs/cgroup/system.slice/app.service")


def test_cgroup_namespace(tmp_path: Path) -> None:
    # Inside a cgroup namespace the process is at "/" and its cgroupfs is mounted with root "/".
    proc_self(tmp_path, "0::/\n", MOUNTINFO_V2.format(root="/"))
    v2_group(tmp_path / "sys/fs/cgroup", current=MiB, inactive=0)
    assert find_memory_cgroup(root=tmp_path).path == tmp_path / "sys/fs/cgroup"


def test_docker_bind_mount_without_namespace(tmp_path: Path) -> None:
    # The full host path in /proc/self/cgroup, and the same path as the mount's root.
    proc_self(tmp_path, "4:memory:/docker/0123abcd\n", MOUNTINFO_V1.format(root="/docker/0123abcd"))
    v1_group(tmp_path / "sys/fs/cgroup/memory", usage=MiB, inactive=0)
    found = find_memory_cgroup(root=tmp_path)
    assert found.path == tmp_path / "sys/fs/cgroup/memory"


def test_outside_the_namespace_root(tmp_path: Path) -> None:
    # A process moved above its namespace's root sees "/../x": the mount point is its cgroup.
    proc_self(tmp_path, "0::/../sibling\n", MOUNTINFO_V2.format(root="/kubepods/pod1"))
    v2_group(tmp_path / "sys/fs/cgroup", current=MiB, inactive=0)
    assert find_memory_cgroup(root=tmp_path).path == tmp_path / "sys/fs/cgroup"


def test_escaped_mount_point(tmp_path: Path) -> None:
    mountinfo = MOUNTINFO_V2.format(root="/").replace("/sys/fs/cgroup ", "/mnt/my\\040cgroups ")
    proc_self(tmp_path, "0::/app\n", mountinfo)
    v2_group(tmp_path / "mnt/my cgroups/app", current=MiB, inactive=0)
    assert find_memory_cgroup(root=tmp_path).path == tmp_path / "mnt/my cgroups/app"


def test_no_memory_controller_is_one_clear_error(tmp_path: Path) -> None:
    proc_self(tmp_path, "0::/\n", MOUNTINFO_V1.format(root="/"))
    with pytest.raises(MemoryUnavailableError, match="MemAvailable instead"):
        find_memory_cgroup(root=tmp_path)


def test_no_proc_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MemoryUnavailableError, match=r"cannot read .*cgroup"):
        find_memory_cgroup(root=tmp_path)


def test_a_missing_directory_on_a_host_is_not_the_root_cgroup(tmp_path: Path) -> None:
    proc_self(tmp_path, V1_CGROUP, MOUNTINFO_V1.format(root="/"))
    v1_group(tmp_path / "sys/fs/cgroup/memory", usage=MiB, inactive=0)  # only the root
    with pytest.raises(MemoryUnavailableError):
        find_memory_cgroup(root=tmp_path)


def test_this_machine() -> None:
    # The real files: this process's own memory cgroup, through the real mount table.
    try:
        found = find_memory_cgroup()
    except MemoryUnavailableError as exc:
        pytest.skip(str(exc))
    own = Path("/proc/self/cgroup").read_text()
    assert str(found.path).endswith(
        next(
            line.split(":", 2)[2]
            for line in own.splitlines()
            if ("memory" in line.split(":")[1].split(","))
            or (found.version == 2 and line.startswith("0::"))
        ).rstrip("/")
    )
    assert (
        found.path / ("memory.usage_in_bytes" if found.version == 1 else "memory.current")
    ).exists()
