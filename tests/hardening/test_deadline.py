"""Items 3 and 4 (lifecycle part): the hard deadline holds even when C code holds the GIL, and
a forced exit first runs the hooks that kill what the process started."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from warden.lifecycle._last_resort import MARGIN

GIL_HOG = """
import re, sys, warden

def stop():
    print("stopping", flush=True)
    re.match(r"(a+)+$", "a" * 28 + "b")  # about 14 s in C, holding the GIL throughout

lc = warden.Lifecycle(shutdown_timeout=2, handle_signals=False)
lc.add("hog", stop=stop)

async def main():
    lc.request_stop("test")

sys.exit(lc.run(main))
"""

HOOKED = """
import os, sys, time, warden

lc = warden.Lifecycle(shutdown_timeout=0.5, handle_signals=False)
lc.add("sleepy", stop=lambda: time.sleep(60))
lc.on_forced_exit(lambda: os.write(1, b"hook ran\\n"))

async def main():
    lc.request_stop("test")

sys.exit(lc.run(main))
"""


def _run(code: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    script = tmp_path / "app.py"
    script.write_text(code)
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=40, check=False
    )
    return result, time.monotonic() - began


def test_c_code_holding_the_gil_cannot_outlast_the_deadline(tmp_path: Path) -> None:
    result, took = _run(GIL_HOG, tmp_path)
    assert "stopping" in result.stdout
    # The guard could not run; the kernel's timer killed the process, MARGIN after the
    # deadline (slack for interpreter start-up on a loaded machine).
    assert result.returncode == -9, result.stderr
    assert took < 2 + MARGIN + 3.0


def test_a_forced_exit_runs_its_hooks_and_keeps_124(tmp_path: Path) -> None:
    result, _ = _run(HOOKED, tmp_path)
    assert result.returncode == 124
    assert result.stdout == "hook ran\n"
    assert "shutdown deadline of 0.5s exceeded" in result.stderr
    assert "still stopping: component 'sleepy'" in result.stderr
