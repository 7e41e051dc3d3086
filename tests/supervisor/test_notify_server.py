"""The supervisor's notify server against real clients: systemd-notify, sdnotify, raw bytes."""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
import socket
import stat
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import warden
from tests.supervisor._notify_peers import (
    CLIENT,
    DEADLINE,
    Client,
    Sender,
    Served,
    hung_up,
    open_fds,
    run_process,
)
from warden.supervisor.notify._server import Access, NotifyMessage, NotifyServer

SYSTEMD_NOTIFY = shutil.which("systemd-notify")
ServeFactory = Callable[..., Served]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeFactory]:
    """Start a server on its own loop: ``serve(access=..., server=...)``; all closed after."""
    served: list[Served] = []

    def make(access: Access = "all", server: type[NotifyServer] = NotifyServer) -> Served:
        s = Served(tmp_path, access, server)
        served.append(s)
        s.start()
        return s

    yield make
    for s in served:
        s.close()


@pytest.fixture
def clients(tmp_path: Path) -> Iterator[Callable[[str], Client]]:
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    started: list[Client] = []

    def start(notify_socket: str) -> Client:
        started.append(Client(script, notify_socket))
        return started[-1]

    yield start
    for client in started:
        client.kill()


@pytest.fixture
def sender() -> Iterator[Callable[[str], Sender]]:
    made: list[Sender] = []

    def make(path: str) -> Sender:
        made.append(Sender(path))
        return made[-1]

    yield make
    for s in made:
        s.close()


# -- real clients ------------------------------------------------------------------------


@pytest.mark.skipif(SYSTEMD_NOTIFY is None, reason="needs systemd-notify")
def test_systemd_notify_ready_succeeds_because_its_barrier_is_answered(
    serve: ServeFactory,
) -> None:
    # systemd-notify sends its message, then BARRIER=1 and waits up to 5 s for the fd to be
    # closed: it exits non-zero ("Failed to invoke barrier") against a server without barriers.
    served = serve(access="all")
    argv = [str(SYSTEMD_NOTIFY), "--ready", "--status=warming up"]
    pid, code = served.serve_while(lambda: run_process(argv, served.server.path))
    assert code == 0
    message = served.wait_message("READY", "1")
    assert message.fields == {"READY": "1", "STATUS": "warming up"}
    # As root, systemd-notify speaks for its parent (the service that ran it).
    assert message.pid == (os.getpid() if os.geteuid() == 0 else pid)
    assert not served.server.drops


@pytest.mark.skipif(SYSTEMD_NOTIFY is None, reason="needs systemd-notify")
@pytest.mark.skipif(os.geteuid() != 0, reason="systemd-notify speaks for its parent as root")
def test_systemd_notify_under_access_main_barrier_from_another_pid(serve: ServeFactory) -> None:
    # READY=1 comes with the parent's pid (ours: the main pid), BARRIER=1 with systemd-notify's
    # own: the barrier must be answered whoever asks, as systemd does.
    served = serve(access="main")
    served.server.set_main_pid(os.getpid())
    argv = [str(SYSTEMD_NOTIFY), "--ready"]
    _, code = served.serve_while(lambda: run_process(argv, served.server.path))
    assert code == 0
    assert served.wait_message("READY", "1").pid == os.getpid()
    assert not served.server.drops


def test_sdnotify_package_as_a_client(serve: ServeFactory) -> None:
    pytest.importorskip("sdnotify")
    served = serve(access="all")
    code = "import sdnotify; sdnotify.SystemdNotifier(debug=True).notify('READY=1\\nSTATUS=sd')"
    argv = [sys.executable, "-c", code]
    pid, exit_code = served.serve_while(lambda: run_process(argv, served.server.path))
    assert exit_code == 0
    message = served.wait_message("READY", "1")
    assert message.pid == pid
    assert (message.fields, message.fds) == ({"READY": "1", "STATUS": "sd"}, ())


def test_access_main_accepts_the_main_pid_only(
    serve: ServeFactory, clients: Callable[[str], Client]
) -> None:
    served = serve(access="main")
    main, other = clients(served.server.path), clients(served.server.path)
    fds_before = open_fds()

    def converse() -> list[str]:
        return [
            main.say("STATUS=first"),
            other.say("READY=1"),
            other.say("fdstore"),  # a store request from the wrong sender: closed, not kept
            other.say("barrier"),  # answered for anyone
        ]

    assert served.serve_while(lambda: main.say("STATUS=too-early")) == "sent"
    served.server.set_main_pid(main.pid)
    assert served.serve_while(converse)[1:] == ["sent", "sent", "barrier True"]
    assert served.serve_while(lambda: main.say("READY=1")) == "sent"
    message = served.wait_message("READY", "1")
    assert message.pid == main.pid and message.uid == os.getuid() and message.gid == os.getgid()
    assert [m.fields for m in served.messages] == [
        {"STATUS": "first"},
        {"READY": "1"},
    ]
    assert served.server.drops == Counter({"not-main-pid": 3})
    assert open_fds() == fds_before


def test_messages_queued_before_start_are_read(
    tmp_path: Path, sender: Callable[[str], Sender]
) -> None:
    served = Served(tmp_path, "all")
    try:
        sender(served.server.path).send(b"READY=1\n")
        served.start()
        assert served.wait_message("READY", "1").pid == os.getpid()
    finally:
        served.close()


# -- descriptors ------------------------------------------------------------------------


def test_fdstore_hands_over_a_working_descriptor(
    serve: ServeFactory, sender: Callable[[str], Sender]
) -> None:
    served = serve()
    read_end, write_end = os.pipe()
    try:
        client = sender(served.server.path)
        served.serve_while(lambda: client.send(b"FDSTORE=1\nFDNAME=state\n", [write_end]))
        message = served.wait_message("FDSTORE", "1")
        assert message.fields == {"FDSTORE": "1", "FDNAME": "state"}
        (kept,) = message.fds
        assert os.get_inheritable(kept) is False  # received with MSG_CMSG_CLOEXEC
        os.write(kept, b"kept")
        assert os.read(read_end, 4) == b"kept"
    finally:
        os.close(read_end)
        os.close(write_end)


def test_every_other_descriptor_is_closed(
    serve: ServeFactory, sender: Callable[[str], Sender]
) -> None:
    served = serve()
    client = sender(served.server.path)
    read_end, write_end = os.pipe()
    fds_before = open_fds()

    def send() -> None:
        client.send(b"READY=1\n", [write_end, write_end, write_end])  # stray on a message
        client.send(b"STATUS=a\0b", [write_end])  # on a dropped datagram
        client.send(b"BARRIER=1\n", [write_end, write_end])  # a barrier with two
        client.send(b"FDSTORE=0\n", [write_end])  # not a store request
        client.send(b"X=1\n", [write_end] * 253)  # SCM_MAX_FD: as many as a sender may
        client.barrier()

    try:
        served.serve_while(send)
        assert all(m.fds == () for m in served.messages)
        assert open_fds() == fds_before
        os.close(write_end)
        write_end = -1
        assert hung_up(read_end)  # no copy of the write end survived anywhere
        assert served.server.drops == Counter({"nul": 1})
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


class FourFds(NotifyServer):
    max_fds = 4


def test_more_descriptors_than_the_buffer_holds_is_a_drop(
    serve: ServeFactory, sender: Callable[[str], Sender]
) -> None:
    # The kernel installs the 4 that fit, discards the rest and sets MSG_CTRUNC.
    served = serve(server=FourFds)
    client = sender(served.server.path)
    read_end, write_end = os.pipe()
    fds_before = open_fds()
    try:
        served.serve_while(lambda: client.send(b"FDSTORE=1\n", [write_end] * 10))
        served.serve_while(lambda: client.send(b"FDSTORE=1\n", [write_end] * 4))
        assert len(served.wait_message("FDSTORE", "1").fds) == 4
        assert served.server.drops == Counter({"control-truncated": 1})
        for fd in served.messages[0].fds:
            os.close(fd)
        assert open_fds() == fds_before
    finally:
        os.close(read_end)
        os.close(write_end)


# -- datagram checks --------------------------------------------------------------------


def test_4096_bytes_is_accepted_4097_is_oversized(
    serve: ServeFactory, sender: Callable[[str], Sender]
) -> None:
    served = serve()
    client = sender(served.server.path)

    def send() -> None:
        client.send(b"STATUS=" + b"x" * (4096 - 7))
        client.send(b"STATUS=" + b"y" * (4097 - 7))
        client.send(b"DONE=1")

    served.serve_while(send)
    served.wait_message("DONE", "1")
    assert [len(m.fields.get("STATUS", "")) for m in served.messages] == [4089, 0]
    assert served.server.drops == Counter({"oversized": 1})


def test_parsing_rules(serve: ServeFactory, sender: Callable[[str], Sender]) -> None:
    served = serve()
    client = sender(served.server.path)
    datagrams = {
        b"A=1\n\nA=2\nX_UNKNOWN=keep\n": {"A": "2", "X_UNKNOWN": "keep"},  # last wins
        b"STATUS=a=b\0": {"STATUS": "a=b"},  # one trailing NUL, as systemd allows
        b"": {},
        b"READY=1\0\0": "nul",
        b"READY=1\0STATUS=x": "nul",
        b"STATUS=\xff\n": "not-utf8",
        b"READY=1\nhello\n": "malformed",
        b"=value\n": "malformed",
        b"BARRIER=1\nREADY=1\n": "barrier",  # answered, and the rest ignored (systemd too)
    }

    def send() -> None:
        for payload in datagrams:
            client.send(payload)
        client.send(b"DONE=1")

    served.serve_while(send)
    served.wait_message("DONE", "1")
    assert [dict(m.fields) for m in served.messages[:-1]] == [
        v for v in datagrams.values() if isinstance(v, dict)
    ]
    assert served.server.drops == Counter({"nul": 2, "not-utf8": 1, "malformed": 2})


def test_a_datagram_without_credentials_is_dropped(tmp_path: Path) -> None:
    # A sender outside the server's pid namespace has no pid there: the kernel reports pid 0.
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        pytest.skip("needs unshare(1) and root for a new pid namespace")
    script = tmp_path / "inner.py"
    script.write_text(INNER_SERVER)
    proc = subprocess.Popen(
        [unshare, "--pid", "--fork", "--kill-child", sys.executable, str(script), str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        path = proc.stdout.readline().strip()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as outside:
            outside.sendto(b"READY=1\n", path)
        out, _ = proc.communicate("go\n", timeout=DEADLINE)
        assert json.loads(out) == {"drops": {"no-credentials": 1}, "messages": [{"DONE": "1"}]}
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


INNER_SERVER = """\
import asyncio, json, sys
from warden.supervisor.notify._server import NotifyServer
from warden.systemd import Notifier

async def main():
    done = asyncio.Event()
    messages = []
    def on_message(message):
        messages.append(dict(message.fields))
        done.set()
    server = NotifyServer(on_message, access="all", directory=sys.argv[1])
    server.start()
    print(server.path, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    with Notifier(server.path) as notifier:
        notifier.send(DONE=1)  # from inside: our pid exists here
    await asyncio.wait_for(done.wait(), 20)
    print(json.dumps({"drops": server.drops, "messages": messages}), flush=True)
    server.close()

asyncio.run(main())
"""


# -- fuzz ------------------------------------------------------------------------------


def expected_outcome(payload: bytes) -> str | dict[str, str]:
    """What the server must make of a datagram, from sd_notify's rules (credentials given)."""
    if len(payload) > 4096:
        return "oversized"
    body = payload.removesuffix(b"\0")
    if b"\0" in body:
        return "nul"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "not-utf8"
    fields: dict[str, str] = {}
    for line in filter(None, text.split("\n")):
        if "=" not in line or line.startswith("="):
            return "malformed"
        key, value = line.split("=", 1)
        fields[key] = value
    return "barrier" if fields.get("BARRIER") == "1" else fields


def random_datagram(rng: random.Random) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:  # noise
        return rng.randbytes(rng.randrange(200))
    if kind == 1:  # noise over the wire's alphabet, where the rules bite
        alphabet = b"AZ_1=\n\0\xff\xc3\xa9x"
        return bytes(rng.choices(alphabet, k=rng.randrange(40)))
    if kind == 2:  # oversized, or right at the limit
        return bytes(rng.choices(b"AB=\n", k=rng.choice([4095, 4096, 4097, 5000, 65000])))
    lines = [
        f"{rng.choice(['READY', 'STATUS', 'FDSTORE', 'BARRIER', 'X'])}={rng.choice('01é ')}"
        for _ in range(rng.randrange(1, 5))
    ]
    payload = "\n".join(lines).encode()
    if kind == 3:  # well-formed
        return payload
    cut = rng.randrange(len(payload) + 1)  # one corruption
    return payload[:cut] + rng.choice([b"\0", b"\xfe", b"\nnoequals\n", b""]) + payload[cut:]


def test_fuzz_never_raises_leaks_nothing_and_counts_every_drop(
    serve: ServeFactory, sender: Callable[[str], Sender]
) -> None:
    served = serve()
    client = sender(served.server.path)
    rng = random.Random(4096)
    datagrams = [random_datagram(rng) for _ in range(600)]
    stray = [rng.randrange(8) if rng.random() < 0.3 else 0 for _ in datagrams]
    read_end, write_end = os.pipe()
    fds_before = open_fds()

    def send_all() -> None:
        for payload, n_fds in zip(datagrams, stray, strict=True):
            client.send(payload, [write_end] * n_fds)
        client.barrier()

    try:
        served.serve_while(send_all)
        outcomes = [expected_outcome(p) for p in datagrams]
        accepted = [o for o in outcomes if isinstance(o, dict)]
        drops = Counter(o for o in outcomes if isinstance(o, str) and o != "barrier")
        assert len(accepted) > 100 and len(drops) == 4  # the generator reaches every rule
        assert [dict(m.fields) for m in served.messages] == accepted
        assert served.server.drops == drops
        assert all(m.pid == os.getpid() for m in served.messages)
        handed_over = [fd for m in served.messages for fd in m.fds]
        assert all(m.fields.get("FDSTORE") == "1" for m in served.messages if m.fds)
        for fd in handed_over:
            os.close(fd)
        served.messages.clear()
        assert open_fds() == fds_before
        os.close(write_end)
        write_end = -1
        assert hung_up(read_end)  # every copy sent was closed
        # and the server still serves
        served.serve_while(lambda: client.send(b"READY=1\n"))
        assert served.wait_message("READY", "1").fields == {"READY": "1"}
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


# -- failure of the handler, lifecycle of the socket ------------------------------------


def test_a_failing_handler_is_logged_and_reading_goes_on(
    tmp_path: Path, sender: Callable[[str], Sender], caplog: pytest.LogCaptureFixture
) -> None:
    def handler(message: NotifyMessage) -> None:
        if "BOOM" in message.fields:
            raise RuntimeError("handler bug")

    served = Served(tmp_path, "all", before=handler)
    served.start()
    try:
        client = sender(served.server.path)
        with caplog.at_level(logging.ERROR, logger="warden"):
            served.serve_while(lambda: client.send(b"BOOM=1\nREADY=0"))
            served.serve_while(lambda: client.send(b"READY=1"))
            served.wait_message("READY", "1")
        assert [m.fields for m in served.messages] == [{"READY": "1"}]
        assert "handler failed" in caplog.text and "handler bug" in caplog.text
    finally:
        served.close()


def test_private_directory_and_close_removes_everything(tmp_path: Path) -> None:
    fds_before = open_fds()
    server = NotifyServer(lambda m: None, directory=str(tmp_path))
    directory = Path(server.path).parent
    assert directory.parent == tmp_path and directory.name.startswith("warden-")
    # Reachable by a program that drops privileges; checked by pid (access "main").
    assert stat.S_IMODE(directory.stat().st_mode) == 0o711
    assert stat.S_ISSOCK(Path(server.path).stat().st_mode)
    assert stat.S_IMODE(Path(server.path).stat().st_mode) == 0o666
    server.close()
    server.close()  # idempotent
    assert not directory.exists()
    assert open_fds() == fds_before


def test_default_directory_is_the_runtime_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    server = NotifyServer(lambda m: None)
    try:
        assert Path(server.path).parent.parent == tmp_path
    finally:
        server.close()


def test_a_path_too_long_for_sun_path_is_a_clear_error(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 100)
    deep.mkdir()
    with pytest.raises(warden.ConfigurationError, match=r"over the 107 an AF_UNIX address"):
        NotifyServer(lambda m: None, directory=str(deep))
    assert list(deep.iterdir()) == []  # the private directory was removed again


def test_unknown_access_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(warden.ConfigurationError, match="notify access 'some'"):
        NotifyServer(lambda m: None, access="some", directory=str(tmp_path))  # type: ignore[arg-type]
