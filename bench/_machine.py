"""What a benchmark ran on: the machine, and the versions of the peers it measured."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def versions(packages: Sequence[str], wrk: str | None = None) -> str:
    """``name version`` of each installed package, then wrk's own version line if given."""
    found = []
    for package in packages:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found.append(f"{package} {importlib.metadata.version(package)}")
    if wrk is not None:
        out = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
        first = (out.stdout + out.stderr).splitlines()[:1]
        found.append(first[0].split(" Copyright")[0] if first else "wrk (unknown version)")
    return ", ".join(found)
