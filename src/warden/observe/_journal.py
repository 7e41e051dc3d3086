"""journald's native protocol: log records as structured entries, not lines on a pipe.

systemd connects a service's stdout/stderr to the journal through a stream and says so in
``$JOURNAL_STREAM`` (``device:inode`` of that stream). The variable is inherited through
redirections, so it is only believed when stderr's own ``fstat`` has that device and inode
(:func:`journal_stream_matches`); then warden sends each record as one datagram to
``/run/systemd/journal/socket``, with the event's typed data as fields of its own
(``COMPONENT=http``, ``RESULT=timeout``), which ``journalctl COMPONENT=http`` can select.

The format (systemd's "Native Journal Protocol"): one ``NAME=value\\n`` per field; a value
holding a newline is framed as ``NAME\\n``, its length as a 64-bit little-endian integer,
the value, ``\\n``. An entry too big for one datagram (``EMSGSIZE``) is written to a memfd,
sealed so it cannot change once sent (journald refuses an unsealed one), and its descriptor
passed with ``SCM_RIGHTS`` in an empty datagram.

Sends never block: the socket is non-blocking and an entry journald has no room for is
dropped and counted in :attr:`JournalHandler.dropped` (logging must never stall PID 1).
"""

from __future__ import annotations

import array
import contextlib
import errno
import fcntl
import logging
import os
import re
import socket
import struct
from collections.abc import Iterable, Iterator

from ..lifecycle import Event, LeakFound

JOURNAL_SOCKET = "/run/systemd/journal/socket"

_NAME = re.compile(r"[A-Z0-9][A-Z0-9_]{0,63}\Z")
# Fields journald or its readers give a meaning of their own: event data never takes them.
_RESERVED = frozenset(
    {
        "MESSAGE", "MESSAGE_ID", "PRIORITY", "CODE_FILE", "CODE_LINE", "CODE_FUNC", "ERRNO",
        "INVOCATION_ID", "USER_INVOCATION_ID", "SYSLOG_FACILITY", "SYSLOG_IDENTIFIER",
        "SYSLOG_PID", "SYSLOG_TIMESTAMP", "SYSLOG_RAW", "DOCUMENTATION", "TID", "UNIT",
        "USER_UNIT", "COREDUMP_UNIT", "OBJECT_PID",
    }
)  # fmt: skip
_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}
_SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL


def journal_stream_matches(fd: int = 2) -> bool:
    """Whether ``$JOURNAL_STREAM`` names the very stream open on ``fd`` (stderr)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    dev, sep, ino = value.partition(":")
    if not sep or not dev.isdigit() or not ino.isdigit():
        return False
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    return st.st_dev == int(dev) and st.st_ino == int(ino)


def encode(fields: Iterable[tuple[str, str | bytes]]) -> bytes:
    """One journal entry in the native format.

    >>> encode([("MESSAGE", "two\\nlines"), ("PRIORITY", "6")])[:8]
    b'MESSAGE\\n'
    """
    out = bytearray()
    for name, value in fields:
        if not _NAME.match(name):
            raise ValueError(f"journal field name {name!r} must match [A-Z0-9][A-Z0-9_]*")
        data = value.encode("utf-8", "replace") if isinstance(value, str) else value
        if b"\n" in data:
            out += name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += name.encode() + b"=" + data + b"\n"
    return bytes(out)


def decode(entry: bytes) -> Iterator[tuple[str, bytes]]:
    """The fields of one native-format entry, in order (what journald reads)."""
    pos = 0
    while pos < len(entry):
        end = entry.index(b"\n", pos)
        line = entry[pos:end]
        if b"=" in line:
            name, _, value = line.partition(b"=")
            yield name.decode(), value
            pos = end + 1
        else:
            (size,) = struct.unpack_from("<Q", entry, end + 1)
            start = end + 9
            yield line.decode(), entry[start : start + size]
            if entry[start + size : start + size + 1] != b"\n":
                raise ValueError(f"journal field {line.decode()!r}: no newline after its value")
            pos = start + size + 1


def event_fields(event: Event) -> list[tuple[str, str]]:
    """The journal fields of a timeline event: its rendering, then its data upper-cased."""
    fields = [
        ("WARDEN_KIND", event.kind),
        ("WARDEN_EVENT", event.kind.partition(".")[0]),
        ("WARDEN_STATE", event.state.value),
        ("WARDEN_SEQ", str(event.seq)),
        ("WARDEN_MONOTONIC", f"{event.at:.6f}"),
    ]
    for name, value in (
        ("WARDEN_NAME", event.name),
        ("WARDEN_OUTCOME", event.outcome),
        ("WARDEN_DURATION", None if event.duration is None else f"{event.duration:.6f}"),
    ):
        if value is not None:
            fields.append((name, value))
    fields.extend(_flatten("", event.fact.data()))
    return fields


def _flatten(prefix: str, value: object) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _flatten(f"{prefix}{_field_name(str(key))}_", inner)
        return
    name = prefix.rstrip("_")
    if name in _RESERVED:
        name = "WARDEN_" + name
    if value is None:
        return
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    yield name[:64], str(value)


def _field_name(key: str) -> str:
    return re.sub(r"[^A-Z0-9_]", "_", key.upper()).lstrip("_") or "FIELD"


class JournalHandler(logging.Handler):
    """A logging handler writing each record to journald, with a timeline event's fields.

    Args:
        path: journald's native socket.
        identifier: ``SYSLOG_IDENTIFIER`` (what ``journalctl -t`` selects).
    """

    def __init__(self, path: str = JOURNAL_SOCKET, identifier: str = "warden") -> None:
        super().__init__()
        self.path = path
        self.identifier = identifier
        self.dropped = 0
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.setblocking(False)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.send(self.entry(record))
        except Exception:
            self.handleError(record)

    def entry(self, record: logging.LogRecord) -> bytes:
        """The native-format entry for ``record``."""
        message = record.getMessage()
        event: Event | None = getattr(record, "warden_event", None)
        if event is not None and isinstance(event.fact, LeakFound) and event.detail:
            message += "\n" + event.detail.rstrip("\n")
        fields: list[tuple[str, str]] = [
            ("MESSAGE", message),
            ("PRIORITY", str(_PRIORITY.get(record.levelno, 6))),
            ("SYSLOG_IDENTIFIER", self.identifier),
            ("CODE_FILE", record.pathname),
            ("CODE_LINE", str(record.lineno)),
        ]
        if record.funcName:
            fields.append(("CODE_FUNC", record.funcName))
        if record.exc_info:
            fields[0] = (
                "MESSAGE",
                message + "\n" + logging.Formatter().formatException(record.exc_info),
            )
        if event is not None:
            fields.extend(event_fields(event))
        return encode(fields)

    def send(self, entry: bytes) -> None:
        """Send one entry: a datagram, or a sealed memfd when it is too big for one."""
        try:
            self._sock.sendto(entry, self.path)
        except OSError as exc:
            if exc.errno == errno.EMSGSIZE:
                self._send_memfd(entry)
            elif exc.errno in (errno.EAGAIN, errno.ENOBUFS):
                self.dropped += 1  # journald is behind: drop rather than block
            else:
                raise

    def _send_memfd(self, entry: bytes) -> None:
        fd = os.memfd_create("warden-journal", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            view = memoryview(entry)
            while view:
                view = view[os.write(fd, view) :]
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
            rights = array.array("i", [fd]).tobytes()
            try:
                self._sock.sendmsg(
                    [], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)], 0, self.path
                )
            except BlockingIOError:
                self.dropped += 1
        finally:
            os.close(fd)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()
        super().close()
