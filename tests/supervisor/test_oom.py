"""warden lowers its own oom_score_adj as far as allowed; the child keeps the original."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# Runs in a fresh interpreter: the test process's own score is not touched. Starting from 500
# (raising is always allowed) makes the search for the lowest allowed value do real work
# whether or not this machine grants CAP_SYS_RESOURCE.
_SCRIPT = textwrap.dedent(
    """
    import json, os, signal
    from pathlib import Path
    from warden.supervisor._events import OomScoreAdjusted
    from warden.supervisor.process._footprint import OomScoreGuard
    from warden.supervisor.process._spawn import spawn_child

    Path("/proc/self/oom_score_adj").write_text("500")
    guard = OomScoreGuard()
    lowered = guard.protect()
    with guard.child_defaults():
        pid = spawn_child(["sleep", "30"])
    child = int(Path(f"/proc/{pid}/oom_score_adj").read_text())
    own = int(Path("/proc/self/oom_score_adj").read_text())
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    print(json.dumps(dict(original=guard.original, lowered=lowered, own=own, child=child,
                          describe=OomScoreAdjusted(original=guard.original,
                                                    current=guard.current).detail)))
    """
)


def test_lowered_for_warden_not_for_the_child() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=30, check=True
    )
    data = json.loads(result.stdout)
    assert data["original"] == 500
    assert -1000 <= data["lowered"] < 500
    assert data["own"] == data["lowered"]
    assert data["child"] == 500
    assert str(data["lowered"]) in data["describe"]
