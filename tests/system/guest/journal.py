"""journald: warden's records as structured entries, and a long stop kept from being cut.

* ``warden run`` under a unit whose program never becomes ready: warden's records are native
  journal entries (``_TRANSPORT=journal``) with its fields (``WARDEN_KIND``, the facts' own
  data) and priorities (info 6, a failure 4), the program's own output a stream beside them.
* An entry too big for one datagram reaches journald whole (the sealed memfd).
* ``TimeoutStopSec=3s`` and a program whose stop takes 8 s: warden's
  ``EXTEND_TIMEOUT_USEC`` keeps systemd from cutting it.
"""

from __future__ import annotations

import logging
import time

from ._util import (
    PROGRAMS,
    PYTHON,
    WARDEN,
    Facts,
    broken,
    daemon_reload,
    journal,
    manager_lines,
    program_lines,
    remove_units,
    show,
    systemctl,
    warden_entries,
    write_unit,
)

LIMIT = 150


def check(facts: Facts) -> None:
    structured(facts)
    oversized(facts)
    extend_timeout(facts)


def structured(facts: Facts) -> None:
    unit = "t-journal.service"
    # broken: warden's stderr is not the journal's stream, so it does not write to journald
    elsewhere = "StandardError=null\n" if broken("journal.structured") else ""
    write_unit(
        unit,
        f"[Service]\nType=notify\nNotifyAccess=main\n{elsewhere}"
        f"ExecStart={WARDEN} run --ready notify --ready-timeout 3s -- {PYTHON} -c "
        "\"import time; print('a line of the program', flush=True); time.sleep(60)\"\n",
    )
    daemon_reload()
    try:
        begin = time.monotonic()
        done = systemctl("start", unit)
        facts.note(
            structured={
                "systemctl_rc": done.returncode,
                "entries": warden_entries(unit, since=begin),
                "program": program_lines(unit, since=begin),
                **show(unit, "Result", "ExecMainStatus", "StatusText"),
            }
        )
    finally:
        remove_units(unit)


def oversized(facts: Facts) -> None:
    """300 KiB in one record: more than an AF_UNIX datagram carries (EMSGSIZE)."""
    from warden.observe._journal import JournalHandler

    handler = JournalHandler(identifier="warden-oversized")
    size = 300 * 1024
    record = logging.LogRecord("warden", logging.WARNING, __file__, 1, "x" * size, None, None)
    if broken("journal.oversized"):
        handler._send_memfd = lambda entry: None  # type: ignore[method-assign]
    handler.emit(record)
    handler.close()
    found = [e for e in journal() if e.get("SYSLOG_IDENTIFIER") == "warden-oversized"]
    facts.note(
        oversized={
            "sent": size,
            "received": [len(e.get("MESSAGE") or "") for e in found],
            "priority": [e.get("PRIORITY") for e in found],
            "dropped": handler.dropped,
        }
    )


def extend_timeout(facts: Facts) -> None:
    unit = "t-extend.service"
    command = f"{WARDEN} run --ready notify --stop-timeout 20s -- {PYTHON} {PROGRAMS}/slowstop.py 8"
    kind = "notify"
    if broken("journal.extend"):  # systemd hears nothing from warden
        command, kind = f"/usr/bin/env -u NOTIFY_SOCKET {command}", "exec"
    write_unit(
        unit, f"[Service]\nType={kind}\nNotifyAccess=main\nTimeoutStopSec=3s\nExecStart={command}\n"
    )
    daemon_reload()
    try:
        systemctl("start", unit)
        begin = time.monotonic()
        done = systemctl("stop", unit)
        facts.note(
            extend={
                "systemctl_rc": done.returncode,
                "seconds": time.monotonic() - begin,
                "program": program_lines(unit, since=begin),
                "manager": manager_lines(unit, since=begin),
                **show(unit, "Result", "ExecMainCode", "ExecMainStatus", "TimeoutStopUSec"),
            }
        )
    finally:
        remove_units(unit)
