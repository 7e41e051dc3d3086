"""Reuseport steering against the real kernel: warden's probe reaches the new release alone
through the port both releases share, every other connection goes to the old release.

Each case holds a real listening socket (the old release's), makes its sibling (the new
release's) in the same reuseport group, and tells which of the two each connection landed on
by accepting on both (non-blocking: a connection is in exactly one accept queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
from collections.abc import Iterator

import pytest

from tests.supervisor._socket_peers import needs_ipv6
from warden.supervisor.release._readiness import Seen, http_status
from warden.supervisor.sockets._held import HeldSockets
from warden.supervisor.sockets._listenspec import parse_listen
from warden.supervisor.sockets._steering import Steering, program

OTHERS = 20


@pytest.fixture
def steerings() -> Iterator[list[Steering]]:
    made: list[Steering] = []
    yield made
    for steering in made:
        steering.close(keep=HeldSockets())


def steering_for(made: list[Steering], listen: str) -> Steering:
    steering = Steering(HeldSockets.from_specs([parse_listen(listen)]))
    made.append(steering)
    return steering


def landed(steering: Steering) -> str:
    """Which listener the one connection just made is queued on: "old" or "new"."""
    old, new = steering.old.fds[0], steering.new.fds[0]
    readable = select.select([old, new], [], [], 5)[0]
    assert len(readable) == 1, readable
    which = "old" if readable == [old] else "new"
    held = steering.old if which == "old" else steering.new
    conn, _ = next(iter(held)).sock.accept()
    conn.close()
    return which


def connect(steering: Steering, host: str) -> str:
    port = next(iter(steering.old)).sock.getsockname()[1]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as client:
        client.connect((host, port))
        return landed(steering)


def probe(steering: Steering, host: str, options: bytes = b"") -> str:
    port = next(iter(steering.old)).sock.getsockname()[1]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with steering.probing(family) as sock:
        if options:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, options)
        with contextlib.suppress(BlockingIOError):
            sock.connect((host, port))  # non-blocking: the handshake completes on loopback
    try:
        return landed(steering)
    finally:
        sock.close()


CASES = [
    pytest.param("tcp://127.0.0.1:0", "127.0.0.1", b"", id="ipv4"),
    pytest.param("tcp://0.0.0.0:0", "127.0.0.1", b"", id="ipv4-wildcard"),
    # IP options lengthen the IPv4 header: the source port is found after it, not at 20.
    pytest.param("tcp://127.0.0.1:0", "127.0.0.1", b"\x01" * 4, id="ipv4-options-4"),
    pytest.param("tcp://127.0.0.1:0", "127.0.0.1", b"\x01" * 11 + b"\x00", id="ipv4-options-12"),
    pytest.param("tcp://[::1]:0", "::1", b"", id="ipv6", marks=needs_ipv6),
    pytest.param("tcp://[::]:0", "::1", b"", id="dual-stack-ipv6", marks=needs_ipv6),
    # A dual-stack socket's group sees IPv4 packets: the version is read from the packet.
    pytest.param("tcp://[::]:0", "127.0.0.1", b"", id="dual-stack-ipv4", marks=needs_ipv6),
]


@pytest.mark.parametrize(("listen", "host", "options"), CASES)
def test_the_probe_reaches_the_new_release_alone(
    steerings: list[Steering], listen: str, host: str, options: bytes
) -> None:
    steering = steering_for(steerings, listen)
    before = [connect(steering, host) for _ in range(OTHERS)]
    assert probe(steering, host, options) == "new"
    after = [connect(steering, host) for _ in range(OTHERS)]
    assert set(before) == set(after) == {"old"}


def test_the_probe_port_goes_back_to_the_old_release_after_the_probe(
    steerings: list[Steering],
) -> None:
    """Once the probe has connected, its port steers nothing: a connection from the same
    source port afterwards (another local user binding it, say) reaches the old release."""
    steering = steering_for(steerings, "tcp://0.0.0.0:0")
    port = next(iter(steering.old)).sock.getsockname()[1]
    with steering.probing(socket.AF_INET) as sock:
        source = sock.getsockname()[1]
        with contextlib.suppress(BlockingIOError):
            sock.connect(("127.0.0.1", port))
    assert landed(steering) == "new"
    sock.close()
    with socket.socket() as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        client.bind(("0.0.0.0", source))
        client.connect(("127.0.0.2", port))  # another 4-tuple than the probe's
        assert landed(steering) == "old"


def test_no_other_socket_can_bind_the_probe_port_while_it_probes(
    steerings: list[Steering],
) -> None:
    steering = steering_for(steerings, "tcp://127.0.0.1:0")
    with steering.probing(socket.AF_INET) as sock, socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with pytest.raises(OSError, match="in use"):
            other.bind(("127.0.0.1", sock.getsockname()[1]))
    sock.close()


def test_after_the_promotion_every_connection_goes_to_the_new_release(
    steerings: list[Steering],
) -> None:
    steering = steering_for(steerings, "tcp://127.0.0.1:0")
    steering.to_new()
    assert {connect(steering, "127.0.0.1") for _ in range(OTHERS)} == {"new"}
    # A probe now changes nothing: everything goes to the new release anyway.
    assert probe(steering, "127.0.0.1") == "new"
    assert connect(steering, "127.0.0.1") == "new"


def test_the_program_jumps_land_on_the_returns() -> None:
    """Each jump of the program lands inside it, on the instruction the comments name."""
    code = program(0, 8000)
    for index, (op, jt, jf, k) in enumerate(code):
        if op == 0x05:  # ja
            assert index + 1 + k < len(code)
        elif op & 0x07 == 0x05:  # conditional jumps
            assert index + 1 + jt < len(code) and index + 1 + jf < len(code)
    assert code[-2] == (0x06, 0, 0, 1) and code[-1] == (0x06, 0, 0, 0)
    assert program(1, 8000) == program(1) == [(0x06, 0, 0, 1)]


async def answering(sock: socket.socket, status: int) -> asyncio.Server:
    """An HTTP server on an existing listening socket, answering ``status`` to everything."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, sock=sock.dup())


async def test_an_http_probe_through_the_steering_asks_the_new_release(
    steerings: list[Steering],
) -> None:
    """The readiness gate's own probe: the old release answers 200 to everyone, the new one
    500; the probe through the steering gets the new one's 500, a plain client the 200."""
    steering = steering_for(steerings, "tcp://127.0.0.1:0")
    port = next(iter(steering.old)).sock.getsockname()[1]
    old = await answering(next(iter(steering.old)).sock, 200)
    new = await answering(next(iter(steering.new)).sock, 500)
    async with old, new:
        seen = Seen()
        assert await http_status("127.0.0.1", port, "/", route=steering, why=seen) == 500
        assert str(seen) == "its probe was answered 500"
        assert await http_status("127.0.0.1", port, "/") == 200


async def test_what_a_probe_that_got_no_status_says() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
        seen = Seen()
        assert await http_status("127.0.0.1", port, "/", why=seen) is None
        assert str(seen) == "its probe got connection refused"

    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()) not in (b"\r\n", b""):  # read it all: no RST
            pass
        writer.close()

    server = await asyncio.start_server(close_at_once, "127.0.0.1", 0)
    async with server:
        seen = Seen()
        port = server.sockets[0].getsockname()[1]
        assert await http_status("127.0.0.1", port, "/", why=seen) is None
        assert str(seen) == "its probe got its connection closed"
