"""deploy/systemd/app.service and app.socket as shipped, under the real systemd 252.

What the guest did is in ``guest/units.py``; each test judges one promise of the units.
"""

from __future__ import annotations

import pytest

from .conftest import Guest

CHECK = "units"
pytestmark = [pytest.mark.system, pytest.mark.timeout(1800)]


def test_the_guest_is_what_production_runs(guest: Guest) -> None:
    facts = guest.facts
    assert facts["pid1"] == "systemd"
    assert facts["systemd"].startswith("systemd 252 ")
    assert facts["cgroup_fs"] == "cgroup2fs"
    assert "memory" in facts["controllers"]
    assert facts["psi"]


def test_the_socket_unit_holds_the_port_until_the_first_connection(guest: Guest) -> None:
    before = guest.saw(CHECK, "activation_before")
    assert before == {"socket": "active", "service": "inactive", "port_listening": True}
    first = guest.saw(CHECK, "activation_first_request")
    assert (first["status"], first["body"]) == (200, "hello from warden\n")
    assert first["ActiveState"] == "active"
    assert first["TriggeredBy"] == "app.socket"
    held = [e for e in guest.saw(CHECK, "journal") if e.get("WARDEN_KIND") == "socket"]
    assert held, "warden said nothing of the socket it took from systemd"
    assert "web" in held[0]["MESSAGE"]


def test_systemctl_start_returns_after_the_programs_readiness(guest: Guest) -> None:
    gate = guest.saw(CHECK, "gate")
    assert gate["systemctl_rc"] == 0
    # The program sleeps 3 s before it starts; READY=1 to systemd comes after its own.
    assert gate["seconds"] >= 3.0
    assert gate["child_ready_at"] is not None
    assert gate["child_ready_at"] <= gate["returned_at"]
    assert gate["program_readyz_at_return"] == [200, "ready\n"]
    assert gate["warden_readyz_at_return"][0] == 200
    assert gate["ActiveState"] == "active"


def test_systemctl_reload_upgrades_with_no_failed_request(guest: Guest) -> None:
    reload = guest.saw(CHECK, "reload")
    assert reload["systemctl_rc"] == 0
    assert reload["upgrade"]["WARDEN_OUTCOME"] == "ok", reload["upgrade"]
    assert reload["main_pid_after"] == reload["main_pid_before"]  # warden stays the main PID
    assert reload["program_after"] != reload["program_before"]
    assert reload["requests_failed"] == 0, reload["failures"]
    assert reload["requests_ok"] >= 40
    assert (reload["ActiveState"], reload["SubState"]) == ("active", "running")


def test_a_killed_program_is_named_and_the_unit_restarts(guest: Guest) -> None:
    killed = guest.saw(CHECK, "killed")
    (exited,) = killed["child_exited"]
    assert exited["MESSAGE"].endswith("killed(SIGKILL) — not an OOM kill"), exited
    assert any("status=137" in line for line in killed["manager"]), killed["manager"]
    assert int(killed["NRestarts"]) == killed["restarts_before"] + 1
    assert killed["ActiveState"] == "active"
    unit = guest.saw(CHECK, "unit_killed")
    assert any("code=killed, status=9/KILL" in line for line in unit["manager"]), unit["manager"]
    assert int(unit["NRestarts"]) == unit["restarts_before"] + 1


def test_a_clean_end_of_the_program_is_not_restarted(guest: Guest) -> None:
    end = guest.saw(CHECK, "clean_end")
    assert (end["ActiveState"], end["Result"]) == ("inactive", "success"), end
    assert end["ExecMainStatus"] == "0"
    assert int(end["NRestarts"]) == end["restarts_before"]


def test_systemctl_stop_ends_in_time_with_the_request_answered(guest: Guest) -> None:
    stop = guest.saw(CHECK, "stop")
    assert stop["systemctl_rc"] == 0
    assert stop["timeout_stop_sec"] == "30s"
    assert stop["seconds"] < 30
    assert stop["slow_request"] == [[200, "slept 2000 ms\n"]]
    assert (stop["ActiveState"], stop["Result"]) == ("inactive", "success")
    assert (stop["ExecMainCode"], stop["ExecMainStatus"]) == ("1", "0")  # exited, 0


def test_a_program_that_ignores_sigterm_is_killed_within_timeoutstopsec(guest: Guest) -> None:
    stubborn = guest.saw(CHECK, "stubborn")
    assert stubborn["systemctl_rc"] == 0
    # warden's ladder: SIGTERM, --stop-timeout 20s, SIGKILL; before systemd's 30 s.
    assert 20 <= stubborn["seconds"] < 30, stubborn
    kinds = [kind for kind, _ in stubborn["ladder"]]
    assert "stop_ladder.killed" in kinds, stubborn["ladder"]
    assert not any("timed out" in line for line in stubborn["manager"]), stubborn["manager"]
    assert (stubborn["ExecMainCode"], stubborn["ExecMainStatus"]) == ("1", "137")
