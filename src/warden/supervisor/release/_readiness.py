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
while a program is starting; nothing probes a program that is serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from ..._exceptions import ConfigurationError, NotReady
from ..sockets._probe import PROBE_NAME

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

    @property
    def authority(self) -> str:
        """``HOST:PORT`` (``[v6]:PORT``), as an HTTP Host header names it."""
        return _hostport(self.host, self.port)

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
    if text.startswith(("http://", "tcp://")):
        url = urlsplit(text)
        try:
            port = url.port
        except ValueError:
            port = None
        if not url.hostname or not port:  # port 0 is "any port" to bind, none to connect to
            raise ConfigurationError(
                f"--ready {text!r} needs a host and a port (1-65535), like "
                "http://127.0.0.1:8000/readyz"
            )
        if url.scheme == "tcp":
            return ReadySpec("tcp", host=url.hostname, port=port)
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        return ReadySpec("http", host=url.hostname, port=port, path=path)
    raise ConfigurationError(
        f"--ready {text!r} is not a gate; use notify, http://HOST:PORT/PATH, tcp, "
        "tcp://HOST:PORT, exec:CMD or none"
    )


@dataclass
class GateInputs:
    """What a gate may need from the supervisor."""

    #: Set when the program sent READY=1 (the notify gate).
    notified: asyncio.Event
    #: The program ended (any gate stops waiting then).
    ended: asyncio.Event
    #: The address of the first TCP socket warden holds, for a bare ``tcp`` gate.
    held_tcp: tuple[str, int] | None = None
    #: Where an ``http`` gate connects instead of the spec's address: the run's private probe
    #: listener, so only that run can answer (the Host header still names the spec's address).
    probe_address: tuple[str, int] | None = None
    #: Runs a command as warden's child and returns its exit code (for ``exec:``).
    run_check: Callable[[Sequence[str]], Awaitable[int]] | None = None


async def wait_ready(spec: ReadySpec, inputs: GateInputs, timeout: float) -> None:
    """Return once the program is ready; raise :class:`NotReady` if it ends or time runs out.

    A gate that cannot work at all (a bare ``tcp`` with no TCP socket held) raises
    :class:`ConfigurationError` at once.
    """
    answers: list[int] = []  # the status codes an http gate's probes got
    probe = None if spec.kind in ("none", "notify") else _probe_for(spec, inputs, answers)
    gate = asyncio.ensure_future(_gate(spec, inputs, probe))
    ended = asyncio.ensure_future(inputs.ended.wait())
    try:
        done, _ = await asyncio.wait(
            {gate, ended}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for task in (gate, ended):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await gate
    if gate in done and gate.exception() is None:
        return
    if gate in done:
        raise NotReady(f"readiness check {spec} failed: {gate.exception()}")
    if ended in done:
        raise NotReady("ended before it was ready")
    raise NotReady(f"{timeout:g}s{_what_the_probe_saw(spec, inputs, answers)}")


def _what_the_probe_saw(spec: ReadySpec, inputs: GateInputs, answers: list[int]) -> str:
    """For an http gate that probed one run alone: what it got, the way to tell a broken
    release (answered, not 2xx/3xx) from a server that never serves the probe socket."""
    if spec.kind != "http" or inputs.probe_address is None:
        return ""
    if answers:
        return f" (its probe was answered {answers[-1]})"
    return (
        f" (nothing answered on its {PROBE_NAME} socket, the last LISTEN_FDS entry: a server "
        "that does not serve every socket it is handed never will; gate it with --ready notify)"
    )


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
        await asyncio.sleep(interval)
        interval = min(interval * 1.5, _MAX_INTERVAL)


def _probe_for(
    spec: ReadySpec, inputs: GateInputs, answers: list[int]
) -> Callable[[], Awaitable[bool]]:
    if spec.kind == "http":
        host, port = inputs.probe_address or (spec.host, spec.port)

        async def probe() -> bool:
            status = await http_status(host, port, spec.path, host_header=spec.authority)
            if status is not None:
                answers.append(status)
            return status is not None and 200 <= status < 400

        return probe
    if spec.kind == "tcp":
        address = (spec.host, spec.port) if spec.port else inputs.held_tcp
        if address is None:
            raise ConfigurationError(
                "--ready tcp needs a TCP --listen socket, or an address: tcp://HOST:PORT"
            )
        return lambda: _connects(*address)
    run_check = inputs.run_check
    assert run_check is not None, "the supervisor provides run_check for exec gates"
    return lambda: _command_ok(run_check, spec.command)


async def http_ok(host: str, port: int, path: str, *, host_header: str | None = None) -> bool:
    """One HTTP probe: True for a 2xx or 3xx status line; False for anything else."""
    status = await http_status(host, port, path, host_header=host_header)
    return status is not None and 200 <= status < 400


async def http_status(
    host: str, port: int, path: str, *, host_header: str | None = None
) -> int | None:
    """One HTTP probe: the status code of the answer, or None when nothing HTTP answered.

    Nothing HTTP includes a reply that is not HTTP at all (a status line longer than the
    stream's 64 KiB limit, binary, a closed connection): "not ready yet", never a reason to
    give up before the gate's timeout.
    """
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: {host_header or _hostport(host, port)}\r\n"
                    "User-Agent: warden-readiness\r\nConnection: close\r\n\r\n".encode()
                )
                status_line = await reader.readline()
            finally:
                writer.close()
    except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
        # ValueError: readline() past the limit without a newline (LimitOverrunError's base)
        return None
    parts = status_line.split()
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return None
    return int(parts[1])


async def _connects(host: str, port: int) -> bool:
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT):
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
