"""150 MiB of page cache and little anonymous memory in a real 200 MiB cgroup: no warning.

Raw usage reaches ~78 % here, and would go past 80 % with a little more cache; the working
set (usage - inactive_file) stays near what the process holds.
"""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

from tests.conftest import Spawn
from warden.lifecycle import Fact
from warden.memory import Level, MemoryLevelChanged, MemorySentinel

from .conftest import MakeCgroup, MiB

WRITER = textwrap.dedent(
    """
    import os, sys
    with open(sys.argv[1], "w") as procs:
        procs.write(str(os.getpid()))
    print("ready", flush=True)
    sys.stdin.readline()
    chunk = b"x" * (1 << 20)
    with open(sys.argv[2], "wb") as out:
        for _ in range(150):
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())  # clean pages: reclaimable cache, on the inactive list
    print("written", flush=True)
    sys.stdin.readline()
    """
)


async def test_page_cache_is_not_a_warning(
    memory_cgroup: MakeCgroup, spawn: Spawn, tmp_path: Path
) -> None:
    group = memory_cgroup(200 * MiB)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    import sys

    proc = spawn([sys.executable, str(script), str(group.procs_file), str(tmp_path / "cache.bin")])
    proc.wait_line("^ready")
    facts: list[Fact] = []
    sentinel = MemorySentinel(group.cgroup, publish=facts.append, psi=False)
    await sentinel.start()
    try:
        assert proc.popen.stdin is not None
        proc.popen.stdin.write("go\n")
        proc.popen.stdin.flush()
        await asyncio.to_thread(proc.wait_line, "^written", 30)
        status = sentinel.check()
        usage = sentinel.timeline()[-1].usage
    finally:
        sentinel.stop()
    assert usage >= 150 * MiB  # the cache is charged to the cgroup ...
    assert status.working_set < 20 * MiB  # ... and is not the working set
    assert status.level is Level.OK
    assert not [f for f in facts if isinstance(f, MemoryLevelChanged)]
