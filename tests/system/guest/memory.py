"""cgroup v2's memory controller, for real.

* ``MemoryMax=`` on a unit and ``warden.watch_memory`` in the service: the sentinel reads the
  unit's v2 files, is woken by the kernel (``memory.events`` as page cache is reclaimed at
  the limit, or the PSI trigger), passes warn, high and critical and stops the leak before
  the OOM killer.
* ``warden run --memory-limit`` as ``User=app`` under ``Delegate=yes``: the program in a
  cgroup of its own under the unit's; a ramp that ignores its stop signal is OOM-killed and named
  ``oom-killed`` (exit 137) from ``memory.events``; a ``kill -9`` is not; a ramp that obeys
  is stopped before the kill.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from ._util import (
    PROGRAMS,
    PYTHON,
    WARDEN,
    Facts,
    broken,
    children,
    daemon_reload,
    main_pid,
    manager_lines,
    program_lines,
    remove_units,
    show,
    systemctl,
    wait_for,
    warden_entries,
    write_unit,
)

LIMIT = 240
STATE = ("ActiveState", "Result", "ExecMainCode", "ExecMainStatus")
CGROUP = Path("/sys/fs/cgroup/system.slice")


def check(facts: Facts) -> None:
    library(facts)
    for case in ("oom", "kill", "ramp"):
        delegated(facts, case)


def _memory_entries(unit: str, since: float) -> list[dict[str, Any]]:
    keep = ("child.exited", "memory.", "child.started")
    return [
        e for e in warden_entries(unit, since=since) if str(e.get("WARDEN_KIND")).startswith(keep)
    ]


def _wait_ended(unit: str, timeout: float) -> None:
    wait_for(
        lambda: show(unit, "ActiveState")["ActiveState"] in ("inactive", "failed"),
        timeout=timeout,
        what=f"{unit} ended",
    )


def library(facts: Facts) -> None:
    unit = "t-mem-lib.service"
    report = Path("/run/t-mem-lib.json")
    events = Path("/run/t-mem-lib.events")
    stop = " --no-stop" if broken("memory.library") else ""
    write_unit(
        unit,
        "[Service]\nType=notify\nMemoryMax=128M\nMemorySwapMax=0\n"
        f"ExecStart={PYTHON} {PROGRAMS}/memory_service.py --cache-mib 48 --mib-per-second 16 "
        f"--report {report}{stop}\n"
        f"ExecStopPost=/bin/sh -c 'cat {CGROUP}/{unit}/memory.events > {events}'\n",
    )
    daemon_reload()
    try:
        begin = time.monotonic()
        systemctl("start", unit)
        _wait_ended(unit, 120)
        facts.note(
            library={
                "report": json.loads(report.read_text()) if report.exists() else None,
                "memory_events": events.read_text().split() if events.exists() else None,
                "journal": _memory_entries(unit, begin),
                "manager": manager_lines(unit, since=begin),
                **show(unit, *STATE),
            }
        )
    finally:
        remove_units(unit)


def delegated(facts: Facts, case: str) -> None:
    unit = f"t-delegate-{case}.service"
    events = Path(f"/run/{unit}.events")
    program = (
        f"{PYTHON} {PROGRAMS}/"
        + {
            "oom": "ramp.py --ignore-term",
            "kill": "notify_ready.py",
            "ramp": "ramp.py",
        }[case]
    )
    # warden runs as app: only the delegation lets it make cgroups below the unit's.
    delegate = "" if broken("memory.delegate") else "Delegate=yes\n"
    write_unit(
        unit,
        f"[Service]\nType=notify\nNotifyAccess=main\nUser=app\n{delegate}"
        f"ExecStart={WARDEN} run --memory-limit 64M --ready notify -- {program}\n"
        f"ExecStopPost=+/bin/sh -c 'cat {CGROUP}/{unit}/memory.events > {events}'\n",
    )
    daemon_reload()
    try:
        begin = time.monotonic()
        done = systemctl("start", unit)
        warden = main_pid(unit)
        kids = children(warden) if warden else []
        tree = {
            "warden": _cgroup_of(warden),
            "program": _cgroup_of(kids[0]) if kids else None,
            "program_memory_max": _read(_cgroup_of(kids[0]), "memory.max") if kids else None,
        }
        if case == "kill" and kids:
            os.kill(kids[0], signal.SIGKILL)
        _wait_ended(unit, 90)
        facts.note(
            **{
                f"delegate_{case}": {
                    "systemctl_rc": done.returncode,
                    "tree": tree,
                    "memory_events": events.read_text().split() if events.exists() else None,
                    "journal": _memory_entries(unit, begin),
                    "program": program_lines(unit, since=begin),
                    "manager": manager_lines(unit, since=begin),
                    **show(unit, *STATE),
                }
            }
        )
    finally:
        remove_units(unit)


def _cgroup_of(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cgroup").read_text().strip().partition("::")[2]
    except OSError:
        return None


def _read(cgroup: str | None, name: str) -> str | None:
    if cgroup is None:
        return None
    try:
        return Path("/sys/fs/cgroup" + cgroup, name).read_text().strip()
    except OSError:
        return None
