"""What every check in the guest uses: commands, systemd's view of a unit, the journal, HTTP.

Runs inside the guest (Debian 12's python3, 3.11), as root, under the test unit. Nothing
here asserts: a check records what it saw (:class:`Facts`), and the host's tests judge it.
Waiting is for a state, with a deadline (:func:`wait_for`), never a bare sleep.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: The host's share, mounted at boot; results go to OUT.
SHARE = Path("/mnt/host")
OUT = SHARE / "out"
#: The checkout's files the checks use (deploy/, examples/), copied into the share.
CHECKOUT = SHARE / "checkout"
PROGRAMS = SHARE / "tests" / "system" / "guest" / "programs"
#: Units the checks write (vanish with the guest).
UNITS = Path("/run/systemd/system")
PYTHON = "/usr/bin/python3"
#: The user ``app`` the runner makes: the Containerfile's ``USER 10001``.
APP_UID = 10001
WARDEN = "/usr/local/bin/warden"


def config(share: Path = SHARE) -> dict[str, Any]:
    """What the host asked for: ``only`` (checks to run), ``breaks`` (sabotages)."""
    path = share / "config.json"
    return json.loads(path.read_text()) if path.exists() else {}


def broken(name: str, share: Path = SHARE) -> bool:
    """Whether the host asked to break this check's precondition on purpose (to show the
    check fails then); ``all`` breaks every one."""
    breaks = config(share).get("breaks", [])
    return name in breaks or "all" in breaks


def run(
    *argv: str, timeout: float = 120, check: bool = False, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
        stdin=subprocess.DEVNULL,
        env=None if env is None else {**os.environ, **env},
    )


def systemctl(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run("systemctl", *args, timeout=timeout)


def show(unit: str, *props: str) -> dict[str, str]:
    """``systemctl show -p ...``: the manager's own view of ``unit``."""
    out = run("systemctl", "show", unit, *(f"--property={p}" for p in props)).stdout
    return dict(line.partition("=")[::2] for line in out.splitlines() if "=" in line)


def daemon_reload() -> None:
    run("systemctl", "daemon-reload", check=True)


def write_unit(name: str, text: str) -> Path:
    UNITS.mkdir(parents=True, exist_ok=True)
    path = UNITS / name
    path.write_text(text)
    return path


def drop_in(unit: str, text: str, name: str = "break") -> Path:
    """An override for ``unit`` (a sabotage: the shipped file itself stays untouched)."""
    folder = UNITS / f"{unit}.d"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.conf"
    path.write_text(text)
    return path


def remove_units(*names: str) -> None:
    for name in names:
        run("systemctl", "stop", name)
        for path in (UNITS / name, Path("/etc/systemd/system") / name):
            path.unlink(missing_ok=True)
        shutil.rmtree(UNITS / f"{name}.d", ignore_errors=True)
        run("systemctl", "reset-failed", name)
    daemon_reload()


def journal(unit: str | None = None, *, since: float | None = None) -> list[dict[str, Any]]:
    """The journal's entries (``journalctl -o json --all``), of ``unit`` if given, received
    at or after ``since`` (this guest's monotonic clock, which journald stamps too)."""
    run("journalctl", "--sync")
    argv = ["journalctl", "-o", "json", "--all", "--no-pager", "-b"]
    if unit is not None:
        argv += ["-u", unit]
    entries = []
    for line in run(*argv).stdout.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        at = int(entry.get("__MONOTONIC_TIMESTAMP", "0")) / 1e6
        if since is None or at >= since:
            entry["at"] = at
            entries.append(entry)
    return entries


def warden_entries(unit: str, *, since: float | None = None) -> list[dict[str, Any]]:
    """warden's own records in the journal, with their fields (not journald's trusted ones,
    but ``_TRANSPORT``, ``_PID`` and ``_UID``)."""
    keep = ("_TRANSPORT", "_PID", "_UID", "at")
    return [
        {k: v for k, v in entry.items() if not k.startswith("_") or k in keep}
        for entry in journal(unit, since=since)
        if entry.get("SYSLOG_IDENTIFIER") == "warden"
    ]


def manager_lines(unit: str, *, since: float | None = None) -> list[str]:
    """What systemd itself said about ``unit`` (its own entries, from PID 1)."""
    return [
        str(e.get("MESSAGE"))
        for e in journal(unit, since=since)
        if e.get("_PID") == "1" and e.get("MESSAGE")
    ]


def program_lines(unit: str, *, since: float | None = None) -> list[str]:
    """What the unit's processes wrote to stdout/stderr (the journal's stream transport)."""
    return [
        str(e.get("MESSAGE"))
        for e in journal(unit, since=since)
        if e.get("_TRANSPORT") == "stdout" and isinstance(e.get("MESSAGE"), str)
    ]


def wait_for(predicate: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """Poll ``predicate`` until it returns something truthy; ``TimeoutError(what)`` after."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        time.sleep(0.05)


def http_get(port: int, path: str = "/", *, timeout: float = 30.0) -> tuple[int, str]:
    """One request on a new connection: (status, body); (0, error) when it failed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    except (OSError, http.client.HTTPException) as exc:
        return 0, f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (``/proc/PID/task/*/children``)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(w) for w in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def main_pid(unit: str) -> int:
    return int(show(unit, "MainPID").get("MainPID", "0") or 0)


def program_pid(unit: str, *, timeout: float = 30.0) -> int:
    """The pid of warden's program in ``unit`` (warden's one child)."""

    def found() -> int | None:
        pid = main_pid(unit)
        kids = children(pid) if pid else []
        return kids[0] if kids else None

    return wait_for(found, timeout=timeout, what=f"the program of {unit}")


def uid_of(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def listening(port: int) -> bool:
    """A TCP socket listens on ``port`` (``/proc/net/tcp``/``tcp6``, state 0A)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in list(f)[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    return True
    return False


def lines_of(path: Path) -> Iterator[str]:
    try:
        yield from path.read_text().splitlines()
    except OSError:
        return


class Facts(dict[str, Any]):
    """What one check saw, by name; written to the results as it goes."""

    def note(self, **facts: Any) -> None:
        self.update(facts)
