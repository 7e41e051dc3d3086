"""journald as warden's log, and EXTEND_TIMEOUT_USEC at stop, judged from ``guest/journal.py``."""

from __future__ import annotations

import pytest

from .conftest import Guest

CHECK = "journal"
pytestmark = [pytest.mark.system, pytest.mark.timeout(1800)]


def test_wardens_records_are_structured_entries_with_priorities(guest: Guest) -> None:
    seen = guest.saw(CHECK, "structured")
    # warden's records: the native protocol, every one of them
    entries = [e for e in seen["entries"] if e["_TRANSPORT"] == "journal"]
    assert entries, "no entry of warden's in the journal"
    assert all(e.get("WARDEN_KIND") for e in entries)
    assert not [e for e in seen["entries"] if e["MESSAGE"].startswith("warden run")]
    # Why it exits: the last record, a warning, and systemd's STATUS= too.
    closing = entries[-1]
    assert closing["WARDEN_KIND"] == "exit", closing
    assert (closing["EXIT_CODE"], closing["PRIORITY"]) == ("4", "4")
    assert "failed to become ready within 3s" in closing["MESSAGE"]
    assert "failed to become ready within 3s" in seen["StatusText"]
    started = next(e for e in entries if e["WARDEN_KIND"] == "child.started")
    assert started["PRIORITY"] == "6"
    assert started["ARGV"].startswith("/usr/bin/python3 -c ")  # the fact's typed data, a field
    assert started["PID"] == started["WARDEN_NAME"].removeprefix("pid ")
    not_ready = next(e for e in entries if e["WARDEN_KIND"] == "child.not_ready")
    assert not_ready["PRIORITY"] == "4"
    assert not_ready["WARDEN_OUTCOME"] == "failed"
    # The program's own output is a stream beside warden's entries.
    assert "a line of the program" in seen["program"]
    assert (seen["Result"], seen["ExecMainStatus"]) == ("exit-code", "4")


def test_an_entry_too_big_for_a_datagram_arrives_whole(guest: Guest) -> None:
    seen = guest.saw(CHECK, "oversized")
    assert seen["received"] == [seen["sent"]]
    assert seen["priority"] == ["4"]
    assert seen["dropped"] == 0


def test_extend_timeout_keeps_a_long_stop_from_being_cut(guest: Guest) -> None:
    seen = guest.saw(CHECK, "extend")
    assert seen["TimeoutStopUSec"] == "3s"
    assert seen["seconds"] > 3  # longer than TimeoutStopSec, and not cut
    assert seen["program"][-1:] == ["flushed"], seen
    assert (seen["Result"], seen["ExecMainStatus"]) == ("success", "0"), seen["manager"]
