"""Zero-downtime upgrades end to end: a real warden, real releases, real HTTP traffic.

Each "release" is one script whose behaviour comes from a file the test rewrites between
upgrades (what a deploy does to the code on disk): ``v1``/``v2`` serve and say READY=1,
``crash`` exits 3 at start, ``hang`` never says READY=1, ``deaf`` says it and never answers,
``gated FIFO`` waits for the test before it says READY=1, ``stubborn`` ignores SIGTERM. A load
thread sends requests over new connections the whole time and counts every failure.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.supervisor._socket_peers import http_get
from tests.supervisor._systemd_peers import Manager, closing_reason, make_fifo, release
from tests.supervisor.conftest import (
    DEADLINE,
    JumpedWarden,
    Processes,
    Warden,
    proc_state,
    wait_until,
)

RELEASE = """\
import os, select, signal, socket, sys, time
from pathlib import Path

words = Path(sys.argv[1]).read_text().split()
name = words[0]

# SIGTERM only writes to the wakeup pipe: the loop sees it between requests, never in one.
# In place before "started" (a test may send SIGTERM the moment it reads that line), except
# for a gated release: SIGTERM kills it at its gate.
def on_sigterm():
    global wakeup
    wakeup, wakeup_w = os.pipe()
    os.set_blocking(wakeup_w, False)
    signal.set_wakeup_fd(wakeup_w)
    signal.signal(signal.SIGTERM, signal.SIG_IGN if name == "stubborn" else lambda *_: None)
if name != "gated":
    on_sigterm()
print(f"started {name} {os.getpid()}", flush=True)
if name == "crash":
    sys.exit(3)
if name == "exit0":
    sys.exit(0)
if name == "family" and os.fork() == 0:  # a worker in the same process group
    signal.signal(signal.SIGTERM, lambda *_: print(f"worker {os.getpid()} got SIGTERM", flush=True))
    signal.pause()
    sys.exit(0)
if name == "gated":
    with open(words[1]) as fifo:  # blocks until the test opens the other end
        fifo.read()
    on_sigterm()

# Every socket handed over (one per --listen), as gunicorn
# and warden.listen_fds() serve them.
listeners = [socket.socket(fileno=3 + i) for i in range(int(os.environ.get("LISTEN_FDS", "1")))]
for listener in listeners:
    listener.setblocking(False)
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.connect(os.environ["NOTIFY_SOCKET"])
if name != "hang":
    notify.send(b"READY=1")
if name == "flaky":
    sys.exit(1)
# "late S": serves, then exits 1 S seconds after READY=1; "sick S": answers 500 from S seconds
# after READY=1; "fitful S": from then on, 500 to every other request (one worker of two
# hung); "wedge S": stops its watchdog pings S seconds after READY=1 (still serving).
after = float(words[1]) if name in ("late", "sick", "fitful", "wedge") else None
answered = 0
ready_at = time.monotonic()
last_ping = 0.0
while True:
    timeout = 0.05 if after is not None or "WATCHDOG_USEC" in os.environ else None
    watched = [wakeup] if name == "deaf" else [*listeners, wakeup]
    readable = select.select(watched, [], [], timeout)[0]
    if wakeup in readable:
        break
    late = after is not None and time.monotonic() - ready_at >= after
    if name == "late" and late:
        print(f"crashing {name} {os.getpid()}", flush=True)
        sys.exit(1)
    if "WATCHDOG_USEC" in os.environ and not (name == "wedge" and late):
        if time.monotonic() - last_ping > int(os.environ["WATCHDOG_USEC"]) / 4e6:
            notify.send(b"WATCHDOG=1")
            last_ping = time.monotonic()
    for listener in readable:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:  # the other release took it
            continue
        conn.setblocking(True)
        with conn:
            conn.recv(65536)
            answered += 1
            fitful = name == "fitful" and late and answered % 2 == 0
            broken = name == "err500" or (name == "sick" and late) or fitful
            status = "500 Internal Server Error" if broken else "200 OK"
            body = f"{name} {os.getpid()}\\n".encode()
            head = f"HTTP/1.1 {status}\\r\\nContent-Length: {len(body)}\\r\\n"
            conn.sendall(head.encode() + b"Connection: close\\r\\n\\r\\n" + body)
print(f"stopped {name} {os.getpid()}", flush=True)
"""


class Load:
    """Requests over a new connection each, back to back on a thread, until stopped."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.answers: list[str] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status, body = http_get(("127.0.0.1", self.port), "/")
            except (OSError, http.client.HTTPException) as exc:  # IncompleteRead: cut short
                self.failures.append(repr(exc))
                continue
            if status != 200:
                self.failures.append(f"status {status}")
            else:
                self.answers.append(body.split()[0])

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(DEADLINE)

    def wait_for(self, release_name: str) -> None:
        """Until some answer after now comes from ``release_name``."""
        start = len(self.answers)
        wait_until(lambda: release_name in self.answers[start:], f"an answer from {release_name}")


class Service:
    """A warden serving the release script on a loopback port, with a control socket."""

    def __init__(
        self,
        procs: Processes,
        *options: str,
        env: dict[str, str] | None = None,
        port: int = 0,
        ready: str = "notify",
        jumped: bool = False,
    ):
        self.procs = procs
        self.release_file = procs.tmp_path / "release"
        self.deploy("v1")
        script = procs.script("release.py", RELEASE)
        run = procs.jumped if jumped else procs.warden  # jumped: on a clock the test moves
        self.warden: Warden = run(
            "--listen",
            f"tcp://127.0.0.1:{port}",
            "--ready",
            ready,
            # No confirmation window unless a test asks for one (later options win): these
            # tests are about the steps around it, and each window would add its length.
            "--upgrade-confirm",
            "0",
            *options,
            "--",
            script,
            str(self.release_file),
            env=env,
        )
        self.first = self.started("v1")
        sockets = self.status()["sockets"]
        assert isinstance(sockets, list)
        held = sockets[0]
        match = re.search(r"tcp://127\.0\.0\.1:(\d+)", held)
        assert match, held
        self.port = int(match.group(1))

    def deploy(self, *words: str) -> None:
        self.release_file.write_text(" ".join(words))

    def started(self, name: str, nth: int = 1) -> int:
        """The pid of the ``nth`` release called ``name`` to start (waits for it)."""
        pattern = f"^started {name} (\\d+)$"
        wait_until(lambda: self.warden.out.count(pattern) >= nth, f"release {name} started")
        pids = [int(m.group(1)) for line in self.warden.out.lines if (m := re.match(pattern, line))]
        self.procs.track(pids[nth - 1])
        return pids[nth - 1]

    def control(self, command: str) -> dict[str, object]:
        return control(self.procs.control, command)

    def upgrade_to(self, *release: str, ok: bool) -> tuple[dict[str, object], int]:
        """Deploy ``release`` and upgrade to it: the reply's upgrade record, the new pid."""
        self.deploy(*release)
        reply = self.control("upgrade")
        new = self.started(release[0])
        assert reply["ok"] is ok, reply
        upgrade = reply["upgrade"]
        assert isinstance(upgrade, dict)
        assert upgrade["result"] == ("ok" if ok else "failed")
        assert upgrade["new_pid"] == new
        return upgrade, new

    def jump(self, seconds: float) -> float:
        """Move warden's clock (a ``jumped`` service's): see :meth:`JumpedWarden.jump`."""
        assert isinstance(self.warden, JumpedWarden), "Service(..., jumped=True) only"
        return self.warden.jump(seconds)

    def status(self) -> dict[str, object]:
        reply = self.control("status")
        assert reply["ok"] is True, reply
        status = reply["status"]
        assert isinstance(status, dict)
        return status

    def program(self) -> dict[str, object]:
        program = self.status()["program"]
        assert isinstance(program, dict)
        return program

    def upgrades(self) -> dict[str, object]:
        upgrade = self.status()["upgrade"]
        assert isinstance(upgrade, dict)
        return upgrade

    def stop(self) -> int:
        self.warden.kill(signal.SIGTERM)
        return self.warden.wait()


def control(path: Path, command: str, timeout: float = DEADLINE) -> dict[str, object]:
    """One request on the control socket, as the protocol says: a JSON line each way."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps({"command": command}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    reply = json.loads(data)
    assert isinstance(reply, dict)
    return reply


@pytest.fixture
def service(procs: Processes) -> Iterator[Service]:
    made = Service(procs)
    yield made
    if made.warden.proc.poll() is None:
        made.stop()


def gone(pid: int) -> bool:
    return proc_state(pid) in (None, "Z")


def test_upgrade_replaces_the_program_without_a_failed_request(service: Service) -> None:
    with Load(service.port) as load:
        load.wait_for("v1")
        upgrade, new = service.upgrade_to("v2", ok=True)
        assert upgrade["old_pid"] == service.first
        assert upgrade["coalesced"] is False
        ready_after, duration = upgrade["ready_after"], upgrade["duration"]
        assert isinstance(ready_after, float) and isinstance(duration, float)
        assert 0 < ready_after <= duration
        # The reply comes once the old release is gone: it drained and ended by itself.
        assert gone(service.first)
        service.warden.out.wait_for(f"^stopped v1 {service.first}$")
        load.wait_for("v2")
    assert load.failures == []
    assert "v1" in load.answers and load.answers[-1] == "v2"
    program = service.program()
    assert (program["pid"], program["state"], program["restarts"]) == (new, "ready", 0)


def test_release_that_crashes_at_start_leaves_the_old_one_serving(service: Service) -> None:
    with Load(service.port) as load:
        load.wait_for("v1")
        upgrade, _ = service.upgrade_to("crash", ok=False)
        detail = str(upgrade["detail"])
        assert "exited(3)" in detail and f"pid {service.first} keeps serving" in detail
        load.wait_for("v1")
        # Nothing else changed: a later good release goes through.
        service.deploy("v2")
        assert service.control("upgrade")["ok"] is True
        load.wait_for("v2")
    assert load.failures == []
    assert "crash" not in load.answers
    upgrades = service.upgrades()
    assert (upgrades["ok"], upgrades["failed"]) == (1, 1)


def test_release_never_ready_is_killed_after_the_ready_timeout(procs: Processes) -> None:
    service = Service(procs, "--ready-timeout", "1s")
    with Load(service.port) as load:
        load.wait_for("v1")
        upgrade, hung = service.upgrade_to("hang", ok=False)
        assert "failed to become ready within 1s" in str(upgrade["detail"])
        assert gone(hung)  # killed before the reply
        load.wait_for("v1")
    # It accepted on the shared socket all along without saying READY=1; it was stopped with
    # SIGTERM (then SIGKILL), so even what it had accepted was answered.
    assert load.failures == []
    program = service.program()
    assert (program["pid"], program["state"]) == (service.first, "ready")
    assert service.stop() == 0


def test_two_upgrade_requests_at_once_make_one_upgrade(procs: Processes) -> None:
    fifo = make_fifo(procs.tmp_path / "check")
    service = Service(procs, "--upgrade-check", f"cat {fifo}")  # blocks until released
    service.deploy("v2")
    replies: list[dict[str, object]] = []
    askers = [
        threading.Thread(target=lambda: replies.append(service.control("upgrade")))
        for _ in range(2)
    ]
    for asker in askers:
        asker.start()
    wait_until(lambda: service.upgrades()["waiting"] == 2, "both requests in")
    assert service.program()["state"] == "upgrading"
    release(fifo)
    for asker in askers:
        asker.join(DEADLINE)
    new = service.started("v2")
    upgrades = [reply["upgrade"] for reply in replies]
    assert all(isinstance(u, dict) and u["new_pid"] == new for u in upgrades)
    assert sorted(bool(u["coalesced"]) for u in upgrades if isinstance(u, dict)) == [False, True]
    assert service.warden.out.count("^started v2 ") == 1
    assert service.upgrades()["ok"] == 1


def test_request_after_the_new_release_started_gets_an_upgrade_of_its_own(
    service: Service,
) -> None:
    """Code deployed after an upgrade spawned its release is not in that release: a request
    then is queued as one more upgrade (and requests meanwhile join that one)."""
    fifo = make_fifo(service.procs.tmp_path / "gate")
    service.deploy("gated", str(fifo))
    replies: list[dict[str, object]] = []

    def ask() -> None:
        replies.append(service.control("upgrade"))

    first = threading.Thread(target=ask)
    first.start()
    gated = service.started("gated")
    service.deploy("v3")
    later = [threading.Thread(target=ask) for _ in range(2)]
    for asker in later:
        asker.start()
    wait_until(lambda: service.upgrades()["waiting"] == 3, "three requests in")
    release(fifo)
    for asker in [first, *later]:
        asker.join(DEADLINE)
    v3 = service.started("v3")
    by_new = sorted(
        (u["new_pid"], bool(u["coalesced"]))
        for u in (reply["upgrade"] for reply in replies)
        if isinstance(u, dict)
    )
    assert by_new == sorted([(gated, False), (v3, False), (v3, True)])
    assert service.program()["pid"] == v3
    assert service.upgrades()["ok"] == 2


def test_upgrade_without_a_readiness_gate_is_refused(procs: Processes) -> None:
    script = procs.script("release.py", RELEASE)
    (procs.tmp_path / "release").write_text("v1")
    warden = procs.warden(
        "--listen", "tcp://127.0.0.1:0", "--", script, str(procs.tmp_path / "release")
    )
    warden.out.wait_for("^started v1 ")
    reply = control(procs.control, "upgrade")
    assert reply["ok"] is False
    assert "an upgrade needs a readiness gate" in str(reply["error"])
    warden.kill(signal.SIGTERM)
    assert warden.wait() == 0


def test_drain_gives_the_old_release_group_its_stop_signal(service: Service) -> None:
    """The old release's leader ends at once on SIGTERM; its worker (same group) still gets
    SIGTERM and its share of the drain time, not an immediate SIGKILL."""
    _, family = service.upgrade_to("family", ok=True)
    upgrade, _ = service.upgrade_to("v2", ok=True)
    assert upgrade["old_pid"] == family
    service.warden.out.wait_for(r"^worker \d+ got SIGTERM$")


def test_new_release_crashing_after_promotion_restarts_without_waiting_for_the_drain(
    procs: Processes,
) -> None:
    service = Service(
        procs, "--restart", "on-failure", "--drain-timeout", "20s", "--stop-timeout", "1s"
    )
    service.upgrade_to("stubborn", ok=True)
    stubborn = service.started("stubborn")
    service.deploy("flaky")
    threading.Thread(target=service.control, args=("upgrade",), daemon=True).start()
    service.started("flaky")
    service.deploy("v2")
    v2 = service.started("v2")  # the restart after flaky's exit(1)
    assert not gone(stubborn)  # still draining: the restart did not wait for it
    assert service.program()["pid"] == v2
    assert service.stop() == 0


def test_old_release_dying_mid_upgrade_promotes_the_new_one(procs: Processes) -> None:
    service = Service(procs, "--restart", "always")
    fifo = make_fifo(procs.tmp_path / "gate")
    service.deploy("gated", str(fifo))
    replies: list[dict[str, object]] = []
    asking = threading.Thread(target=lambda: replies.append(service.control("upgrade")))
    asking.start()
    new = service.started("gated")
    os.kill(service.first, signal.SIGKILL)
    wait_until(lambda: service.program()["last_exit"] is not None, "the old release's end")
    release(fifo)
    asking.join(DEADLINE)
    upgrade = replies[0]["upgrade"]
    assert isinstance(upgrade, dict)
    assert upgrade["result"] == "ok" and upgrade["new_pid"] == new
    assert "had ended: killed(SIGKILL)" in str(upgrade["detail"])
    program = service.program()
    # Promoted, not restarted: the restart policy never saw the old release's end.
    assert (program["pid"], program["state"], program["restarts"]) == (new, "ready", 0)
    assert service.warden.out.count("^started v1 ") == 1
    assert http_get(("127.0.0.1", service.port), "/")[1].split()[0] == "gated"


def test_old_release_that_will_not_stop_is_killed_after_the_drain_timeout(
    procs: Processes,
) -> None:
    service = Service(procs, "--drain-timeout", "300ms")
    service.deploy("stubborn")
    assert service.control("upgrade")["ok"] is True
    stubborn = service.started("stubborn")
    service.deploy("v2")
    reply = service.control("upgrade")
    assert reply["ok"] is True
    upgrade = reply["upgrade"]
    assert isinstance(upgrade, dict)
    assert upgrade["old_pid"] == stubborn
    assert "killed(SIGKILL)" in str(upgrade["detail"])
    assert gone(stubborn)
    service.warden.err.wait_for('"detail": "drain timeout: SIGKILL"')


def test_sighup_upgrades_and_status_tells_each_step(service: Service) -> None:
    status = service.status()
    assert status["sockets"] and status["warden"]["pid"] == service.warden.pid  # type: ignore[index]
    upgrades = service.upgrades()
    assert (upgrades["ok"], upgrades["failed"], upgrades["last"]) == (0, 0, None)
    service.deploy("v2")
    service.warden.kill(signal.SIGHUP)
    new = service.started("v2")
    wait_until(lambda: service.upgrades()["ok"] == 1, "the SIGHUP upgrade")
    last = service.upgrades()["last"]
    assert isinstance(last, dict)
    assert (last["result"], last["old_pid"], last["new_pid"]) == ("ok", service.first, new)
    program = service.program()
    assert program["pid"] == new and program["state"] == "ready"
    assert program["last_exit"] is None  # the old release's end is the upgrade's, not a crash


def test_status_names_the_step_of_the_upgrade_under_way_and_its_releases(
    procs: Processes,
) -> None:
    """At 3 a.m. "one is running now" is not enough: which new release, at which step, for
    how long (a gate that never passes, a window, a drain that will not end)."""
    service = Service(procs, "--upgrade-confirm", "1h", "--drain-timeout", "1h")
    fifo = make_fifo(procs.tmp_path / "gate")
    service.deploy("gated", str(fifo))
    asking = threading.Thread(target=service.control, args=("upgrade",))
    asking.start()
    new = service.started("gated")

    def step() -> dict[str, object]:
        current = service.upgrades()["current"]
        assert isinstance(current, dict), current
        return current

    gate = step()
    assert (gate["step"], gate["old_pid"], gate["new_pid"]) == ("gate", service.first, new)
    assert service.program()["state"] == "upgrading"
    table = subprocess.run(
        [sys.executable, "-m", "warden", "status", "--control", str(procs.control)],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    ).stdout
    assert f"running now: new release pid {new} waiting for its readiness gate for " in table
    release(fifo)
    wait_until(lambda: step()["step"] == "confirming", "the window")
    assert step()["new_pid"] == new
    assert service.stop() == 0
    asking.join(DEADLINE)


def test_status_during_a_restart_backoff_says_when_the_program_starts_again(
    procs: Processes,
) -> None:
    service = Service(
        procs, "--restart", "on-failure", "--backoff-initial", "1h", "--backoff-max", "1h"
    )
    os.kill(service.first, signal.SIGKILL)
    wait_until(lambda: service.program()["restart_in"] is not None, "the backoff")
    program = service.program()
    assert program["state"] == "restarting"
    restart_in = program["restart_in"]
    assert isinstance(restart_in, float) and 0 < restart_in <= 3600
    assert program["uptime"] is None and program["status"] is None  # nothing of the dead run
    table = subprocess.run(
        [sys.executable, "-m", "warden", "status", "--control", str(procs.control)],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    ).stdout
    assert re.search(r"^program   pid \d+, restarting, starting again in \d", table, re.M), table
    assert service.stop() == 128 + signal.SIGKILL  # its last end: said and exited with


def test_upgrade_check_failing_cancels_the_upgrade(procs: Processes) -> None:
    flag = procs.tmp_path / "allowed"
    check = f"test -e {flag}"
    service = Service(procs, "--upgrade-check", check)
    service.deploy("v2")
    reply = service.control("upgrade")
    assert reply["ok"] is False
    assert "--upgrade-check" in str(reply["upgrade"]) and "exited with 1" in str(reply["upgrade"])
    assert service.warden.out.count("^started v2 ") == 0  # nothing was started
    flag.touch()
    assert service.control("upgrade")["ok"] is True
    service.started("v2")


def test_upgrade_is_relayed_to_systemd_as_a_reload(procs: Processes, manager: Manager) -> None:
    """Upward: RELOADING=1 with MONOTONIC_USEC when it starts, READY=1 when the new release
    is ready; warden stays the main pid (no MAINPID= is ever sent)."""
    service = Service(procs, env=manager.env)
    ready = manager.wait_for("READY", "1")
    service.deploy("v2")
    assert service.control("upgrade")["ok"] is True
    reloading = manager.wait_for("RELOADING", "1", after=ready)
    assert int(reloading.fields["MONOTONIC_USEC"]) > 0
    again = manager.wait_for("READY", "1", after=reloading)
    assert "upgrade ok" in again.fields["STATUS"]
    assert all(m.pid == service.warden.pid for m in manager.received)
    assert all("MAINPID" not in m.fields for m in manager.received)


def test_stop_during_an_upgrade_stops_both_releases(service: Service) -> None:
    fifo = make_fifo(service.procs.tmp_path / "gate")
    service.deploy("gated", str(fifo))
    asking = threading.Thread(target=service.control, args=("upgrade",))
    asking.start()
    new = service.started("gated")
    assert service.stop() == 0  # v1 stopped gracefully: exit code 0
    asking.join(DEADLINE)
    assert gone(service.first) and gone(new)
    assert not service.procs.control.exists()  # the control socket is removed at exit
    # Said, for a person too: else a terminal shows the old release's end, then nothing while
    # warden waits for a new release it never named.
    [abandoned] = [e for e in service.warden.events("upgrade") if e["kind"] == "upgrade.abandoned"]
    assert abandoned["level"] == "info"
    assert abandoned["data"] == {"old_pid": service.first, "new_pid": new}
    assert f"new release pid {new} is stopped with the old one" in str(abandoned["message"])


ASK_AS_ANOTHER_USER = """\
import json, socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    sock.connect(sys.argv[1])
except OSError as exc:
    print(f"connect: {exc.strerror}")
    sys.exit(0)
try:  # refused at once: the send may meet a closed socket while the answer waits to be read
    sock.sendall(b'{"command": "stop"}\\n')
except (BrokenPipeError, ConnectionResetError):
    pass
print(json.loads(sock.makefile().readline())["error"])
"""


def test_control_socket_refuses_another_uid(procs: Processes) -> None:
    """Mode 0600 keeps another user out; one that gets past the mode (CAP_DAC_OVERRIDE) is
    refused for its SO_PEERCRED uid. The system's Python runs the client: uid 65534 cannot
    read this interpreter's home."""
    directory = Path(tempfile.mkdtemp(prefix="warden-test-", dir="/tmp"))
    try:
        directory.chmod(0o755)  # reachable by uid 65534: only the socket's mode keeps it out
        path = procs.control = directory / "control.sock"
        service = Service(procs)
        assert path.stat().st_mode & 0o777 == 0o600
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        override = ["--inh-caps=+dac_override", "--ambient-caps=+dac_override"]
        for prefix, expected in (
            (nobody, "connect: Permission denied"),
            ([*nobody, *override], "uid 65534 may not control this warden"),
        ):
            asker = subprocess.run(
                [*prefix, "/usr/bin/python3", "-I", "-c", ASK_AS_ANOTHER_USER, str(path)],
                capture_output=True,
                text=True,
                timeout=DEADLINE,
                check=True,
            )
            assert asker.stdout.startswith(expected), asker
        # The refused "stop" changed nothing.
        assert service.program()["state"] == "ready"
        assert service.stop() == 0
        assert not path.exists()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_pid_file_is_written_and_removed(procs: Processes) -> None:
    pid_file = procs.tmp_path / "warden.pid"
    service = Service(procs, "--pid-file", str(pid_file))
    assert pid_file.read_text() == f"{service.warden.pid}\n"
    assert [p.name for p in procs.tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    service.deploy("v2")
    assert service.control("upgrade")["ok"] is True
    assert pid_file.read_text() == f"{service.warden.pid}\n"  # warden stays the main pid
    assert service.stop() == 0
    assert not pid_file.exists()


def test_pid_file_that_cannot_be_written_is_a_one_line_error(procs: Processes) -> None:
    warden = procs.warden("--pid-file", "/nonexistent/dir/warden.pid", "--", "true")
    assert warden.wait() != 0
    assert closing_reason(warden.err.text()) == (
        "--pid-file '/nonexistent/dir/warden.pid': cannot write it: No such file "
        "or directory; create its directory or choose another path"
    )


def test_reload_and_stop_from_the_command_line(procs: Processes) -> None:
    """``warden reload`` does what SIGHUP does (here: forwards it, as asked); ``warden stop``
    stops warden as SIGTERM does."""
    script = procs.script(
        "hup.py",
        "import signal, sys\n"
        "signal.signal(signal.SIGHUP, lambda *_: print('got SIGHUP', flush=True))\n"
        "print('ready', flush=True)\n"
        "while True:\n    signal.pause()\n",
    )
    warden = procs.warden("--on-hup", "forward", "--", script)
    warden.out.wait_for("^ready$")
    cli = [sys.executable, "-m", "warden"]
    where = ["--control", str(procs.control)]
    reload = subprocess.run(
        [*cli, "reload", *where], capture_output=True, text=True, timeout=DEADLINE, check=False
    )
    assert reload.returncode == 0, reload.stderr
    assert reload.stdout.startswith("reloaded: SIGHUP sent to pid ")
    warden.out.wait_for("^got SIGHUP$")
    stop = subprocess.run(
        [*cli, "stop", *where], capture_output=True, text=True, timeout=DEADLINE, check=False
    )
    assert (stop.returncode, stop.stdout) == (0, f"stopping warden pid {warden.pid}\n")
    assert warden.wait() == 128 + signal.SIGTERM  # the program died of the stop signal
