"""The socket holder: listening sockets warden binds once and keeps for its whole life.

warden binds (and ``listen()``s) before the first child starts, so a port in use is an error
before anything is spawned, and the kernel queues connections in the backlog while no child
accepts (a restart, the gap of an upgrade): nothing is refused. Each child gets the same
sockets at fds 3.. (:mod:`._handover`).

The held sockets stay close-on-exec in warden (Python's default, PEP 446); only the handover's
``dup2`` makes inheritable copies, in the child alone. warden never accepts on them and never
changes their flags: ``O_NONBLOCK`` belongs to the open file description, which warden shares
with every child (``man 2 dup``), so setting it here would change it under a running server.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..._exceptions import ConfigurationError, WardenError
from ..._unix import clear_stale_socket, file_identity, unlink_if_ours
from ...systemd import LISTEN_FDS_START, listen_fds
from ._listenspec import UNNAMED, ListenSpec

#: The kernel caps the backlog at ``net.core.somaxconn`` anyway (4096 since Linux 5.4).
DEFAULT_BACKLOG = socket.SOMAXCONN


class ListenError(WardenError, OSError):
    """A ``--listen`` socket could not be bound; ``errno`` is the cause's."""

    def __init__(self, spec: ListenSpec, code: int | None, problem: str) -> None:
        super().__init__(code, problem)
        self.spec = spec
        self.problem = problem

    def __str__(self) -> str:
        return f"--listen {self.spec.text!r}: {self.problem}"


def bind(
    spec: ListenSpec, backlog: int = DEFAULT_BACKLOG, *, dual_stack: bool = True
) -> socket.socket:
    """Bind and listen on ``spec``; the socket is close-on-exec. Raises :class:`ListenError`.

    ``tcp://[::]:PORT`` is dual-stack (IPv4 too, as ``::ffff:a.b.c.d``) unless ``dual_stack``
    is false; the default of ``IPV6_V6ONLY`` comes from the ``net.ipv6.bindv6only`` sysctl, so
    it is always set explicitly. A specific IPv6 address is IPv6 only.
    """
    if spec.scheme == "unix":
        return _bind_unix(spec, backlog)
    family = socket.AF_INET6 if spec.ipv6 else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        raise ListenError(spec, exc.errno, f"cannot create the socket: {exc.strerror}") from exc
    try:
        # Rebinding while connections of a previous warden linger in TIME_WAIT; on Linux it
        # does not let two sockets listen on one port (that is SO_REUSEPORT).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Linux copies TCP_NODELAY from a listener to the connections it accepts. Servers that
        # wrap an inherited fd as AF_UNIX (uvicorn --fd) never set it themselves, and their
        # two-write keep-alive responses then wait on Nagle and the delayed ACK: 7.7x fewer
        # requests/s measured (bench/bench_systemd.py). systemd's NoDelay= does the same.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if spec.ipv6:
            v6only = not (spec.wildcard_ipv6 and dual_stack)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
        if spec.port:
            # SO_REUSEPORT (below) would let this bind join a listener of the same user
            # silently; a plain bind first says "in use" for any listener at all.
            _check_free(
                family, spec, v6only=bool(spec.ipv6) and not (spec.wildcard_ipv6 and dual_stack)
            )
        # SO_REUSEPORT: an upgrade's new release gets a sibling of this socket in the same
        # group, and warden steers new connections between them (``_steering.py``).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((spec.host, spec.port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise ListenError(spec, exc.errno, _tcp_problem(spec, exc)) from exc
    return sock


def _check_free(family: int, spec: ListenSpec, *, v6only: bool) -> None:
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
        probe.bind((spec.host, spec.port))


def _tcp_problem(spec: ListenSpec, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"address already in use; another process listens there "
            f"(ss -ltnp 'sport = :{spec.port}')"
        )
    if exc.errno == errno.EACCES and spec.port < 1024:
        return (
            f"permission denied: port {spec.port} is privileged; run as root, grant "
            "CAP_NET_BIND_SERVICE, or lower net.ipv4.ip_unprivileged_port_start"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"no interface of this host has address {spec.host} (see ip address)"
    return f"cannot bind: {exc.strerror}"


def _bind_unix(spec: ListenSpec, backlog: int) -> socket.socket:
    abstract = spec.path.startswith("@")
    address = "\0" + spec.path[1:] if abstract else spec.path
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if not abstract:
            # A file left by a crashed predecessor is removed; a live one is EADDRINUSE.
            clear_stale_socket(spec.path)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ListenError(spec, exc.errno, _unix_problem(spec, exc)) from exc
    try:
        # chmod before listen(): until listen() a connect() is refused, so no client gets in
        # under the umask's mode. (fchmod on a socket fd does not reach the file, man 7 unix.)
        if spec.mode is not None:
            Path(spec.path).chmod(spec.mode)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        with contextlib.suppress(OSError):
            Path(spec.path).unlink()
        raise ListenError(spec, exc.errno, f"cannot set up the socket: {exc.strerror}") from exc
    return sock


def _unix_problem(spec: ListenSpec, exc: OSError) -> str:
    directory = Path(spec.path).parent
    if exc.errno == errno.EEXIST:
        return f"{spec.path} exists and is not a socket; remove it or choose another path"
    if exc.errno == errno.EADDRINUSE:
        where = spec.path if not spec.path.startswith("@") else f"the abstract {spec.path}"
        return f"another process listens on {where} (ss -xlp); stop it or choose another path"
    if exc.errno == errno.ENOENT:
        return f"directory {directory} does not exist; create it first"
    if exc.errno == errno.ENOTDIR:
        return f"a component of {directory} is not a directory"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied: cannot create (or probe) a socket at {spec.path}"
    return f"cannot bind: {exc.strerror}"


@dataclass(frozen=True)
class HeldSocket:
    """One held socket and its name in ``LISTEN_FDNAMES``."""

    name: str
    sock: socket.socket
    #: A socket file warden created, as (path, (st_dev, st_ino)): removed by ``close()`` only
    #: if the path still names that file (a successor may have replaced it).
    created: tuple[str, tuple[int, int]] | None = None


class HeldSockets:
    """The ordered sockets warden holds for its whole life and hands to every child at 3, 4...

    ``HeldSockets.from_specs(map(parse_listen, texts))`` or ``HeldSockets.from_environment()``;
    ``spawn_with_sockets(argv, sockets=held.named_fds)``; ``held.close()`` at the very end.
    """

    def __init__(self, held: Iterable[HeldSocket] = ()) -> None:
        self._held = tuple(held)

    @classmethod
    def from_specs(
        cls, specs: Iterable[ListenSpec], *, backlog: int = DEFAULT_BACKLOG
    ) -> HeldSockets:
        """Bind every spec in order; if one fails, close those already bound and raise."""
        specs = list(specs)
        # When tcp://0.0.0.0:P and tcp://[::]:P are both asked for, each serves its own
        # family: a dual-stack [::]:P would take IPv4's P as well (EADDRINUSE).
        ipv4_ports = {s.port for s in specs if s.scheme == "tcp" and not s.ipv6 and s.port}
        held: list[HeldSocket] = []
        try:
            for spec in specs:
                sock = bind(spec, backlog, dual_stack=spec.port not in ipv4_ports)
                created = None
                if spec.scheme == "unix" and not spec.path.startswith("@"):
                    created = (spec.path, file_identity(spec.path))
                held.append(HeldSocket(spec.name, sock, created))
        except BaseException:
            cls(held).close()
            raise
        return cls(held)

    @classmethod
    def from_environment(cls) -> HeldSockets:
        """Take warden's own ``LISTEN_FDS`` (systemd socket-activated warden), names kept.

        The variables are removed from warden's environment, so no child inherits them
        unless the handover sets them for it.
        """
        try:
            return cls(HeldSocket(name, sock) for name, sock in listen_fds())
        except OSError as exc:
            raise ConfigurationError(
                f"LISTEN_FDS: a passed descriptor is not a usable socket ({exc.strerror}); "
                "check the .socket unit"
            ) from exc

    def __len__(self) -> int:
        return len(self._held)

    def __iter__(self) -> Iterator[HeldSocket]:
        return iter(self._held)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(h.name for h in self._held)

    @property
    def fds(self) -> tuple[int, ...]:
        """warden's own descriptors (not the child's 3, 4, ...)."""
        return tuple(h.sock.fileno() for h in self._held)

    @property
    def named_fds(self) -> tuple[tuple[str, int], ...]:
        """``(name, fd)`` pairs in order, what the handover takes."""
        return tuple(zip(self.names, self.fds, strict=True))

    def describe(self) -> list[str]:
        """One line per socket with the fd the child gets: ``web=tcp://127.0.0.1:8000 (fd 3)``,
        or the address alone for a socket given no name (``LISTEN_FDNAMES`` says "unknown")."""
        return [
            f"{'' if h.name == UNNAMED else h.name + '='}{_address(h.sock)}"
            f" (fd {LISTEN_FDS_START + index})"
            for index, h in enumerate(self._held)
        ]

    def handover_hint(self) -> str | None:
        """Why a program that ends before it is ready most often does, when warden holds
        sockets: it binds the address itself (EADDRINUSE) instead of taking the held one."""
        addresses = [_address(h.sock) for h in self._held]
        if not addresses:
            return None
        first = LISTEN_FDS_START
        if len(addresses) == 1:
            holds = f"{addresses[0]} and hands it to the program as fd {first}"
            take = "take it"
        else:
            holds = (
                f"{', '.join(addresses[:-1])} and {addresses[-1]} and hands them to the program "
                f"as fds {first}-{first + len(addresses) - 1}"
            )
            take = "take them"
        what = "port" if all(a.startswith("tcp://") for a in addresses) else "address"
        return (
            f"warden holds {holds} (LISTEN_FDS); the program must {take} (uvicorn --fd "
            f"{first}, hypercorn --bind fd://{first}, gunicorn as is) instead of binding the "
            f"{what} itself"
        )

    def close(self) -> None:
        """Close every socket and remove the socket files warden created."""
        for h in self._held:
            h.sock.close()
            if h.created is not None:
                unlink_if_ours(*h.created)


def _address(sock: socket.socket) -> str:
    """The bound address, so port 0 shows the port the kernel chose."""
    try:
        where = sock.getsockname()
    except OSError:
        return f"fd:{sock.fileno()}"
    if sock.family == socket.AF_UNIX:
        if isinstance(where, bytes):  # the abstract namespace: a leading NUL
            return "unix:@" + where[1:].decode(errors="backslashreplace")
        return f"unix:{where}"
    scheme = "tcp" if sock.type == socket.SOCK_STREAM else "udp"
    host = f"[{where[0]}]" if sock.family == socket.AF_INET6 else where[0]
    return f"{scheme}://{host}:{where[1]}"
