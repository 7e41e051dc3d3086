"""deploy/systemd/app.service and app.socket, exactly as the repository ships them.

The socket unit holds port 8000; the first connection starts the service; ``systemctl start``
returns only once warden said READY=1, after the program's own READY=1; ``systemctl reload``
upgrades the program under load; a program killed with SIGKILL is named by warden and the
unit restarts (``Restart=on-failure``); a clean end of the program is not restarted;
``systemctl stop`` ends within ``TimeoutStopSec`` with the program's exit status, an
in-flight request answered.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
import traceback
from pathlib import Path

from ._util import (
    CHECKOUT,
    Facts,
    broken,
    daemon_reload,
    drop_in,
    http_get,
    listening,
    main_pid,
    manager_lines,
    program_pid,
    remove_units,
    show,
    systemctl,
    wait_for,
    warden_entries,
)

LIMIT = 300
SERVICE, SOCKET = "app.service", "app.socket"
STATE = ("ActiveState", "SubState", "Result", "MainPID", "NRestarts", "ExecMainStatus")


def check(facts: Facts) -> None:
    for name in (SERVICE, SOCKET):
        shutil.copy(CHECKOUT / "deploy" / "systemd" / name, Path("/etc/systemd/system") / name)
    _break_on_purpose()
    daemon_reload()
    begin = time.monotonic()
    try:
        for step in (socket_activation, start_waits_for_gate, reload_upgrades, killed_program,
                     clean_end, stop, stop_stubborn):  # fmt: skip
            try:
                step(facts)
            except Exception:  # the next step starts from a state of its own
                facts[f"{step.__name__}_error"] = traceback.format_exc()
    finally:
        facts.note(journal=warden_entries(SERVICE, since=begin))
        facts.note(manager=manager_lines(SERVICE, since=begin))
        remove_units(SERVICE, SOCKET)


def _break_on_purpose() -> None:
    """Drop-ins that break each step's precondition (the shipped files stay as they are)."""
    command = next(
        line.partition("=")[2]
        for line in (CHECKOUT / "deploy" / "systemd" / SERVICE).read_text().splitlines()
        if line.startswith("ExecStart=")
    )
    if broken("units.gate"):  # READY=1 to systemd at once, not after the program's
        command = command.replace("--ready notify", "--ready none")
    if broken("units.reload"):  # SIGHUP goes to the program: no upgrade
        command = command.replace(" run ", " run --on-hup forward ")
    if broken("units.stop"):  # warden's SIGKILL cuts the request in flight
        command = command.replace("--stop-timeout 20s", "--stop-timeout 1s")
    extra = "Restart=no\n" if broken("units.killed") else ""
    if extra or command not in (CHECKOUT / "deploy" / "systemd" / SERVICE).read_text():
        drop_in(SERVICE, f"[Service]\nExecStart=\nExecStart={command}\n{extra}")


def socket_activation(facts: Facts) -> None:
    if not broken("units.socket"):  # broken: nothing holds the port
        systemctl("start", SOCKET)
    facts.note(
        activation_before={
            "socket": show(SOCKET, "ActiveState")["ActiveState"],
            "service": show(SERVICE, "ActiveState")["ActiveState"],
            "port_listening": listening(8000),
        }
    )
    started = time.monotonic()
    status, body = http_get(8000, "/", timeout=60)
    facts.note(
        activation_first_request={
            "status": status,
            "body": body,
            "seconds": time.monotonic() - started,
            **show(SERVICE, "ActiveState", "TriggeredBy", "MainPID"),
        }
    )


def start_waits_for_gate(facts: Facts) -> None:
    """A program 3 s slow to be ready: ``systemctl start`` must wait for it."""
    systemctl("stop", SERVICE)
    Path("/etc/app/start-delay").write_text("3\n")
    try:
        started = time.monotonic()
        done = systemctl("start", SERVICE)
        returned = time.monotonic()
        program = http_get(8000, "/readyz", timeout=2)
        health = http_get(9000, "/readyz", timeout=2)
    finally:
        Path("/etc/app/start-delay").unlink()
    ready = [
        e for e in warden_entries(SERVICE, since=started) if e.get("WARDEN_KIND") == "child.ready"
    ]
    facts.note(
        gate={
            "systemctl_rc": done.returncode,
            "seconds": returned - started,
            "program_readyz_at_return": program,
            "warden_readyz_at_return": health,
            "child_ready_at": ready[0]["at"] - started if ready else None,
            "returned_at": returned - started,
            **show(SERVICE, *STATE),
        }
    )


def reload_upgrades(facts: Facts) -> None:
    """``systemctl reload`` (SIGHUP to warden: an upgrade) under a load of new connections."""
    load = Load(port=8000, threads=4)
    load.start()
    try:
        wait_for(lambda: load.ok >= 20, timeout=60, what="20 requests answered before the reload")
        warden, old = main_pid(SERVICE), program_pid(SERVICE)
        started = time.monotonic()
        done = systemctl("reload", SERVICE)
        returned = time.monotonic()

        def finished() -> list[dict[str, str]]:
            entries = warden_entries(SERVICE, since=started)
            return [e for e in entries if e.get("WARDEN_KIND") == "upgrade.finished"]

        upgrade = wait_for(finished, timeout=90, what="warden's upgrade.finished")
        ok_at_end = load.ok
        wait_for(lambda: load.ok >= ok_at_end + 20, timeout=60, what="20 more requests after")
    finally:
        load.stop()
    facts.note(
        reload={
            "systemctl_rc": done.returncode,
            "systemctl_seconds": returned - started,
            "main_pid_before": warden,
            "main_pid_after": main_pid(SERVICE),
            "program_before": old,
            "program_after": program_pid(SERVICE),
            "upgrade": {k: v for k, v in upgrade[0].items() if k.startswith("WARDEN_")},
            "requests_ok": load.ok,
            "requests_failed": load.failed,
            "failures": load.errors[:5],
            **show(SERVICE, *STATE),
        }
    )


def killed_program(facts: Facts) -> None:
    """``kill -9`` of the program: warden names it and exits 137; Restart=on-failure."""
    warden, program = main_pid(SERVICE), program_pid(SERVICE)
    restarts = int(show(SERVICE, "NRestarts")["NRestarts"])
    started = time.monotonic()
    os.kill(program, signal.SIGKILL)

    def settled() -> bool:
        """Restarted, or ended for good (a unit that does not restart)."""
        state = show(SERVICE, "NRestarts", "ActiveState")
        restarted = int(state["NRestarts"]) > restarts and state["ActiveState"] == "active"
        return restarted or state["ActiveState"] in ("failed", "inactive")

    wait_for(settled, timeout=90, what="app.service restarted after its program's SIGKILL")
    exited = [
        e for e in warden_entries(SERVICE, since=started) if e.get("WARDEN_KIND") == "child.exited"
    ]
    facts.note(
        killed={
            "warden_before": warden,
            "program": program,
            "child_exited": exited[:1],
            "manager": manager_lines(SERVICE, since=started),
            "restarts_before": restarts,
            **show(SERVICE, *STATE),
        }
    )
    systemctl("start", SERVICE)
    restarts = int(show(SERVICE, "NRestarts")["NRestarts"])
    started = time.monotonic()
    systemctl("kill", "--signal=KILL", SERVICE)  # warden and its program at once
    wait_for(settled, timeout=90, what="app.service restarted after systemctl kill -s KILL")
    facts.note(
        unit_killed={
            "manager": manager_lines(SERVICE, since=started),
            "restarts_before": restarts,
            **show(SERVICE, *STATE),
        }
    )


def clean_end(facts: Facts) -> None:
    """The program's own clean exit (SIGTERM to it alone): warden exits 0, no restart."""
    wait_for(lambda: http_get(8000, "/readyz", timeout=5)[0] == 200, timeout=60, what="ready")
    restarts = int(show(SERVICE, "NRestarts")["NRestarts"])
    started = time.monotonic()
    # broken: the program's end is a SIGKILL, not a clean exit
    os.kill(program_pid(SERVICE), signal.SIGKILL if broken("units.clean_end") else signal.SIGTERM)
    wait_for(
        lambda: show(SERVICE, "ActiveState")["ActiveState"] in ("inactive", "failed"),
        timeout=60,
        what="app.service ended after its program's clean exit",
    )
    facts.note(
        clean_end={
            "restarts_before": restarts,
            "manager": manager_lines(SERVICE, since=started),
            **show(SERVICE, *STATE),
        }
    )


def stop(facts: Facts) -> None:
    """``systemctl stop`` with a request in flight: answered, stopped in time, exit 0."""
    systemctl("start", SERVICE)
    wait_for(lambda: http_get(8000, "/readyz", timeout=5)[0] == 200, timeout=60, what="ready")
    slow: list[tuple[int, str]] = []
    request = threading.Thread(target=lambda: slow.append(http_get(8000, "/slow?ms=2000")))
    request.start()
    program = program_pid(SERVICE)
    wait_for(lambda: _in_flight(program), timeout=30, what="the slow request in the program")
    started = time.monotonic()
    done = systemctl("stop", SERVICE)
    took = time.monotonic() - started
    request.join(30)
    facts.note(
        stop={
            "systemctl_rc": done.returncode,
            "seconds": took,
            "timeout_stop_sec": show(SERVICE, "TimeoutStopUSec")["TimeoutStopUSec"],
            "slow_request": slow[:1],
            "manager": manager_lines(SERVICE, since=started),
            **show(SERVICE, *STATE, "ExecMainCode"),
        }
    )


def stop_stubborn(facts: Facts) -> None:
    """A program that ignores SIGTERM: warden's ladder (``--stop-timeout 20s``) kills it, and
    the stop still ends within ``TimeoutStopSec=30s``, with 137 (128 + SIGKILL)."""
    Path("/etc/app/stubborn").write_text("1\n")
    # broken: systemd's own SIGKILL, at once: warden's ladder never runs
    override = drop_in(SERVICE, "[Service]\nKillSignal=SIGKILL\n", name="stubborn")
    if not broken("units.stubborn"):
        override.unlink()
    daemon_reload()
    try:
        systemctl("start", SERVICE)
        started = time.monotonic()
        done = systemctl("stop", SERVICE)
        took = time.monotonic() - started
    finally:
        Path("/etc/app/stubborn").unlink()
        override.unlink(missing_ok=True)
        daemon_reload()
    ladder = [
        (e.get("WARDEN_KIND"), e.get("MESSAGE"))
        for e in warden_entries(SERVICE, since=started)
        if str(e.get("WARDEN_KIND")).startswith("stop_ladder")
    ]
    facts.note(
        stubborn={
            "systemctl_rc": done.returncode,
            "seconds": took,
            "ladder": ladder,
            "manager": manager_lines(SERVICE, since=started),
            **show(SERVICE, *STATE, "ExecMainCode"),
        }
    )


def _in_flight(pid: int) -> bool:
    """``pid`` holds an accepted connection on port 8000 (the slow request reached it)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in list(f)[1:]:
                fields = line.split()
                port = int(fields[1].rsplit(":", 1)[1], 16)
                if fields[3] == "01" and port == 8000 and fields[9] in inodes:
                    return True
    return False


class Load:
    """Clients sending ``GET /`` on a new connection each, until stopped; counts failures."""

    def __init__(self, *, port: int, threads: int) -> None:
        self.port = port
        self.ok = 0
        self.failed = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client) for _ in range(threads)]
        self._lock = threading.Lock()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _client(self) -> None:
        while not self._stop.is_set():
            status, body = http_get(self.port, "/", timeout=30)
            with self._lock:
                if status == 200:
                    self.ok += 1
                else:
                    self.failed += 1
                    self.errors.append(f"{status} {body[:120]}")
