"""journald's native protocol: entries received on a real AF_UNIX datagram socket, decoded,
including the sealed-memfd path for an entry too big for one datagram."""

from __future__ import annotations

import array
import fcntl
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import warden
from warden.observe._journal import JournalHandler, decode, encode, journal_stream_matches
from warden.observe._log import log_events


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[socket.socket]:
    """A stand-in for journald: a datagram socket bound where the handler sends."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "journal.sock"))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.settimeout(10)
    yield sock
    sock.close()


def receive(sock: socket.socket) -> dict[str, bytes]:
    """One entry, as journald reads it: the datagram, or the memfd passed with it."""
    fds = array.array("i")
    data, ancillary, _flags, _addr = sock.recvmsg(1 << 20, socket.CMSG_SPACE(fds.itemsize))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    if fds:
        fd = fds[0]
        try:
            seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
            wanted = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
            assert seals & wanted == wanted, "journald refuses an unsealed memfd"
            assert not data
            data = os.pread(fd, os.fstat(fd).st_size, 0)
        finally:
            os.close(fd)
    fields = dict(decode(data))
    if fds:
        fields["_VIA_MEMFD"] = b"1"  # a name journald reserves for itself: no clash
    return fields


def test_encode_frames_multiline_values_with_their_length() -> None:
    entry = encode([("MESSAGE", "one\ntwo"), ("PRIORITY", "6"), ("EMPTY", "")])
    assert entry == (
        b"MESSAGE\n" + (7).to_bytes(8, "little") + b"one\ntwo\n" + b"PRIORITY=6\nEMPTY=\n"
    )
    assert list(decode(entry)) == [("MESSAGE", b"one\ntwo"), ("PRIORITY", b"6"), ("EMPTY", b"")]
    with pytest.raises(ValueError, match="journal field name"):
        encode([("lower", "x")])


async def test_lifecycle_events_arrive_as_structured_entries(journal: socket.socket) -> None:
    handler = JournalHandler(journal.getsockname())
    logger = logging.getLogger("warden")
    saved = logger.handlers[:], logger.level, logger.propagate
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)  # the journal keeps every fact, internal steps included
    try:
        lifecycle = warden.Lifecycle(handle_signals=False)
        lifecycle.add("db", stop=lambda: None)
        log_events(lifecycle)
        async with lifecycle:
            pass
    finally:
        logger.handlers[:], _, logger.propagate = saved
        logger.setLevel(saved[1])
        handler.close()
    entries = [receive(journal)]
    while entries[-1].get("STATE") != b"stopped":  # the last event of the stop
        entries.append(receive(journal))
    kinds = [e["WARDEN_KIND"] for e in entries]
    assert kinds[:3] == [b"state", b"start", b"state"]
    stop = next(e for e in entries if e["WARDEN_KIND"] == b"stop")
    assert stop["MESSAGE"].startswith(b"stop db ok in ")
    assert stop["PRIORITY"] == b"7"  # an internal step: debug (journalctl -p info hides it)
    ready = next(e for e in entries if e.get("STATE") == b"ready")
    assert ready["PRIORITY"] == b"6"  # for people: info
    assert stop["SYSLOG_IDENTIFIER"] == b"warden"
    assert stop["COMPONENT"] == b"db"  # the event's typed data, upper-cased
    assert stop["RESULT"] == b"ok"
    assert stop["WARDEN_STATE"] == b"stopping"
    assert float(stop["TOOK"]) >= 0
    stopped = [e for e in entries if e.get("STATE") == b"stopped"]
    assert stopped and stopped[0]["WARDEN_NAME"] == b"stopped"


def test_a_warning_with_a_multiline_detail(journal: socket.socket) -> None:
    handler = JournalHandler(journal.getsockname(), identifier="svc")
    record = logging.LogRecord("warden", logging.WARNING, __file__, 1, "leak\nstack", None, None)
    handler.emit(record)
    entry = receive(journal)
    assert entry["MESSAGE"] == b"leak\nstack"
    assert entry["PRIORITY"] == b"4"
    assert entry["SYSLOG_IDENTIFIER"] == b"svc"
    assert "_VIA_MEMFD" not in entry
    handler.close()


def test_an_oversized_entry_goes_through_a_sealed_memfd(journal: socket.socket) -> None:
    handler = JournalHandler(journal.getsockname())
    big = "x" * (1 << 20)  # past the datagram limit (the socket's send buffer): EMSGSIZE
    handler.emit(logging.LogRecord("warden", logging.INFO, __file__, 1, big, None, None))
    entry = receive(journal)
    assert entry["MESSAGE"] == big.encode()
    assert entry["_VIA_MEMFD"] == b"1"
    assert handler.dropped == 0
    handler.close()


def test_journal_stream_must_match_stderrs_device_and_inode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "stream"
    with path.open("w") as f:
        st = os.fstat(f.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert journal_stream_matches(f.fileno())
        with (tmp_path / "other").open("w") as other:  # inherited through a redirection
            assert not journal_stream_matches(other.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", "garbage")
        assert not journal_stream_matches(f.fileno())
    monkeypatch.delenv("JOURNAL_STREAM")
    assert not journal_stream_matches(2)


SCRIPT = """
import sys, warden
from warden.observe import _journal
_journal.JOURNAL_SOCKET = sys.argv[1]
lifecycle = warden.Lifecycle(handle_signals=False)
warden.log_events(lifecycle)
lifecycle.run()
"""
SCRIPT_STOP = SCRIPT.replace("lifecycle.run()", "lifecycle.run(lambda: None)")


@pytest.mark.parametrize("matches", [True, False])
def test_log_events_routes_to_journald_only_when_the_stream_matches(
    journal: socket.socket, tmp_path: Path, matches: bool
) -> None:
    stderr_path = tmp_path / "stderr"
    with stderr_path.open("w") as err:
        st = os.fstat(err.fileno())
        stream = f"{st.st_dev}:{st.st_ino}" if matches else f"{st.st_dev}:{st.st_ino + 1}"
        env = {**os.environ, "JOURNAL_STREAM": stream}
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT_STOP, journal.getsockname()],
            check=False,
            stderr=err,
            env=env,
            timeout=30,
        )
    assert done.returncode == 0
    text = stderr_path.read_text()
    if matches:
        assert text == ""
        assert receive(journal)["WARDEN_KIND"] == b"state"
    else:
        assert '"event": "state", "state": "starting"' in text  # JSON lines, as before
        journal.settimeout(0.2)
        with pytest.raises(TimeoutError):
            journal.recv(10)


@pytest.mark.parametrize("matches", [True, False])
def test_warden_runs_error_lines_have_the_error_priority_on_the_journals_stream(
    tmp_path: Path, matches: bool
) -> None:
    """A stream line is info to journald unless it starts with a level prefix: warden's own
    error lines on stderr (a usage error, a start that could not happen) are errors (seen
    under the real systemd: the system suite)."""
    stderr_path = tmp_path / "stderr"
    with stderr_path.open("w") as err:
        st = os.fstat(err.fileno())
        stream = f"{st.st_dev}:{st.st_ino}" if matches else f"{st.st_dev}:{st.st_ino + 1}"
        done = subprocess.run(
            [sys.executable, "-m", "warden", "run", "--stop-timeout", "soon", "--", "true"],
            check=False,
            stderr=err,
            env={**os.environ, "JOURNAL_STREAM": stream},
            timeout=30,
        )
    assert done.returncode == 2
    (line,) = stderr_path.read_text().splitlines()
    prefix = "<3>" if matches else ""
    assert line.startswith(f"{prefix}warden run: error: --stop-timeout='soon' is not a duration")
