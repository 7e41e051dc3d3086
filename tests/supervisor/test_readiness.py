"""The readiness gate against real sockets, a real HTTP endpoint and real commands."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Sequence

import pytest

import warden
from warden._exceptions import NotReady
from warden.lifecycle import ManualClock
from warden.supervisor.release._readiness import (
    GateInputs,
    ReadySpec,
    Seen,
    http_status,
    parse_ready,
    wait_ready,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("notify", ReadySpec("notify")),
        ("none", ReadySpec("none")),
        ("tcp", ReadySpec("tcp")),
        ("tcp://127.0.0.1:9000", ReadySpec("tcp", host="127.0.0.1", port=9000)),
        ("http://[::1]:8000/readyz?full=1", ReadySpec("http", "::1", 8000, "/readyz?full=1")),
        ("exec:curl -f 'http://x/a b'", ReadySpec("exec", command=("curl", "-f", "http://x/a b"))),
    ],
)
def test_parse_ready(text: str, expected: ReadySpec) -> None:
    assert parse_ready(text) == expected
    assert str(parse_ready(str(expected))) == str(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ready", "is not a gate; use notify"),
        ("http://localhost/readyz", "needs a host and a port"),
        ("http://localhost:99999/", "needs a host and a port"),
        ("exec:", "has no command"),
        ("exec:'unclosed", "quote the command"),
    ],
)
def test_bad_ready_values(text: str, message: str) -> None:
    with pytest.raises(warden.ConfigurationError, match=message):
        parse_ready(text)


def inputs(**kwargs: object) -> GateInputs:
    return GateInputs(notified=asyncio.Event(), ended=asyncio.Event(), **kwargs)  # type: ignore[arg-type]


async def serve_http(statuses: list[int]) -> tuple[asyncio.Server, int, list[str]]:
    """A real HTTP endpoint answering the given statuses in turn (then the last one)."""
    seen: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = (await reader.readline()).decode()
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        seen.append(request.split()[1])
        status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], seen


async def test_http_gate_waits_for_a_2xx() -> None:
    server, port, seen = await serve_http([503, 503, 500, 200])
    async with server:
        spec = parse_ready(f"http://127.0.0.1:{port}/readyz")
        await wait_ready(spec, inputs(), timeout=10)
    assert seen == ["/readyz"] * 4


async def test_http_gate_times_out_with_the_reason() -> None:
    server, port, seen = await serve_http([503])
    clock = ManualClock(autojump_threshold=0)  # the probes' intervals and the timeout, jumped
    start = clock.now()
    async with server:
        with pytest.raises(NotReady, match=r"^0\.3s$"):
            gate = inputs(clock=clock)
            await wait_ready(parse_ready(f"http://127.0.0.1:{port}/"), gate, timeout=0.3)
    assert clock.now() == start + 0.3
    # Every 10 ms, growing by half each time: 0, 10, 25, 47.5, 81.25, 131.9, 207.8 ms.
    assert len(seen) == 7


async def test_a_probe_nobody_answers_is_cut_at_its_own_timeout() -> None:
    """A server that accepts and never answers (a release whose loop is stuck): the probe
    gives up after its 2 s and says why, on the clock it is given."""
    hung_up = asyncio.Event()

    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()  # until the probe gives up and closes
        finally:
            writer.close()
            hung_up.set()

    server = await asyncio.start_server(deaf, "127.0.0.1", 0)
    clock = ManualClock(autojump_threshold=0)
    start = clock.now()
    async with server:
        port = server.sockets[0].getsockname()[1]
        seen = Seen()
        assert await http_status("127.0.0.1", port, "/", why=seen, clock=clock) is None
        await asyncio.wait_for(hung_up.wait(), 5)
    assert str(seen) == "its probe got no answer within 2s"
    assert clock.now() == start + 2


async def test_a_program_that_ends_stops_the_wait() -> None:
    gate = inputs()
    asyncio.get_running_loop().call_soon(gate.ended.set)
    with pytest.raises(NotReady, match="ended before it was ready"):
        await wait_ready(parse_ready("notify"), gate, timeout=10)


async def test_notify_gate() -> None:
    gate = inputs()
    asyncio.get_running_loop().call_soon(gate.notified.set)
    await wait_ready(parse_ready("notify"), gate, timeout=10)


async def test_tcp_gate_uses_the_held_socket_and_proves_little() -> None:
    # A bound, listening socket nobody accepts on still "connects": the kernel completes the
    # handshake into the backlog. That is why tcp is the weak gate.
    with socket.create_server(("127.0.0.1", 0)) as held:
        address = held.getsockname()
        await wait_ready(parse_ready("tcp"), inputs(held_tcp=address), timeout=10)
    with pytest.raises(warden.ConfigurationError, match="needs a TCP --listen socket"):
        await wait_ready(parse_ready("tcp"), inputs(), timeout=10)


async def test_exec_gate_runs_the_command_until_it_succeeds(tmp_path: object) -> None:
    runs: list[Sequence[str]] = []

    async def run_check(command: Sequence[str]) -> int:
        runs.append(command)
        code = 0 if len(runs) >= 3 else 1
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", f"raise SystemExit({code})"
        )
        return await proc.wait()

    await wait_ready(parse_ready("exec:check --now"), inputs(run_check=run_check), timeout=10)
    assert runs == [("check", "--now")] * 3
