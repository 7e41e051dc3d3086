"""The container checks on this host: runc on cgroup v1 (hybrid), next to the guest's v2.

Containers here meet what a node with the v1 memory controller gives them: the cgroup
namespace's root is the container's memory cgroup, mounted read-only. The bundle's root
filesystem is the guest's own Debian one (the image cache's), under an overlay so the cache
never changes; the checks are the guest's (``guest/container.py``), run from here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .guest._util import Facts
from .guest.container import Runtime, containerfile, install_image, run_all


def runc_missing() -> str | None:
    if shutil.which("runc") is None:
        return "the container checks on this host need runc: apt-get install runc"
    return None


def run_on_host(share: Path, cache: Path) -> dict[str, Any]:
    """Every container check with runc on this host; what they saw (as JSON would carry it,
    like the guest's results; also in ``SHARE/host-runc/results.json``)."""
    work = share / "host-runc"
    bundle = work / "bundle"
    rootfs = bundle / "rootfs"
    for folder in (work / "upper", work / "work", rootfs):
        folder.mkdir(parents=True)
    subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o",
         f"lowerdir={cache / 'rootfs'},upperdir={work / 'upper'},workdir={work / 'work'}",
         str(rootfs)],
        check=True,
    )  # fmt: skip
    facts = Facts()
    try:
        image = containerfile(share)
        install_image(rootfs, share, image)
        run_all(facts, Runtime(share, bundle), image, logs=work)
    except Exception as exc:
        facts["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        subprocess.run(["umount", str(rootfs)], check=False)
    (work / "results.json").write_text(json.dumps(facts, indent=1, default=str))
    return json.loads((work / "results.json").read_text())  # type: ignore[no-any-return]
