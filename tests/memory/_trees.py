"""Faithful fake machines: /proc/self/{cgroup,mountinfo} and cgroupfs files under a root.

The file names and formats are the kernel's (``proc(5)``; ``Documentation/admin-guide/
cgroup-v1/memory.rst`` and ``cgroup-v2.rst``); the values are from real machines.
"""

from __future__ import annotations

from pathlib import Path

MiB = 2**20
V1_UNLIMITED = "9223372036854771712"

MOUNTINFO_V1 = """\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 {root} /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""

MOUNTINFO_V2 = """\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:26 {root} /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 \
rw,nsdelegate,memory_recursiveprot
"""

V1_STAT = """\
cache 10485760
rss 52428800
total_cache {cache}
total_rss 52428800
total_inactive_file {inactive}
total_active_file 0
hierarchical_memory_limit {limit}
"""

V2_STAT = """\
anon 52428800
file {cache}
inactive_file {inactive}
active_file 0
"""

MEMINFO = """\
MemTotal:       24683520 kB
MemFree:        24000000 kB
MemAvailable:   {available} kB
Inactive(file):   100000 kB
"""


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def proc_self(root: Path, cgroup: str, mountinfo: str, available_kib: int = 24_000_000) -> None:
    write(root / "proc/self/cgroup", cgroup)
    write(root / "proc/self/mountinfo", mountinfo)
    write(root / "proc/meminfo", MEMINFO.format(available=available_kib))


def v1_group(
    directory: Path, *, usage: int, inactive: int, limit: str = V1_UNLIMITED, oom_kill: int = 0
) -> None:
    write(directory / "memory.usage_in_bytes", f"{usage}\n")
    write(directory / "memory.limit_in_bytes", f"{limit}\n")
    write(directory / "memory.stat", V1_STAT.format(cache=inactive, inactive=inactive, limit=limit))
    write(
        directory / "memory.oom_control", f"oom_kill_disable 0\nunder_oom 0\noom_kill {oom_kill}\n"
    )
    write(directory / "cgroup.procs", "")


def v2_group(
    directory: Path,
    *,
    current: int,
    inactive: int,
    max_: str = "max",
    high: str = "max",
    oom_kill: int = 0,
) -> None:
    write(directory / "memory.current", f"{current}\n")
    write(directory / "memory.max", f"{max_}\n")
    write(directory / "memory.high", f"{high}\n")
    write(directory / "memory.stat", V2_STAT.format(cache=inactive, inactive=inactive))
    write(
        directory / "memory.events",
        f"low 0\nhigh 0\nmax 0\noom 0\noom_kill {oom_kill}\noom_group_kill 0\n",
    )
    write(directory / "cgroup.procs", "")
