"""systemd's watchdog over warden (``WatchdogSec=2s``), judged from ``guest/watchdog.py``."""

from __future__ import annotations

import pytest

from .conftest import Guest

CHECK = "watchdog"
pytestmark = [pytest.mark.system, pytest.mark.timeout(1800)]


def test_a_healthy_warden_pings_and_is_never_restarted(guest: Guest) -> None:
    healthy = guest.saw(CHECK, "healthy")
    assert healthy["systemctl_rc"] == 0
    assert healthy["WatchdogUSec"] == "2s"
    assert healthy["pings_seen"] >= 10  # systemd's WatchdogTimestamp moved at each ping
    assert (healthy["ActiveState"], healthy["Result"]) == ("active", "success")
    assert healthy["NRestarts"] == "0"
    assert int(healthy["MainPID"]) == healthy["main_pid_before"]


def test_a_blocked_event_loop_makes_systemd_act(guest: Guest) -> None:
    blocked = guest.saw(CHECK, "blocked")
    assert (blocked["ActiveState"], blocked["Result"]) == ("failed", "watchdog"), blocked


def test_a_warden_that_stops_answering_makes_systemd_act(guest: Guest) -> None:
    stopped = guest.saw(CHECK, "stopped")
    assert (stopped["ActiveState"], stopped["Result"]) == ("failed", "watchdog"), stopped
