"""The sd_notify protocol, client side: datagrams of ``KEY=VALUE`` lines to $NOTIFY_SOCKET.

Reference: ``man sd_notify``. A message is one ``AF_UNIX``/``SOCK_DGRAM`` datagram; the
socket's address is a path, or an abstract name written with a leading ``@``. File
descriptors travel as ``SCM_RIGHTS``. ``BARRIER=1`` carries the write end of a pipe: the
manager closes it after it has handled every earlier message, so the sender knows it was heard
(without it, a sender that exits at once may have its messages attributed to no one).
"""

from __future__ import annotations

import array
import os
import select
import socket
import time
from collections.abc import Mapping, Sequence

from .._exceptions import ConfigurationError


def encode(fields: Mapping[str, object]) -> bytes:
    """``{"READY": 1, "STATUS": "up"}`` -> ``b"READY=1\\nSTATUS=up\\n"``.

    A key must be upper-case ASCII, digits and ``_``; a value must not contain a newline (it
    would start another assignment).
    """
    lines = []
    for key, value in fields.items():
        if not key or not all(
            c.isascii() and (c.isupper() or c.isdigit() or c == "_") for c in key
        ):
            raise ConfigurationError(f"sd_notify key {key!r} is invalid; use A-Z, 0-9 and _")
        text = str(value)
        if "\n" in text or "\0" in text:
            raise ConfigurationError(
                f"sd_notify {key}={text!r} contains a newline or NUL; send one line"
            )
        lines.append(f"{key}={text}\n")
    return "".join(lines).encode()


def notify_address(value: str) -> str | bytes:
    """The socket address for a $NOTIFY_SOCKET value: a path, or ``@name`` for abstract."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    raise ConfigurationError(
        f"NOTIFY_SOCKET={value!r} is neither an absolute path nor an @abstract name"
    )


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, as RELOADING=1 wants in MONOTONIC_USEC."""
    return time.monotonic_ns() // 1000


class Notifier:
    """A connection to the service manager's notify socket.

    ``Notifier.from_environment()`` is ``None`` when $NOTIFY_SOCKET is unset, so a service
    runs the same with or without a manager::

        notifier = Notifier.from_environment()
        if notifier:
            notifier.send(READY=1, STATUS="serving")
    """

    def __init__(self, address: str) -> None:
        self.address = address
        self._target = notify_address(address)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @classmethod
    def from_environment(cls, *, unset: bool = False) -> Notifier | None:
        """The notifier for $NOTIFY_SOCKET, or ``None``; ``unset`` hides it from children."""
        value = os.environ.get("NOTIFY_SOCKET")
        if unset:
            os.environ.pop("NOTIFY_SOCKET", None)
        return cls(value) if value else None

    def send(self, fds: Sequence[int] = (), /, **fields: object) -> None:
        """Send one message; ``fds`` travel with it as SCM_RIGHTS.

        Raises ``OSError`` when the manager is gone (ECONNREFUSED, ENOENT).
        """
        payload = encode(fields)
        ancillary = []
        if fds:
            ancillary.append(
                (socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())
            )
        self._sock.sendmsg([payload], ancillary, 0, self._target)

    def ready(self, status: str | None = None) -> None:
        self.send(**_with_status({"READY": 1}, status))

    def reloading(self, status: str | None = None) -> None:
        """RELOADING=1 with MONOTONIC_USEC, which systemd (253+) requires for Type=notify-reload."""
        self.send(**_with_status({"RELOADING": 1, "MONOTONIC_USEC": monotonic_usec()}, status))

    def stopping(self, status: str | None = None) -> None:
        self.send(**_with_status({"STOPPING": 1}, status))

    def status(self, text: str) -> None:
        self.send(STATUS=text)

    def watchdog(self) -> None:
        self.send(WATCHDOG=1)

    def watchdog_trigger(self) -> None:
        """Tell the manager the service is unhealthy now, as if the watchdog had expired."""
        self.send(WATCHDOG="trigger")

    def extend_timeout(self, seconds: float) -> None:
        """Ask for ``seconds`` more before the current start/stop/reload times out."""
        self.send(EXTEND_TIMEOUT_USEC=int(seconds * 1_000_000))

    def fdstore(self, fds: Sequence[int], name: str | None = None) -> None:
        """Hand ``fds`` to the manager's fd store (kept across restarts)."""
        fields: dict[str, object] = {"FDSTORE": 1}
        if name is not None:
            fields["FDNAME"] = name
        self.send(fds, **fields)

    def barrier(self, timeout: float = 5.0) -> bool:
        """Wait until the manager has handled every earlier message; ``False`` on timeout."""
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        try:
            self.send([write_end], BARRIER=1)
            os.close(write_end)
            write_end = -1
            # The manager closes its copy of the write end once it has processed the
            # earlier messages: the read end then sees POLLHUP.
            poller = select.poll()
            poller.register(read_end, select.POLLHUP)
            return bool(poller.poll(timeout * 1000))
        finally:
            if write_end >= 0:
                os.close(write_end)
            os.close(read_end)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _with_status(fields: dict[str, object], status: str | None) -> dict[str, object]:
    if status is not None:
        fields["STATUS"] = status
    return fields
