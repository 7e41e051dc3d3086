"""The guest's side of the system suite: set warden up, run every check, write the results.

systemd runs this as the test unit once the guest is up (``/mnt/host/run.sh``), as root;
the guest powers off when it returns. warden is the checkout's, installed by the host into
``/mnt/host/site`` (a ``.pth`` file in the image puts it on python3's path). Each check
module has ``check(facts)``; what it saw goes to ``out/results.json`` after each one (so a
check that hangs loses only itself), the whole journal to ``out/journal.txt`` at the end.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import signal
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

from ._util import APP_UID, CHECKOUT, OUT, PROGRAMS, PYTHON, SHARE, WARDEN, Facts, config, run

#: In boot order; each is a module of this package with ``check(facts)`` and ``LIMIT``.
CHECKS = ("units", "watchdog", "journal", "privdrop", "memory", "container")

WARDEN_SCRIPT = f"""\
#!{PYTHON}
# warden from the checkout (installed into the host's share), as its console script is.
import sys
from warden.cli import main
sys.exit(main())
"""

#: app.service runs /usr/local/bin/app: the repository's example service, on the socket the
#: unit hands over. /etc/app/start-delay (seconds) makes its start slow, /etc/app/stubborn
#: makes it a program that ignores SIGTERM, as checks need.
APP_SCRIPT = f"""\
#!/bin/sh
[ -f /etc/app/start-delay ] && sleep "$(cat /etc/app/start-delay)"
[ -f /etc/app/stubborn ] && exec {PYTHON} {PROGRAMS}/notify_ready.py --ignore-term
exec {PYTHON} {CHECKOUT}/examples/http_service.py --data /var/lib/app/jobs.json "$@"
"""


def install() -> None:
    # The test programs import their helpers as tests.system.guest.programs.* (from the
    # share): on every python3's path in the guest, and in containers (the same root).
    Path("/usr/local/lib/python3.11/dist-packages/warden-tests.pth").write_text(f"{SHARE}\n")
    for path, text in ((WARDEN, WARDEN_SCRIPT), ("/usr/local/bin/app", APP_SCRIPT)):
        Path(path).write_text(text)
        Path(path).chmod(0o755)
    # The unprivileged user the checks run programs as: the Containerfile's (USER 10001).
    run("useradd", "--uid", str(APP_UID), "--user-group", "--create-home", "app", check=True)
    Path("/var/lib/app").mkdir(parents=True, exist_ok=True)
    Path("/etc/app").mkdir(parents=True, exist_ok=True)


def guest_facts() -> dict[str, Any]:
    cgroup = Path("/sys/fs/cgroup")
    return {
        "pid1": Path("/proc/1/comm").read_text().strip(),
        "systemd": run("systemctl", "--version").stdout.splitlines()[0],
        "kernel": platform.release(),
        "python": platform.python_version(),
        "cgroup_fs": run("stat", "-fc", "%T", str(cgroup)).stdout.strip(),
        "controllers": (cgroup / "cgroup.controllers").read_text().split(),
        "psi": Path("/proc/pressure/memory").exists(),
        "warden": run(WARDEN, "--version").stdout.strip(),
        "runc": run("runc", "--version").stdout.splitlines()[:1],
        "uptime_at_start": time.monotonic(),
    }


class _TimeUp(Exception):
    pass


def _time_up(signum: int, frame: FrameType | None) -> None:
    raise _TimeUp("the check ran out of its time in the guest")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    asked = config()
    only = asked.get("only") or list(CHECKS)
    install()
    results: dict[str, Any] = {"guest": guest_facts(), "checks": {}}
    save = OUT / "results.json"
    save.write_text(json.dumps(results, indent=1))
    signal.signal(signal.SIGALRM, _time_up)
    for name in CHECKS:
        if name not in only:
            continue
        module = importlib.import_module(f"{__package__}.{name}")
        facts = Facts()
        started = time.monotonic()
        print(f"warden-vmtest: {name} ...", flush=True)
        signal.alarm(int(module.LIMIT))
        try:
            module.check(facts)
        except BaseException as exc:
            facts["error"] = "".join(traceback.format_exception(exc))
        finally:
            signal.alarm(0)
        took = time.monotonic() - started
        print(f"warden-vmtest: {name} took {took:.1f} s", flush=True)
        results["checks"][name] = {"seconds": took, "facts": facts}
        save.write_text(json.dumps(results, indent=1, default=str))
    results["guest"]["uptime_at_end"] = time.monotonic()
    save.write_text(json.dumps(results, indent=1, default=str))
    with (OUT / "journal.txt").open("w") as out:
        run("journalctl", "--sync")
        out.write(run("journalctl", "-b", "--no-pager", "-o", "short-monotonic").stdout)
    os.sync()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
