"""``--listen`` specs and the socket holder, against real sockets and real socket files."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.supervisor._socket_peers import needs_ipv6
from warden import ConfigurationError
from warden.supervisor.sockets._held import HeldSockets, ListenError, bind
from warden.supervisor.sockets._listenspec import ListenSpec, parse_listen


@pytest.fixture
def held() -> Iterator[list[HeldSockets]]:
    """HeldSockets a test makes; all closed at the end."""
    made: list[HeldSockets] = []
    yield made
    for sockets in made:
        sockets.close()


def hold(held: list[HeldSockets], *texts: str) -> HeldSockets:
    sockets = HeldSockets.from_specs([parse_listen(text) for text in texts])
    held.append(sockets)
    return sockets


def socket_fds() -> set[int]:
    """This process's socket descriptors (what "nothing left bound" is checked against)."""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                found.add(int(name))
    return found


# -- parse_listen ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tcp://0.0.0.0:8000", {"scheme": "tcp", "host": "0.0.0.0", "port": 8000}),
        ("tcp://127.0.0.1:0", {"host": "127.0.0.1", "port": 0, "name": "unknown"}),
        ("tcp://[::]:8000", {"host": "::", "port": 8000, "ipv6": True, "wildcard_ipv6": True}),
        ("tcp://[::1]:65535", {"host": "::1", "port": 65535, "wildcard_ipv6": False}),
        ("web=tcp://127.0.0.1:8000", {"name": "web", "address": "tcp://127.0.0.1:8000"}),
        ("unix:/run/app.sock", {"scheme": "unix", "path": "/run/app.sock", "mode": None}),
        ("unix:///run/app.sock", {"path": "/run/app.sock"}),
        ("unix:/run/app.sock?mode=0660", {"path": "/run/app.sock", "mode": 0o660}),
        ("admin=unix:/run/a.sock?mode=600", {"name": "admin", "mode": 0o600}),
        ("unix:@warden-test", {"path": "@warden-test", "address": "unix:@warden-test"}),
        ("my socket/1=tcp://[::1]:1", {"name": "my socket/1"}),
    ],
)
def test_parse_good(text: str, expected: dict[str, object]) -> None:
    spec = parse_listen(text)
    assert spec.text == text
    for field, value in expected.items():
        assert getattr(spec, field) == value, field


def test_relative_unix_path_becomes_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_listen("unix:app.sock").path == str(tmp_path / "app.sock")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("tcp://0.0.0.0:99999", "port 99999 is out of range 0-65535"),
        ("tcp://0.0.0.0:http", "port 'http' is not a number 0-65535"),
        ("tcp://0.0.0.0", "missing :PORT"),
        ("tcp://:8000", "missing address; use 0.0.0.0 or [::]"),
        ("tcp://localhost:8000", "'localhost' is not an IP address; warden binds literal"),
        ("tcp://::1:8000", "an IPv6 address needs brackets: tcp://[::1]:8000"),
        ("tcp://[::1]8000", "expected tcp://[IPV6]:PORT"),
        ("tcp://[127.0.0.1]:80", "brackets are for IPv6 addresses"),
        ("0.0.0.0:8000", "unknown form; expected tcp://ADDRESS:PORT or unix:/PATH"),
        ("http://0.0.0.0:8000", "unknown form"),
        ("=tcp://0.0.0.0:1", "the name before '=' is empty"),
        ("caf\u00e9=tcp://0.0.0.0:1", "must be printable ASCII"),
        ("x" * 256 + "=tcp://0.0.0.0:1", "the name is 256 characters; at most 255"),
        ("unix:", "missing path"),
        ("unix://run/app.sock", "unix:// must be followed by an absolute path"),
        ("unix:/run/a.sock?mode=999", "mode '999' is not octal"),
        ("unix:/run/a.sock?mode=01777", "mode 01777 is out of range 0000-0777"),
        ("unix:/run/a.sock?owner=root", "unknown option 'owner'; the only one is ?mode=0660"),
        ("unix:@abstract?mode=0600", "an abstract socket (@name) has no file, so no mode"),
        ("unix:/" + "d" * 107, "the path is 108 bytes but a UNIX socket path has at most 107"),
    ],
)
def test_parse_bad(text: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_listen(text)
    message = str(caught.value)
    assert message.startswith(f"--listen {text!r}: "), message
    assert problem in message
    assert "\n" not in message


def test_longest_unix_path_is_accepted() -> None:
    assert len(parse_listen("unix:/" + "d" * 106).path) == 107


def test_spec_is_frozen() -> None:
    spec = parse_listen("tcp://127.0.0.1:1")
    with pytest.raises(AttributeError):
        spec.port = 2  # type: ignore[misc]
    assert isinstance(spec, ListenSpec)


# -- bind: TCP ------------------------------------------------------------------------------


def test_tcp_ipv4_listens_close_on_exec(held: list[HeldSockets]) -> None:
    sockets = hold(held, "web=tcp://127.0.0.1:0")
    (one,) = sockets
    port = one.sock.getsockname()[1]
    assert port != 0
    assert sockets.describe() == [f"web=tcp://127.0.0.1:{port} (fd 3)"]
    assert sockets.names == ("web",)
    assert sockets.fds == (one.sock.fileno(),)
    assert sockets.named_fds == (("web", one.sock.fileno()),)
    assert not os.get_inheritable(one.sock.fileno())
    assert one.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
    assert one.sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
    # The kernel completes the handshake into the backlog before anyone accepts.
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


@needs_ipv6
def test_tcp_ipv6_loopback_is_ipv6_only(held: list[HeldSockets]) -> None:
    (one,) = hold(held, "tcp://[::1]:0")
    assert one.sock.family == socket.AF_INET6
    assert one.sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
    with socket.create_connection(("::1", one.sock.getsockname()[1]), timeout=5):
        pass


@needs_ipv6
def test_tcp_ipv6_wildcard_is_dual_stack(held: list[HeldSockets]) -> None:
    (one,) = hold(held, "tcp://[::]:0")
    assert one.sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
    with socket.create_connection(("127.0.0.1", one.sock.getsockname()[1]), timeout=5):
        pass


@needs_ipv6
def test_ipv4_and_ipv6_wildcards_on_one_port(held: list[HeldSockets]) -> None:
    # Find a port free in both families, then ask for both wildcards on it.
    with socket.socket(socket.AF_INET6) as probe:
        probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        probe.bind(("::", 0))
        port = probe.getsockname()[1]
    _, v6 = hold(held, f"tcp://0.0.0.0:{port}", f"tcp://[::]:{port}")
    assert v6.sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    with socket.create_connection(("::1", port), timeout=5):
        pass


def test_port_in_use_is_a_clear_error(held: list[HeldSockets]) -> None:
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        text = f"tcp://127.0.0.1:{port}"
        with pytest.raises(ListenError) as caught:
            bind(parse_listen(text))
    assert isinstance(caught.value, OSError)
    assert caught.value.errno == errno.EADDRINUSE
    assert str(caught.value) == (
        f"--listen {text!r}: address already in use; another process listens there "
        f"(ss -ltnp 'sport = :{port}')"
    )


def test_address_not_on_this_host() -> None:
    with pytest.raises(ListenError, match=r"no interface of this host has address 192\.0\.2\.1"):
        bind(parse_listen("tcp://192.0.2.1:0"))  # TEST-NET-1, RFC 5737


def test_a_failing_spec_leaves_nothing_bound(tmp_path: Path) -> None:
    path = tmp_path / "first.sock"
    before = socket_fds()
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        busy = f"tcp://127.0.0.1:{other.getsockname()[1]}"
        specs = [
            parse_listen(f"unix:{path}"),
            parse_listen("tcp://127.0.0.1:0"),
            parse_listen(busy),
        ]
        with pytest.raises(ListenError, match="address already in use"):
            HeldSockets.from_specs(specs)
    assert socket_fds() == before
    assert not path.exists()


# -- bind: UNIX -----------------------------------------------------------------------------


def test_unix_socket_with_mode(tmp_path: Path, held: list[HeldSockets]) -> None:
    path = tmp_path / "app.sock"
    old = os.umask(0o077)  # the mode must not depend on warden's umask
    try:
        (one,) = hold(held, f"api=unix:{path}?mode=0660")
    finally:
        os.umask(old)
    info = path.lstat()
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o660
    assert one.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(str(path))
    assert held[0].describe() == [f"api=unix:{path} (fd 3)"]


def test_unix_socket_file_removed_at_close(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    HeldSockets.from_specs([parse_listen(f"unix://{path}")]).close()
    assert not path.exists()


def test_close_leaves_a_replaced_socket_file(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    sockets = HeldSockets.from_specs([parse_listen(f"unix:{path}")])
    path.unlink()
    with socket.socket(socket.AF_UNIX) as successor:
        successor.bind(str(path))
        sockets.close()
        assert path.exists()


def test_abstract_unix_socket(held: list[HeldSockets]) -> None:
    name = f"warden-test-{os.getpid()}"
    hold(held, f"unix:@{name}")
    assert held[0].describe() == [f"unix:@{name} (fd 3)"]
    with socket.socket(socket.AF_UNIX) as client:
        client.connect("\0" + name)


def test_stale_unix_socket_is_replaced(tmp_path: Path, held: list[HeldSockets]) -> None:
    path = tmp_path / "app.sock"
    with socket.socket(socket.AF_UNIX) as dead:  # a crashed predecessor's file
        dead.bind(str(path))
        dead.listen()
    assert path.exists()
    hold(held, f"unix:{path}")
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(str(path))


def test_live_unix_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    with socket.socket(socket.AF_UNIX) as live:
        live.bind(str(path))
        live.listen()
        with pytest.raises(ListenError) as caught:
            bind(parse_listen(f"unix:{path}"))
        assert caught.value.errno == errno.EADDRINUSE
        assert f"another process listens on {path}" in str(caught.value)
        # Still the live one's: a client reaches it.
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(path))
            live.accept()[0].close()


def test_file_that_is_not_a_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    path.write_text("precious")
    with pytest.raises(ListenError, match="exists and is not a socket; remove it"):
        bind(parse_listen(f"unix:{path}"))
    assert path.read_text() == "precious"


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ListenError, match=f"directory {tmp_path}/nope does not exist"):
        bind(parse_listen(f"unix:{tmp_path}/nope/app.sock"))


def test_from_environment_without_activation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LISTEN_PID", raising=False)
    monkeypatch.delenv("LISTEN_FDS", raising=False)
    assert len(HeldSockets.from_environment()) == 0


def test_tcp_listeners_pass_nodelay_to_accepted_connections() -> None:
    # uvicorn --fd wraps the fd as AF_UNIX and never sets TCP_NODELAY itself; Linux copies
    # it from the listener, so warden sets it there.
    import socket as socket_module

    from warden.supervisor.sockets._held import bind
    from warden.supervisor.sockets._listenspec import parse_listen

    listener = bind(parse_listen("tcp://127.0.0.1:0"))
    try:
        with socket_module.create_connection(listener.getsockname(), timeout=10):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket_module.IPPROTO_TCP, socket_module.TCP_NODELAY)
    finally:
        listener.close()
