"""Upgrades that survive a broken release: the confirmation window rolls back, the gate probes
the new release alone, and every failure leaves the old release serving with warden running.

The releases are the scripts of ``test_upgrade`` (``late S`` exits 1 S seconds after READY=1,
``sick S`` answers 500 from S seconds after READY=1, ``wedge S`` stops its watchdog pings,
``err500`` answers 500 from the start, ``exit0`` exits 0 at once). Load runs through every
upgrade, a new connection per request, and must see no failure.
"""

from __future__ import annotations

import os
import signal
import threading

import pytest

from tests.supervisor._systemd_peers import free_port
from tests.supervisor.conftest import DEADLINE, Processes, wait_until
from tests.supervisor.test_upgrade import Load, Service, control, gone

WINDOW = ("--upgrade-confirm", "3s", "--ready-timeout", "3s")


def rolled_back(service: Service, release: tuple[str, ...], why: str) -> dict[str, object]:
    """Upgrade to ``release``, expect a rollback whose reason has ``why``; the reply's record."""
    service.deploy(*release)
    reply = service.control("upgrade")
    assert reply["ok"] is False, reply
    upgrade = reply["upgrade"]
    assert isinstance(upgrade, dict)
    assert upgrade["result"] == "rolled back", upgrade
    assert why in str(upgrade["detail"]), upgrade
    assert f"pid {service.first} keeps serving" in str(upgrade["detail"])
    return upgrade


def still_serving_v1(service: Service, load: Load) -> None:
    load.wait_for("v1")
    assert not gone(service.first)
    assert service.program()["pid"] == service.first
    assert service.warden.proc.poll() is None  # warden runs on


def test_crash_inside_the_window_rolls_back_and_the_old_release_never_stopped(
    procs: Processes,
) -> None:
    service = Service(procs, *WINDOW)
    with Load(service.port) as load:
        load.wait_for("v1")
        upgrade = rolled_back(service, ("late", "0.5"), "exited(1)")
        new = upgrade["new_pid"]
        assert isinstance(new, int) and gone(new)
        still_serving_v1(service, load)
    assert load.failures == []
    # The old release was never told to stop: it did not print its "stopped" line.
    assert service.warden.out.count(f"^stopped v1 {service.first}$") == 0
    upgrades = service.upgrades()
    assert (upgrades["ok"], upgrades["failed"], upgrades["rolled_back"]) == (0, 0, 1)
    last = upgrades["last"]
    assert isinstance(last, dict) and last["result"] == "rolled back"
    rolled = [e for e in service.warden.events("upgrade") if e.get("outcome") == "rolled back"]
    assert len(rolled) == 1 and rolled[0]["level"] == "warning"
    # A good release goes through afterwards.
    upgrade, v2 = service.upgrade_to("v2", ok=True)
    assert service.program()["pid"] == v2
    assert service.stop() == 0


def test_health_check_failing_inside_the_window_rolls_back(procs: Processes) -> None:
    port = free_port()
    service = Service(procs, *WINDOW, port=port, ready=f"http://127.0.0.1:{port}/")
    with Load(service.port) as load:
        load.wait_for("v1")
        rolled_back(service, ("sick", "0.5"), "did not answer 2xx/3xx")
        still_serving_v1(service, load)
    # "sick" answered 500 to the load too once sick, before it was stopped; the old one never.
    assert all(f == "status 500" for f in load.failures), load.failures
    assert service.stop() == 0


def test_a_release_failing_every_other_check_is_rolled_back(procs: Processes) -> None:
    """Two failed checks in the window roll back, in a row or not: a release with one worker
    of two hung answers every other probe, and passed when only a streak counted."""
    port = free_port()
    service = Service(procs, *WINDOW, port=port, ready=f"http://127.0.0.1:{port}/")
    with Load(service.port) as load:
        load.wait_for("v1")
        rolled_back(service, ("fitful", "0.3"), "did not answer 2xx/3xx")
        still_serving_v1(service, load)
    assert load.failures == []  # steered to the old release all along
    assert service.stop() == 0


def test_a_steered_probe_leaves_no_thread_behind(procs: Processes) -> None:
    """The probe of a literal address needs no lookup: no resolver thread is started, and the
    stop after an upgrade reports no leak (it used to name asyncio's "asyncio_0" thread)."""
    port = free_port()
    service = Service(
        procs, "--upgrade-confirm", "0.3s", port=port, ready=f"http://127.0.0.1:{port}/"
    )
    service.upgrade_to("v2", ok=True)
    assert service.stop() == 0
    assert service.warden.events("leak") == []


def test_http_gate_probes_the_new_release_alone(procs: Processes) -> None:
    """A release answering 500 fails an http gate on the shared port: the gate asks the new
    release on its private probe socket, not whoever accepts on the shared one first."""
    port = free_port()
    service = Service(procs, *WINDOW, port=port, ready=f"http://127.0.0.1:{port}/")
    with Load(service.port) as load:
        load.wait_for("v1")
        service.deploy("err500")
        reply = service.control("upgrade")
        assert reply["ok"] is False
        upgrade = reply["upgrade"]
        assert isinstance(upgrade, dict) and upgrade["result"] == "failed", upgrade
        assert "not ready" in str(upgrade["detail"])
        still_serving_v1(service, load)
    assert all(f == "status 500" for f in load.failures), load.failures
    assert service.stop() == 0


def test_watchdog_missed_inside_the_window_rolls_back(procs: Processes) -> None:
    service = Service(procs, *WINDOW, "--watchdog", "0.5s", "--stop-timeout", "1s")
    with Load(service.port) as load:
        load.wait_for("v1")
        rolled_back(service, ("wedge", "0.2"), "watchdog timeout")
        still_serving_v1(service, load)
    assert load.failures == []
    assert service.stop() == 0


def test_release_exiting_0_at_once_fails_and_warden_runs_on(procs: Processes) -> None:
    service = Service(procs, *WINDOW)
    with Load(service.port) as load:
        load.wait_for("v1")
        service.deploy("exit0")
        reply = service.control("upgrade")
        assert reply["ok"] is False
        still_serving_v1(service, load)
    assert load.failures == []
    assert service.stop() == 0


def test_old_release_dying_inside_the_window_promotes_the_new_one_at_once(
    procs: Processes,
) -> None:
    service = Service(procs, "--upgrade-confirm", "60s")
    service.deploy("v2")
    replies: list[dict[str, object]] = []
    asking = threading.Thread(target=lambda: replies.append(service.control("upgrade")))
    asking.start()
    new = service.started("v2")
    service.warden.err.wait_for('"outcome": "confirming"')
    os.kill(service.first, signal.SIGKILL)
    asking.join(20)  # far sooner than the 60 s window
    assert replies and replies[0]["ok"] is True, replies
    assert service.program()["pid"] == new
    assert service.stop() == 0


def test_new_release_dying_during_the_drain_is_a_failure_and_spares_the_old(
    procs: Processes,
) -> None:
    """After the window, during the drain: the upgrade failed, warden does not stop, the
    restart policy restarts the program, and the old release (ignoring SIGTERM here) is not
    killed when the new one dies, only at its drain timeout."""
    service = Service(procs, "--restart", "on-failure", "--drain-timeout", "3s")
    service.upgrade_to("stubborn", ok=True)
    stubborn = service.started("stubborn")
    service.deploy("late", "0.5")
    replies: list[dict[str, object]] = []
    asking = threading.Thread(target=lambda: replies.append(service.control("upgrade")))
    asking.start()
    late = service.started("late")
    service.deploy("v2")  # what the restart after late's crash starts
    wait_until(lambda: gone(late), "the new release's crash")
    assert not gone(stubborn)  # draining still: not killed with the new release's end
    v2 = service.started("v2")
    asking.join(20)
    upgrade = replies[0]["upgrade"]
    assert isinstance(upgrade, dict)
    assert upgrade["result"] == "failed", upgrade
    assert "during the drain" in str(upgrade["detail"])
    assert service.warden.proc.poll() is None
    assert service.program()["pid"] == v2
    assert service.stop() == 0


#: A release serving HTTP on a TCP port it binds itself (SO_REUSEPORT: two releases at once),
#: beside the UNIX socket warden holds for it.
SELF_BOUND = """\
import os, signal, socket, sys
from pathlib import Path

name = Path(sys.argv[2]).read_text().split()[0]
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen()
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.connect(os.environ["NOTIFY_SOCKET"])
notify.send(b"READY=1")
print(f"started {name} {os.getpid()}", flush=True)
while True:
    conn, _ = server.accept()
    with conn:
        conn.recv(65536)
        body = f"{name} {os.getpid()}".encode()
        conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (len(body), body))
"""


@pytest.mark.parametrize("gate", ["http", "notify"])
def test_a_unix_socket_deployment_upgrades_and_says_when_its_probe_cannot_tell_releases_apart(
    procs: Processes, gate: str
) -> None:
    """Only a UNIX socket held: nothing can steer a probe to the new release, so an http gate
    on the program's own port asks whichever release accepts first. The upgrade goes on as
    before, with a warning that says so; a notify gate needs no probe and gets none."""
    port = free_port()
    release = procs.tmp_path / "release"
    release.write_text("v1")
    script = procs.script("self_bound.py", SELF_BOUND)
    ready = f"http://127.0.0.1:{port}/" if gate == "http" else "notify"
    warden = procs.warden(
        *("--listen", f"unix:{procs.tmp_path}/app.sock", "--ready", ready),
        *("--upgrade-confirm", "0.5s", "--", script, str(port), str(release)),
    )
    warden.err.wait_for(r'"event": "state", "state": "ready"')
    release.write_text("v2")
    reply = control(procs.control, "upgrade")
    assert reply["ok"] is True, reply
    warden.out.wait_for("^started v2 ")
    warnings = [e for e in warden.events("upgrade") if e.get("outcome") == "warning"]
    if gate == "notify":
        assert warnings == []
    else:
        assert len(warnings) == 1, warnings
        assert (
            f"--ready http://127.0.0.1:{port}/ cannot reach the new release alone (its port is "
            "not a TCP socket warden holds with --listen)"
        ) in str(warnings[0]["detail"]), warnings
    warden.kill(signal.SIGTERM)
    assert warden.wait() == 0


# -- the window on a clock the test jumps: ten minutes of it in a moment -------------------


def upgrade_in_background(service: Service) -> tuple[threading.Thread, list[dict[str, object]]]:
    """``warden upgrade`` on a thread (its reply comes at the end of the window)."""
    replies: list[dict[str, object]] = []
    asking = threading.Thread(target=lambda: replies.append(service.control("upgrade")))
    asking.start()
    return asking, replies


def test_a_good_release_is_promoted_when_the_window_ends_and_not_before(
    procs: Processes,
) -> None:
    service = Service(procs, "--upgrade-confirm", "600s", jumped=True)
    service.deploy("v2")
    asking, replies = upgrade_in_background(service)
    new = service.started("v2")
    service.warden.err.wait_for('"outcome": "confirming"')  # the window's end is armed
    service.jump(599.9)
    program = service.program()  # a round trip: warden ran what the jump woke
    assert (program["pid"], program["state"]) == (service.first, "upgrading")
    assert not replies and not gone(service.first)
    service.jump(0.1)
    asking.join(DEADLINE)
    assert replies and replies[0]["ok"] is True, replies
    assert service.program()["pid"] == new
    assert service.warden.out.count(f"^stopped v1 {service.first}$") == 1
    assert service.stop() == 0


@pytest.mark.parametrize(
    ("release", "why"),
    [
        # Answers 500 (or, a probe still on its way at the next jump, is cut at its timeout).
        ("err500", "did not answer 2xx/3xx (its probe"),
        # Accepts nothing: each check waits for its probe's own timeout, on the clock too.
        ("deaf", "did not answer 2xx/3xx (its probe got no answer within 2s)"),
    ],
)
def test_a_release_failing_its_health_checks_in_the_window_is_rolled_back(
    procs: Processes, release: str, why: str
) -> None:
    """--ready notify passes; the window's health checks (--upgrade-confirm-url, asking the
    new release alone) fail twice: rolled back long before the ten minutes are up."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    service = Service(
        procs, "--upgrade-confirm", "600s", "--upgrade-confirm-url", url, port=port, jumped=True
    )
    service.deploy(release)
    asking, replies = upgrade_in_background(service)
    new = service.started(release)
    service.warden.err.wait_for('"outcome": "confirming"')
    now = start = service.jump(0)
    while asking.is_alive() and now - start < 60:  # a check each second, on warden's clock
        now = service.jump(1)
        service.status()  # a round trip: warden ran what the jump woke
    asking.join(DEADLINE)
    upgrade = replies[0]["upgrade"]
    assert isinstance(upgrade, dict) and upgrade["result"] == "rolled back", upgrade
    assert why in str(upgrade["detail"]), upgrade
    assert gone(new)
    assert service.program()["pid"] == service.first
    assert service.stop() == 0
