"""Peers for the end-to-end systemd tests: a receiver standing for systemd *above* warden,
FIFOs a test opens to let a child go on, and free loopback ports.

No sleeping as synchronisation: a child that must wait for the test blocks in ``open()`` of a
FIFO until the test opens the other end; the receiver waits for a datagram with a deadline.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.supervisor.conftest import DEADLINE, wait_until
from tests.systemd.test_notify import Receiver


@dataclass(frozen=True)
class Upward:
    """One datagram warden sent to its own NOTIFY_SOCKET, and when it arrived."""

    at: float  #: ``time.monotonic()`` when it was received (CLOCK_MONOTONIC is system-wide)
    fields: dict[str, str]
    pid: int  #: the sender's pid from SCM_CREDENTIALS


class Manager:
    """Stands for systemd above warden: warden's ``$NOTIFY_SOCKET``, every datagram recorded.

    ``env`` goes into warden's environment. Datagrams on one socket arrive in the order they
    were sent, so "no READY=1 among the messages up to STATUS=x" is a statement about order.
    """

    def __init__(self, path: Path) -> None:
        self.receiver = Receiver(str(path))
        self.env = {"NOTIFY_SOCKET": str(path)}
        self.received: list[Upward] = []

    def _receive(self, timeout: float) -> Upward | None:
        try:
            fields, fds, pid = self.receiver.receive(timeout)
        except (TimeoutError, BlockingIOError):
            return None
        message = Upward(time.monotonic(), fields, pid)
        for fd in fds:
            os.close(fd)
        self.received.append(message)
        return message

    def wait_for(
        self,
        key: str,
        value: str | None = None,
        *,
        after: Upward | None = None,
        timeout: float = DEADLINE,
    ) -> Upward:
        """The first message with ``key`` (equal to ``value``), received later than ``after``."""
        deadline = time.monotonic() + timeout
        seen = 0 if after is None else self.received.index(after) + 1
        while True:
            for message in self.received[seen:]:
                if key in message.fields and value in (None, message.fields[key]):
                    return message
            seen = len(self.received)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._receive(remaining) is None:
                raise AssertionError(
                    f"warden sent no {key}={value or '*'} upward within {timeout}s; got "
                    f"{[m.fields for m in self.received]}"
                )

    def drain(self) -> list[dict[str, str]]:
        """Take every datagram already queued (no waiting); all fields received so far."""
        while self._receive(0.0) is not None:
            pass
        return [m.fields for m in self.received]

    def up_to(self, message: Upward) -> list[dict[str, str]]:
        """The fields of every message received before and including ``message``."""
        return [m.fields for m in self.received[: self.received.index(message) + 1]]

    def between(self, first: Upward, last: Upward) -> list[dict[str, str]]:
        """The fields of the messages after ``first``, up to and including ``last``."""
        start, end = self.received.index(first), self.received.index(last)
        return [m.fields for m in self.received[start + 1 : end + 1]]

    def after(self, message: Upward) -> list[dict[str, str]]:
        return [m.fields for m in self.received[self.received.index(message) + 1 :]]

    def close(self) -> None:
        self.receiver.close()


def make_fifo(path: Path) -> Path:
    os.mkfifo(path, 0o600)
    return path


def release(fifo: Path, timeout: float = DEADLINE) -> None:
    """Let a child blocked in ``open(fifo)`` go on: open the write end and close it.

    A non-blocking open for writing fails with ENXIO while nobody has the FIFO open for
    reading (``man 7 fifo``), so this waits until the child is there.
    """

    def opened() -> bool:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
            return False
        os.close(fd)
        return True

    wait_until(opened, f"a reader of {fifo}", timeout)


#: What a child runs to wait for :func:`release` (the open blocks; read sees EOF).
WAIT_FOR_RELEASE = "with open({fifo!r}) as fifo:\n    fifo.read()\n"


def free_port() -> int:
    """A loopback TCP port nobody listens on now (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def needs(module: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        importlib.util.find_spec(module) is None, reason=f"{module} is not installed"
    )


def final_lines(stderr: str) -> list[str]:
    """warden's own lines on stderr that are not its JSON log: usage errors."""
    return [line for line in stderr.splitlines() if line and not line.startswith("{")]


def closing(stderr: str) -> dict[str, Any]:
    """The ``exit`` fact's data: why warden exits, which must be the last line of its log."""
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    assert last.startswith("{"), f"the last line is not warden's closing fact: {last!r}"
    fact = json.loads(last)
    assert fact.get("kind") == "exit", f"the last line is not warden's closing fact: {last!r}"
    data = fact["data"]
    assert isinstance(data, dict)
    return data


def closing_reason(stderr: str) -> str:
    """Why warden exits, as its closing line says it."""
    return str(closing(stderr)["reason"])


def gone(pid: int) -> bool:
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] == "Z"
    return True
