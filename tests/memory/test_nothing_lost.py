"""Nothing lost: acknowledged records survive a memory ramp to the limit with watch_memory.

The service (``apps/service.py``) acknowledges records, buffers them, and writes them out
only when it stops; a leak grows at 20 MiB/s in a real 96 MiB v1 cgroup that the service
discovers itself (``/proc/self/cgroup`` through ``/proc/self/mountinfo``). With
``watch_memory`` the critical level begins the graceful stop and every acknowledged record is
on disk at exit; without it the OOM killer ends the process and the buffer is lost, which
shows the scenario is real.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from tests.conftest import Spawn
from warden.memory import RunAttribution

from .conftest import MakeCgroup, MiB, app

LIMIT = 96 * MiB
RATE = 20.0


def _run(
    memory_cgroup: MakeCgroup, spawn: Spawn, tmp_path: Path, *, watch: bool
) -> tuple[int, int, int, bool]:
    group = memory_cgroup(LIMIT)
    out = tmp_path / "records.txt"
    argv = app(
        "service.py", "--join", str(group.procs_file), "--out", str(out), "--rate", str(RATE)
    )
    proc = spawn([*argv, "--watch"] if watch else argv)
    proc.wait_line("^ready", timeout=20)
    attribution = RunAttribution.at_spawn(proc.pid, group.cgroup)
    returncode = proc.wait(timeout=LIMIT / MiB / RATE * 3 + 10)
    acked = max((int(m) for m in re.findall(r"^ack (\d+)$", proc.stdout, re.M)), default=0)
    on_disk = len(out.read_text().splitlines()) if out.exists() else 0
    verdict = attribution.decide_returncode(returncode)
    return returncode, acked, on_disk, verdict.oom_killed


@pytest.mark.slow
def test_every_acknowledged_record_is_on_disk_with_watch_memory(
    memory_cgroup: MakeCgroup, spawn: Spawn, tmp_path: Path
) -> None:
    returncode, acked, on_disk, oom_killed = _run(memory_cgroup, spawn, tmp_path, watch=True)
    assert returncode == 1 and not oom_killed  # stopped at critical: a failure to restart on
    assert acked > 100
    assert on_disk == acked


@pytest.mark.slow
def test_without_it_the_oom_killer_loses_them(
    memory_cgroup: MakeCgroup, spawn: Spawn, tmp_path: Path
) -> None:
    returncode, acked, on_disk, oom_killed = _run(memory_cgroup, spawn, tmp_path, watch=False)
    assert returncode == -signal.SIGKILL and oom_killed
    assert acked > 100
    assert on_disk < acked
