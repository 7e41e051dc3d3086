"""systemd's watchdog (``WatchdogSec=``) over warden.

* A healthy ``warden run`` pings from its event loop: systemd sees the pings
  (``WatchdogTimestamp`` moves) and never acts.
* A service on warden's library whose event loop blocks (a handler that hangs) misses them:
  ``Result=watchdog``.
* A ``warden run`` that stops answering (SIGSTOP: its loop cannot run) the same.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

from ._util import (
    PROGRAMS,
    PYTHON,
    WARDEN,
    Facts,
    broken,
    daemon_reload,
    main_pid,
    remove_units,
    show,
    systemctl,
    wait_for,
    warden_entries,
    write_unit,
)

LIMIT = 180
STATE = ("ActiveState", "SubState", "Result", "MainPID", "NRestarts", "WatchdogUSec")
UNIT = """\
[Service]
Type=notify
NotifyAccess=main
WatchdogSec=2s
TimeoutStopSec=5s
ExecStart={command}
"""


def check(facts: Facts) -> None:
    healthy(facts)
    blocked_loop(facts)
    stopped_warden(facts)


def healthy(facts: Facts) -> None:
    """Ten watchdog pings' worth of a healthy warden: no restart, the pings seen."""
    unit = "t-wd-healthy.service"
    env = "/usr/bin/env -u WATCHDOG_USEC " if broken("watchdog.healthy") else ""  # no pings
    command = f"{env}{WARDEN} run --ready notify -- {PYTHON} {PROGRAMS}/notify_ready.py"
    write_unit(unit, UNIT.format(command=command))
    daemon_reload()
    try:
        started = systemctl("start", unit)
        first = main_pid(unit)
        pings: set[str] = set()

        def ten_pings_or_ended() -> bool:
            state = show(unit, "WatchdogTimestampMonotonic", "ActiveState")
            pings.add(state["WatchdogTimestampMonotonic"])
            return len(pings) > 10 or state["ActiveState"] != "active"

        wait_for(ten_pings_or_ended, timeout=60, what="ten watchdog pings")
        facts.note(
            healthy={
                "systemctl_rc": started.returncode,
                "pings_seen": len(pings) - 1,
                "main_pid_before": first,
                **show(unit, *STATE),
            }
        )
    finally:
        remove_units(unit)


def blocked_loop(facts: Facts) -> None:
    """A library service whose loop blocks 1 s after it is ready: systemd's watchdog acts."""
    unit = "t-wd-blocked.service"
    block = "" if broken("watchdog.blocked") else " --block-after 1"
    write_unit(unit, UNIT.format(command=f"{PYTHON} {PROGRAMS}/blocking_service.py{block}"))
    daemon_reload()
    try:
        begin = time.monotonic()
        systemctl("start", unit)
        _wait_ended(unit, timeout=30)
        facts.note(
            blocked={
                "seconds": time.monotonic() - begin,
                "journal": [e.get("WARDEN_KIND") for e in warden_entries(unit, since=begin)],
                **show(unit, *STATE),
            }
        )
    finally:
        remove_units(unit)


def stopped_warden(facts: Facts) -> None:
    """``warden run`` stopped (SIGSTOP) once ready: its pings stop, systemd acts."""
    unit = "t-wd-stopped.service"
    command = f"{WARDEN} run --ready notify -- {PYTHON} {PROGRAMS}/notify_ready.py"
    write_unit(unit, UNIT.format(command=command))
    daemon_reload()
    try:
        systemctl("start", unit)
        begin = time.monotonic()
        if not broken("watchdog.stopped"):
            os.kill(main_pid(unit), signal.SIGSTOP)
        _wait_ended(unit, timeout=30)
        facts.note(stopped={"seconds": time.monotonic() - begin, **show(unit, *STATE)})
    finally:
        remove_units(unit)


def _wait_ended(unit: str, *, timeout: float) -> None:
    """Until ``unit`` is no longer active (or ``timeout`` passed: a check that must fail)."""
    with contextlib.suppress(TimeoutError):
        wait_for(
            lambda: show(unit, "ActiveState")["ActiveState"] in ("failed", "inactive"),
            timeout=timeout,
            what=f"{unit} ended",
        )
