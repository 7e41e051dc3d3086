"""The readiness gate: when is a program that has started really ready to serve?

``--ready`` says how warden knows:

* ``notify`` — the program sends READY=1 to warden's notify socket (sd_notify). The only
  gate that knows what the program knows; gunicorn, uvicorn and hypercorn behind a small
  hook, and anything linked against libsystemd, send it.
* ``http://127.0.0.1:8000/readyz`` — a GET answered 200-399, as the kubelet counts it.
* ``tcp`` or ``tcp://host:port`` — a connect succeeds. Proves little when warden holds the
  socket: the kernel completes the handshake into the listen backlog before the program has
  called ``accept()``, so a pre-bound socket "connects" while the program is still loading.
* ``exec:CMD`` — CMD exits 0 (run by warden, reaped by warden's reaper like every child).
* ``none`` — ready as soon as the program is started.

Probing gates (http, tcp, exec) retry with a growing interval, from 10 ms to 250 ms: fast
when the program is quick to start, a few probes a second when it is slow. They run only
while a program is starting; nothing probes a program that is serving. The gate's timeout,
the intervals and each probe's own timeout are on the supervisor's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import shlex
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from ..._exceptions import ConfigurationError, NotReady
from ...lifecycle import Clock
from ..sockets._steering import Steering

GateKind = Literal["none", "notify", "http", "tcp", "exec"]
_FIRST_INTERVAL = 0.01
_MAX_INTERVAL = 0.25
_PROBE_TIMEOUT = 2.0


@dataclass(frozen=True)
class ReadySpec:
    """A parsed ``--ready`` value."""

    kind: GateKind
    host: str = ""
    port: int = 0
    path: str = "/"
    command: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.kind == "http":
            return f"http://{_hostport(self.host, self.port)}{self.path}"
        if self.kind == "tcp" and self.port:
            return f"tcp://{_hostport(self.host, self.port)}"
        if self.kind == "exec":
            return f"exec:{shlex.join(self.command)}"
        return self.kind


def parse_ready(text: str) -> ReadySpec:
    """Parse ``--ready``; a bad value is a one-line :class:`ConfigurationError`."""
    if text in ("none", "notify", "tcp"):
        return ReadySpec(text)  # type: ignore[arg-type]
    if text.startswith("exec:"):
        try:
            command = tuple(shlex.split(text[5:]))
        except ValueError as exc:
            raise ConfigurationError(f"--ready {text!r}: {exc}; quote the command") from exc
        if not command:
            raise ConfigurationError(f"--ready {text!r} has no command; write exec:CMD ARGS")
        return ReadySpec("exec", command=command)
    if text.startswith("tcp://"):
        host, port, _ = _address(text, f"--ready {text!r}")
        return ReadySpec("tcp", host=host, port=port)
    if text.startswith("http://"):
        host, port, path = _address(text, f"--ready {text!r}")
        return ReadySpec("http", host=host, port=port, path=path)
    raise ConfigurationError(
        f"--ready {text!r} is not a gate; use notify, http://HOST:PORT/PATH, tcp, "
        "tcp://HOST:PORT, exec:CMD or none"
    )


def parse_check_url(text: str, what: str) -> ReadySpec:
    """An ``http://HOST:PORT/PATH`` a health check GETs (``--upgrade-confirm-url``); ``what``
    names the option (or its variable) in the error."""
    if not text.startswith("http://"):
        raise ConfigurationError(
            f"{what}={text!r} is not an http:// URL; give e.g. http://127.0.0.1:8000/healthz"
        )
    host, port, path = _address(text, f"{what}={text!r}")
    return ReadySpec("http", host=host, port=port, path=path)


def _address(text: str, given: str) -> tuple[str, int, str]:
    """``text``'s host, port and path (with its query); ``given`` names it in the error."""
    url = urlsplit(text)
    try:
        port = url.port
    except ValueError:
        port = None
    if not url.hostname or not port:  # port 0 is "any port" to bind, none to connect to
        raise ConfigurationError(
            f"{given} needs a host and a port (1-65535), like http://127.0.0.1:8000/readyz"
        )
    return url.hostname, port, (url.path or "/") + (f"?{url.query}" if url.query else "")


@dataclass
class GateInputs:
    """What a gate may need from the supervisor."""

    #: Set when the program sent READY=1 (the notify gate).
    notified: asyncio.Event
    #: The program ended (any gate stops waiting then).
    ended: asyncio.Event
    #: The address of the first TCP socket warden holds, for a bare ``tcp`` gate.
    held_tcp: tuple[str, int] | None = None
    #: An upgrade's steering, when the new release has sockets of its own: an ``http`` probe
    #: of a held port then reaches the new release alone, through the port both releases share
    #: (``sockets/_steering.py``). None: the probe connects as anyone does.
    route: Steering | None = None
    #: Runs a command as warden's child and returns its exit code (for ``exec:``).
    run_check: Callable[[Sequence[str]], Awaitable[int]] | None = None
    #: What the gate's timeout, its probes' intervals and their timeouts wait on.
    clock: Clock = field(default_factory=Clock)


async def wait_ready(spec: ReadySpec, inputs: GateInputs, timeout: float) -> None:
    """Return once the program is ready; raise :class:`NotReady` if it ends or time runs out.

    A gate that cannot work at all (a bare ``tcp`` with no TCP socket held) raises
    :class:`ConfigurationError` at once.
    """
    seen = Seen()  # what an http gate's probes got
    probe = None if spec.kind in ("none", "notify") else _probe_for(spec, inputs, seen)
    clock = inputs.clock
    deadline = clock.at(clock.now() + timeout)
    gate = asyncio.ensure_future(_gate(spec, inputs, probe))
    ended = asyncio.ensure_future(inputs.ended.wait())
    waits: set[asyncio.Future[Any]] = {gate, ended, deadline}
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (gate, ended, deadline):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await gate
    if gate in done and gate.exception() is None:
        return
    if gate in done:
        raise NotReady(f"readiness check {spec} failed: {gate.exception()}")
    if ended in done:
        raise NotReady("ended before it was ready")
    raise NotReady(f"{timeout:g}s{_what_the_probe_saw(spec, inputs, seen)}")


@dataclass
class Seen:
    """What the last HTTP probe got: a status code, or why there was none."""

    last: int | str | None = None

    def __str__(self) -> str:
        if isinstance(self.last, int):
            return f"its probe was answered {self.last}"
        return f"its probe got {self.last}"


def _what_the_probe_saw(spec: ReadySpec, inputs: GateInputs, seen: Seen) -> str:
    """For an http gate that probed an upgrade's new release alone: what it got, the way to
    tell a broken release (answered, not 2xx/3xx) from one that never answered."""
    if spec.kind != "http" or inputs.route is None or seen.last is None:
        return ""
    return f" ({seen})"


async def _gate(
    spec: ReadySpec, inputs: GateInputs, probe: Callable[[], Awaitable[bool]] | None
) -> None:
    if spec.kind == "none":
        return
    if probe is None:
        await inputs.notified.wait()
        return
    interval = _FIRST_INTERVAL
    while not await probe():
        await inputs.clock.sleep(interval)
        interval = min(interval * 1.5, _MAX_INTERVAL)


def _probe_for(spec: ReadySpec, inputs: GateInputs, seen: Seen) -> Callable[[], Awaitable[bool]]:
    clock = inputs.clock
    if spec.kind == "http":
        return lambda: http_ok(spec, route=inputs.route, seen=seen, clock=clock)
    if spec.kind == "tcp":
        address = (spec.host, spec.port) if spec.port else inputs.held_tcp
        if address is None:
            raise ConfigurationError(
                "--ready tcp needs a TCP --listen socket, or an address: tcp://HOST:PORT"
            )
        return lambda: _connects(*address, clock)
    run_check = inputs.run_check
    assert run_check is not None, "the supervisor provides run_check for exec gates"
    return lambda: _command_ok(run_check, spec.command)


async def http_ok(
    spec: ReadySpec,
    *,
    route: Steering | None = None,
    seen: Seen | None = None,
    clock: Clock | None = None,
) -> bool:
    """One HTTP probe of ``spec``'s URL: True for a 2xx or 3xx status line, False for anything
    else. ``route``: an upgrade's steering, so the new release alone answers; ``seen`` gets
    what the probe got; ``clock``: what its timeout is on."""
    status = await http_status(spec.host, spec.port, spec.path, route=route, why=seen, clock=clock)
    return status is not None and 200 <= status < 400


async def http_status(
    host: str,
    port: int,
    path: str,
    *,
    route: Steering | None = None,
    why: Seen | None = None,
    clock: Clock | None = None,
) -> int | None:
    """One HTTP probe: the status code of the answer, or None when nothing HTTP answered.

    Nothing HTTP includes a reply that is not HTTP at all (a status line longer than the
    stream's 64 KiB limit, binary, a closed connection): "not ready yet", never a reason to
    give up before the gate's timeout. ``why`` gets the status, or why there was none. The
    probe's own timeout is on ``clock`` (the real one by default).
    """
    seen = why if why is not None else Seen()
    try:
        async with (clock or Clock()).timeout(_PROBE_TIMEOUT):
            reader, writer = await _open(host, port, route)
            try:
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: {_hostport(host, port)}\r\n"
                    "User-Agent: warden-readiness\r\nConnection: close\r\n\r\n".encode()
                )
                status_line = await reader.readline()
            finally:
                writer.close()
    except TimeoutError:
        seen.last = f"no answer within {_PROBE_TIMEOUT:g}s"
        return None
    except OSError as exc:
        # By errno: asyncio's own strerror is "Connect call failed ('127.0.0.1', 8000)".
        seen.last = (os.strerror(exc.errno) if exc.errno else str(exc)).lower()
        return None
    except (ValueError, asyncio.IncompleteReadError):
        # ValueError: readline() past the limit without a newline (LimitOverrunError's base)
        seen.last = "an answer that is not HTTP"
        return None
    parts = status_line.split()
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        seen.last = "an answer that is not HTTP" if status_line else "its connection closed"
        return None
    status = int(parts[1])
    seen.last = status
    return status


async def _open(
    host: str, port: int, route: Steering | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if route is None:
        return await asyncio.open_connection(host, port)
    loop = asyncio.get_running_loop()
    literal = _literal(host, port)
    address: object
    if literal is not None:  # the usual: no lookup, and no resolver thread started for it
        family, address = literal
    else:  # a name is resolved as a client would
        family, _, _, _, address = (
            await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        )[0]
    with route.probing(family) as sock:
        await loop.sock_connect(sock, address)
    try:
        return await asyncio.open_connection(sock=sock)
    except BaseException:
        sock.close()
        raise


def _literal(host: str, port: int) -> tuple[int, tuple[str, int]] | None:
    """The family and address of a literal IP ``host``; None for a name (or a scoped one)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        return None
    return (socket.AF_INET if ip.version == 4 else socket.AF_INET6), (host, port)


async def _connects(host: str, port: int, clock: Clock) -> bool:
    try:
        async with clock.timeout(_PROBE_TIMEOUT):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def _command_ok(
    run_check: Callable[[Sequence[str]], Awaitable[int]], command: Sequence[str]
) -> bool:
    return await run_check(command) == 0


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
