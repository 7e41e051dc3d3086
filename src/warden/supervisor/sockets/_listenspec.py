"""``--listen`` specs: what to bind, parsed and checked before anything is bound or spawned.

Forms (an optional ``NAME=`` prefix names the socket in ``LISTEN_FDNAMES``)::

    tcp://127.0.0.1:8000   tcp://0.0.0.0:8000   tcp://[::1]:8000   tcp://[::]:8000
    unix:/run/app.sock     unix:///run/app.sock  unix:/run/app.sock?mode=0660
    unix:@app              (Linux abstract namespace: no file, so no mode and nothing to remove)
    web=tcp://127.0.0.1:8000

Hosts are literal addresses, never names: ``localhost`` resolves to 127.0.0.1 *and* ::1 (one
spec would need two sockets, and which one a client reaches depends on its resolver), and a
name lookup at start can hang on DNS or change between restarts. Port 0 asks the kernel for a
free port (``describe()`` of the bound socket shows which).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import Literal

from ..._exceptions import ConfigurationError
from ..._unix import SUN_PATH_MAX, path_bytes

#: systemd's ``fdname_is_valid()``: at most 255 characters, printable ASCII, no ``:``
#: (the separator of ``LISTEN_FDNAMES``).
FDNAME_MAX = 255
#: The name ``sd_listen_fds_with_names()`` reports for a socket nobody named.
UNNAMED = "unknown"

_FORMS = "tcp://ADDRESS:PORT or unix:/PATH (optionally NAME=...)"


@dataclass(frozen=True)
class ListenSpec:
    """One ``--listen`` value: a TCP address or a UNIX stream socket path, and its name."""

    text: str  #: as the user wrote it, for messages
    scheme: Literal["tcp", "unix"]
    name: str = UNNAMED  #: its entry in ``LISTEN_FDNAMES``
    host: str = ""  #: tcp: a literal IPv4 or IPv6 address, without brackets
    port: int = 0  #: tcp: 0 asks the kernel for a free port
    path: str = ""  #: unix: an absolute path, or ``@name`` for the abstract namespace
    mode: int | None = None  #: unix: permission bits of the socket file (None: the umask's)

    @property
    def ipv6(self) -> bool:
        return self.scheme == "tcp" and ":" in self.host

    @property
    def wildcard_ipv6(self) -> bool:
        return self.ipv6 and ipaddress.IPv6Address(self.host.partition("%")[0]).is_unspecified

    @property
    def address(self) -> str:
        """The address without the name: ``tcp://[::1]:8000``, ``unix:/run/app.sock``."""
        if self.scheme == "unix":
            return f"unix:{self.path}"
        host = f"[{self.host}]" if self.ipv6 else self.host
        return f"tcp://{host}:{self.port}"


def _fail(text: str, problem: str) -> ConfigurationError:
    return ConfigurationError(f"--listen {text!r}: {problem}")


def parse_listen(text: str) -> ListenSpec:
    """Parse one ``--listen`` value; raises :class:`ConfigurationError` naming the fix.

    Example:
        >>> parse_listen("web=tcp://127.0.0.1:8000").port
        8000
    """
    name, sep, rest = text.partition("=")
    if not sep or ":" in name:
        # No name: the first "=" (if any) belongs to the query (unix:/a.sock?mode=0660).
        name, rest = UNNAMED, text
    else:
        _check_name(text, name)
    if rest.startswith("tcp://"):
        return _parse_tcp(text, name, rest.removeprefix("tcp://"))
    if rest.startswith("unix:"):
        return _parse_unix(text, name, rest.removeprefix("unix:"))
    raise _fail(text, f"unknown form; expected {_FORMS}")


def _check_name(text: str, name: str) -> None:
    if not name:
        raise _fail(text, "the name before '=' is empty; write NAME=ADDRESS or just ADDRESS")
    if len(name) > FDNAME_MAX:
        raise _fail(text, f"the name is {len(name)} characters; at most {FDNAME_MAX}")
    if not all(" " <= char <= "~" for char in name):
        raise _fail(text, f"the name {name!r} must be printable ASCII (LISTEN_FDNAMES)")


def _parse_tcp(text: str, name: str, rest: str) -> ListenSpec:
    if rest.startswith("["):
        host, bracket, port = rest[1:].partition("]")
        if not bracket or not port.startswith(":"):
            raise _fail(text, "expected tcp://[IPV6]:PORT, e.g. tcp://[::1]:8000")
        port = port[1:]
    else:
        host, colon, port = rest.rpartition(":")
        if not colon:
            raise _fail(text, "missing :PORT, e.g. tcp://127.0.0.1:8000")
        if ":" in host:
            raise _fail(text, f"an IPv6 address needs brackets: tcp://[{host}]:{port}")
    if not host:
        raise _fail(text, "missing address; use 0.0.0.0 or [::] for every interface")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise _fail(
            text,
            f"{host!r} is not an IP address; warden binds literal addresses (no DNS at "
            "start): 127.0.0.1 or [::1] for loopback, 0.0.0.0 or [::] for every interface",
        ) from None
    if rest.startswith("[") and address.version != 6:
        raise _fail(text, f"brackets are for IPv6 addresses; write tcp://{host}:{port}")
    if not port.isascii() or not port.isdigit():
        raise _fail(text, f"port {port!r} is not a number 0-65535")
    if int(port) > 65535:
        raise _fail(text, f"port {int(port)} is out of range 0-65535")
    return ListenSpec(text=text, scheme="tcp", name=name, host=host, port=int(port))


def _parse_unix(text: str, name: str, rest: str) -> ListenSpec:
    if rest.startswith("//"):
        rest = rest[2:]
        if not rest.startswith("/"):
            raise _fail(text, "unix:// must be followed by an absolute path: unix:///run/app.sock")
    path, _, query = rest.partition("?")
    if not path:
        raise _fail(text, "missing path, e.g. unix:/run/app.sock")
    mode = _parse_query(text, query)
    if path.startswith("@"):
        if mode is not None:
            raise _fail(text, "an abstract socket (@name) has no file, so no mode; drop ?mode=")
        size = path_bytes(path)  # the "@" stands for the leading NUL
    else:
        # Absolute now: the socket file is removed at exit, maybe after a chdir.
        path = os.path.abspath(path)  # noqa: PTH100 (no symlinks resolved)
        size = path_bytes(path)
    if size > SUN_PATH_MAX:
        raise _fail(
            text,
            f"the path is {size} bytes but a UNIX socket path has at most {SUN_PATH_MAX} "
            "(sun_path); use a shorter one, e.g. under /run",
        )
    return ListenSpec(text=text, scheme="unix", name=name, path=path, mode=mode)


def _parse_query(text: str, query: str) -> int | None:
    mode = None
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        if key != "mode":
            raise _fail(text, f"unknown option {key!r}; the only one is ?mode=0660")
        try:
            mode = int(value, 8)
        except ValueError:
            raise _fail(text, f"mode {value!r} is not octal, e.g. ?mode=0660") from None
        if not 0 <= mode <= 0o777:
            raise _fail(text, f"mode {value} is out of range 0000-0777")
    return mode
