"""A program that drops privileges still gets its READY=1 through warden to systemd.

* ``User=app`` in the unit: warden and the program both run as that user.
* ``setpriv`` in the command: warden runs as root, the program as ``app``.
"""

from __future__ import annotations

import time

from ._util import (
    APP_UID,
    PROGRAMS,
    PYTHON,
    WARDEN,
    Facts,
    broken,
    daemon_reload,
    main_pid,
    program_pid,
    remove_units,
    show,
    systemctl,
    uid_of,
    warden_entries,
    write_unit,
)

LIMIT = 120
SETPRIV = f"/usr/bin/setpriv --reuid={APP_UID} --regid={APP_UID} --clear-groups"


def check(facts: Facts) -> None:
    program = f"{PYTHON} {PROGRAMS}/notify_ready.py"
    # Broken: the program's READY=1 goes nowhere (User=); --notify-access all keeps warden's
    # notify directory to warden's uid alone, which the program left (setpriv).
    user, setpriv = "--ready notify -- ", f"--ready notify -- {SETPRIV} "
    if broken("privdrop.user"):
        user = "--ready notify --ready-timeout 5s -- /usr/bin/env -u NOTIFY_SOCKET "
    if broken("privdrop.setpriv"):
        setpriv = "--notify-access all --ready-timeout 5s " + setpriv
    for name, lines, command in (
        ("user", "User=app\n", user + program),
        ("setpriv", "", setpriv + program),
    ):
        unit = f"t-{name}.service"
        write_unit(
            unit,
            f"[Service]\nType=notify\nNotifyAccess=main\n{lines}TimeoutStartSec=20s\n"
            f"ExecStart={WARDEN} run {command}\n",
        )
        daemon_reload()
        try:
            begin = time.monotonic()
            done = systemctl("start", unit)
            state = show(unit, "ActiveState", "Result", "StatusText")
            warden = main_pid(unit)
            child = program_pid(unit, timeout=5) if state["ActiveState"] == "active" else None
            facts.note(
                **{
                    name: {
                        "systemctl_rc": done.returncode,
                        "seconds": time.monotonic() - begin,
                        "warden_uid": uid_of(warden) if warden else None,
                        "program_uid": uid_of(child) if child else None,
                        "journal": [
                            (e.get("WARDEN_KIND"), e.get("MESSAGE"))
                            for e in warden_entries(unit, since=begin)
                        ],
                        **state,
                    }
                }
            )
        finally:
            remove_units(unit)
