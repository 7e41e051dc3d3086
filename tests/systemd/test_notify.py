"""The sd_notify client against a real AF_UNIX datagram receiver standing for systemd."""

from __future__ import annotations

import array
import os
import signal
import socket
import struct
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import warden
from tests._proc import python
from tests.conftest import Spawn
from warden.systemd import Notifier
from warden.systemd._notify import encode


class Receiver:
    """A notify socket as systemd opens one: datagrams, credentials, fds."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        bind_to: str | bytes = b"\0" + address[1:].encode() if address[0] == "@" else address
        self.sock.bind(bind_to)

    def receive(self, timeout: float = 10.0) -> tuple[dict[str, str], list[int], int]:
        """One message: its fields, the fds it carried, the sender's pid."""
        self.sock.settimeout(timeout)
        fd_size = array.array("i").itemsize
        data, ancillary, _, _ = self.sock.recvmsg(
            4096, socket.CMSG_SPACE(16 * fd_size) + socket.CMSG_SPACE(12)
        )
        fds: list[int] = []
        pid = 0
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.extend(array.array("i", payload[: len(payload) - len(payload) % fd_size]))
            elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("3i", payload[:12])[0]
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if line)
        return fields, fds, pid

    def receive_until(self, key: str, value: str, timeout: float = 10.0) -> list[dict[str, str]]:
        messages = []
        deadline = time.monotonic() + timeout
        while True:
            fields, fds, _ = self.receive(max(0.01, deadline - time.monotonic()))
            for fd in fds:
                os.close(fd)
            messages.append(fields)
            if fields.get(key) == value:
                return messages

    def close(self) -> None:
        self.sock.close()
        if self.address[0] != "@":
            Path(self.address).unlink(missing_ok=True)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    r = Receiver(str(tmp_path / "notify.sock"))
    yield r
    r.close()


def test_fields_are_sent_as_one_datagram_with_our_credentials(receiver: Receiver) -> None:
    with Notifier(receiver.address) as notifier:
        notifier.ready(status="serving 3 workers")
        fields, fds, pid = receiver.receive()
    assert fields == {"READY": "1", "STATUS": "serving 3 workers"}
    assert fds == []
    assert pid == os.getpid()


def test_abstract_socket_names(tmp_path: Path) -> None:
    name = f"@warden-test-{os.getpid()}-{time.monotonic_ns()}"
    abstract = Receiver(name)
    try:
        with Notifier(name) as notifier:
            notifier.stopping()
        assert abstract.receive()[0] == {"STOPPING": "1"}
    finally:
        abstract.close()


def test_reloading_carries_the_monotonic_clock(receiver: Receiver) -> None:
    with Notifier(receiver.address) as notifier:
        before = time.monotonic_ns() // 1000
        notifier.reloading()
        after = time.monotonic_ns() // 1000
    fields = receiver.receive()[0]
    assert fields["RELOADING"] == "1"
    assert before <= int(fields["MONOTONIC_USEC"]) <= after


def test_every_simple_field(receiver: Receiver) -> None:
    with Notifier(receiver.address) as notifier:
        notifier.watchdog()
        notifier.watchdog_trigger()
        notifier.extend_timeout(2.5)
        notifier.status("warming caches")
        notifier.send(ERRNO=5, MAINPID=1234)
    got = [receiver.receive()[0] for _ in range(5)]
    assert got == [
        {"WATCHDOG": "1"},
        {"WATCHDOG": "trigger"},
        {"EXTEND_TIMEOUT_USEC": "2500000"},
        {"STATUS": "warming caches"},
        {"ERRNO": "5", "MAINPID": "1234"},
    ]


def test_fdstore_passes_a_working_descriptor(receiver: Receiver) -> None:
    read_end, write_end = os.pipe()
    try:
        with Notifier(receiver.address) as notifier:
            notifier.fdstore([write_end], name="state-pipe")
        fields, fds, _ = receiver.receive()
        assert fields == {"FDSTORE": "1", "FDNAME": "state-pipe"}
        assert len(fds) == 1 and fds[0] != write_end
        os.write(fds[0], b"kept")  # the received fd is the same pipe
        os.close(fds[0])
        assert os.read(read_end, 4) == b"kept"
    finally:
        os.close(read_end)
        os.close(write_end)


def test_barrier_returns_once_the_receiver_closed_the_fd(receiver: Receiver) -> None:
    def manager() -> None:
        fields, fds, _ = receiver.receive()
        assert fields == {"STATUS": "before barrier"}
        fields, fds, _ = receiver.receive()
        assert fields == {"BARRIER": "1"} and len(fds) == 1
        os.close(fds[0])  # "handled everything before this"

    thread = threading.Thread(target=manager)
    thread.start()
    with Notifier(receiver.address) as notifier:
        notifier.status("before barrier")
        assert notifier.barrier(timeout=10) is True
    thread.join(10)


def test_barrier_times_out_when_nobody_answers(receiver: Receiver) -> None:
    with Notifier(receiver.address) as notifier:
        fds_before = len(os.listdir("/proc/self/fd"))
        assert notifier.barrier(timeout=0.05) is False
        assert len(os.listdir("/proc/self/fd")) == fds_before  # nothing leaked
    _, fds, _ = receiver.receive()
    os.close(fds[0])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"STATUS": "two\nlines"}, "contains a newline"),
        ({"status": "x"}, "key 'status' is invalid"),
    ],
)
def test_bad_fields_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(warden.ConfigurationError, match=message):
        encode(fields)


def test_bad_notify_socket_value() -> None:
    with pytest.raises(warden.ConfigurationError, match="neither an absolute path"):
        Notifier("relative/notify.sock")


def test_no_notify_socket_means_no_notifier(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert Notifier.from_environment() is None
    lc = warden.Lifecycle(handle_signals=False)
    assert warden.notify_systemd(lc) is False


LIFECYCLE_SCRIPT = """
import asyncio, signal, sys, time
import warden
lc = warden.Lifecycle(shutdown_timeout=7)
lc.on_reload(lambda: None)
async def slow_start():
    warden.Notifier(sys.argv[1]).send(STATUS="component starting")
lc.add("db", start=slow_start, stop=lambda: None)
lc.add("http", start=lambda: None, stop=lambda: None, depends_on=["db"])
def block_loop(signum):
    probe = warden.Notifier(sys.argv[1])
    probe.send(STATUS="blocking")
    time.sleep(float(sys.argv[2]))  # the event loop is stuck: watchdog pings must stop
    probe.send(STATUS="unblocked")
lc.on_signal(signal.SIGUSR2, block_loop)
warden.notify_systemd(lc)
code = lc.run()
print("leaks:", [leak.name for leak in lc.leaks], flush=True)
sys.exit(code)
"""


def test_lifecycle_reports_ready_reload_and_stop(
    tmp_path: Path, spawn: Spawn, receiver: Receiver
) -> None:
    path = tmp_path / "svc.py"
    path.write_text(textwrap.dedent(LIFECYCLE_SCRIPT))
    proc = spawn(python(str(path), receiver.address, "0"), env={"NOTIFY_SOCKET": receiver.address})
    startup = receiver.receive_until("READY", "1")
    # READY comes only after every component started.
    assert startup[0] == {"STATUS": "component starting"}
    assert startup[-1] == {"READY": "1", "STATUS": "ready"}

    proc.signal(signal.SIGHUP)
    reload = receiver.receive_until("READY", "1")
    assert reload[0]["RELOADING"] == "1"
    assert abs(int(reload[0]["MONOTONIC_USEC"]) - time.monotonic_ns() // 1000) < 10_000_000

    proc.signal(signal.SIGTERM)
    stop = receiver.receive_until("STATUS", "stopped")
    assert stop[0] == {"STOPPING": "1", "STATUS": "draining", "EXTEND_TIMEOUT_USEC": "8000000"}
    assert {m["STATUS"] for m in stop[1:3]} == {"stopping: http ok", "stopping: db ok"}
    assert proc.wait() == 0


def test_watchdog_pings_only_while_the_loop_is_healthy(
    tmp_path: Path, spawn: Spawn, receiver: Receiver
) -> None:
    path = tmp_path / "svc.py"
    path.write_text(textwrap.dedent(LIFECYCLE_SCRIPT))
    # WATCHDOG_USEC=200 ms: a ping every 100 ms; the loop is then blocked for 600 ms.
    proc = spawn(
        python(str(path), receiver.address, "0.6"),
        env={"NOTIFY_SOCKET": receiver.address, "WATCHDOG_USEC": "200000"},
    )
    receiver.receive_until("READY", "1")
    healthy = receiver.receive_until("WATCHDOG", "1")
    healthy += receiver.receive_until("WATCHDOG", "1")
    proc.signal(signal.SIGUSR2)
    during = receiver.receive_until("STATUS", "unblocked")
    blocked = during[during.index({"STATUS": "blocking"}) :]
    assert {"WATCHDOG": "1"} not in blocked  # no ping while the loop was stuck
    receiver.receive_until("WATCHDOG", "1")  # and pings resume once it is free
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    assert "leaks: []" in proc.stdout  # the cancelled pinger is not a leak


def test_watchdog_for_another_pid_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    from warden.systemd import watchdog_interval

    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 2.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert watchdog_interval() is None
    monkeypatch.delenv("WATCHDOG_PID")
    monkeypatch.setenv("WATCHDOG_USEC", "soon")
    with pytest.raises(warden.ConfigurationError, match="WATCHDOG_USEC='soon'"):
        watchdog_interval()
