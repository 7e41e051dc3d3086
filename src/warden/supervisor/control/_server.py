"""The control socket: ``warden status``, ``upgrade``, ``reload`` and ``stop`` talk to it.

One JSON object per line each way, one request per connection: a client needs nothing but a
UNIX socket (``socat - UNIX-CONNECT:PATH`` will do). Who may ask is decided twice, by two
kernel facts:

* The socket file is mode 0600, and ``connect()`` needs write permission on it, so only its
  owner (and a process with ``CAP_DAC_OVERRIDE``, i.e. root) gets as far as connecting.
* ``SO_PEERCRED`` gives the uid the kernel recorded at ``connect()``; a client cannot forge it.
  It is checked before a byte is read, so a process that only has ``CAP_DAC_OVERRIDE`` (or a
  path made reachable some other way) still cannot control a warden it does not own.

Each connection is a task of its own: an upgrade takes seconds and must not hold up
``warden status``. The server sets no timers while idle; only a connection that sends nothing
has one (its request deadline).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import json
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Collection, Mapping
from pathlib import Path

from ..._exceptions import ConfigurationError, ControlError, ControlInUseError
from ..._paths import default_control_path
from ..._unix import (
    SUN_PATH_MAX,
    clear_stale_socket,
    file_identity,
    path_bytes,
    peer_credentials,
    unlink_if_ours,
    untrusted_path,
)
from ...lifecycle import Clock
from .._tally import Tally

# default_control_path lives in warden._paths (stdlib only, for the CLI clients).
__all__ = ["ControlError", "ControlInUseError", "ControlServer", "Handler", "default_control_path"]

_LOG = logging.getLogger("warden")

REQUEST_MAX = 64 * 1024  # bytes in one request line: a request is a command and a few options
_UCRED = struct.Struct("iII")  # struct ucred: pid_t pid; uid_t uid; gid_t gid
_EXAMPLE = 'send one JSON object on one line, e.g. {"command": "status"}'
_ACCEPT_RETRY = 1.0  # seconds to wait after accept() fails (EMFILE): the backlog keeps waking us


Handler = Callable[[str, Mapping[str, object]], Awaitable[dict[str, object]]]
"""``handler(command, request)``: the reply's fields; raise :class:`ControlError` to refuse."""


class ControlServer:
    """Serves the control socket at ``path``, passing each valid request to ``handler``.

    A handler's reply goes to the client as ``{"ok": true, **reply}`` (its own ``"ok"`` wins);
    a :class:`ControlError` as ``{"ok": false, "error": message}``. A client that goes away
    does not cancel its request: an upgrade asked for is finished even if nobody waits for it.

    Example::

        async def handle(command, request):
            return {"status": snapshot()}

        server = ControlServer(default_control_path(), handle, commands={"status"})
        await server.start()
        ...
        await server.close()
    """

    #: Seconds a client has to send its request line after connecting.
    request_timeout = 5.0

    def __init__(
        self,
        path: str,
        handler: Handler,
        *,
        commands: Collection[str],
        tally: Tally | None = None,
        clock: Clock | None = None,
        tidy: bool = True,
    ) -> None:
        """``tidy``: remove at :meth:`close` the directories :meth:`start` made for the
        socket (not for the default path: its directory is every warden's on the machine)."""
        self.path = path
        self._tidy = tidy
        self._made: list[Path] = []
        self._clock = clock or Clock()
        self._handler = handler
        self._commands = frozenset(commands)
        self._uid = os.geteuid()
        self.tally = tally or Tally()
        self._sock: socket.socket | None = None
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the file we bound
        self._accepting: asyncio.Task[None] | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def refused(self) -> int:
        """Connections refused for their credentials (the tally's ``control_refusals``)."""
        return self.tally.control_refusals

    async def start(self) -> None:
        """Bind the socket (0600) and serve it on the running loop.

        Raises:
            ConfigurationError: the path is taken by a live warden (:class:`ControlInUseError`)
                or by a file that is not a socket, or the socket cannot be bound there.
        """
        loop = asyncio.get_running_loop()
        self._sock = self._bind()
        self._accepting = loop.create_task(self._accept(), name=f"control {self.path}")

    async def close(self) -> None:
        """Stop serving, end open connections, remove the socket file if it is still ours.

        Connections still waiting for a handler are cancelled with it, except the one calling
        this (a handler may close the server and still reply).
        """
        if self._closed:
            return
        self._closed = True
        current = asyncio.current_task()
        tasks = [t for t in (self._accepting, *self._connections) if t and t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._sock is not None:
            self._sock.close()
        # Remove only our own file: another warden may have replaced a path we lost.
        unlink_if_ours(self.path, self._identity)
        self._remove_made()

    def _remove_made(self) -> None:
        """The directories made for the socket, deepest first, each only if empty."""
        made, self._made = self._made, []
        if not self._tidy:
            return
        for directory in reversed(made):
            try:
                directory.rmdir()
            except OSError:
                return  # not empty (someone else's now), or gone: the ones above stay too

    def _bind(self) -> socket.socket:
        path = self.path
        if path_bytes(path) > SUN_PATH_MAX:
            raise ConfigurationError(
                f"control socket path {path!r} is {path_bytes(path)} bytes, over the "
                f"{SUN_PATH_MAX} an AF_UNIX address holds; give a shorter --control PATH"
            )
        self._made = _make_parents(path)
        try:
            _check_directory(path)
            _clear_stale(path)
        except ConfigurationError:
            self._remove_made()
            raise
        sock = socket.socket(
            socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
        )
        try:
            # bind() creates the file with 0777 & ~umask: with 0o177 it is 0600 from its first
            # moment, so no other user can connect in the window before the chmod.
            old_umask = os.umask(0o177)
            try:
                sock.bind(path)
            finally:
                os.umask(old_umask)
            Path(path).chmod(0o600)
            sock.listen(64)
            identity = file_identity(path)
        except OSError as exc:
            sock.close()
            self._remove_made()
            raise ConfigurationError(
                f"cannot bind the control socket {path!r}: {exc.strerror or exc}; "
                "give a --control PATH in a directory warden may write"
            ) from exc
        self._identity = identity
        return sock

    async def _accept(self) -> None:
        assert self._sock is not None
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(self._sock)
            except OSError as exc:
                # EMFILE or ENOBUFS: the connection stays queued and would wake us at once.
                _LOG.warning("control socket %s: accept failed: %s", self.path, exc)
                await self._clock.sleep(_ACCEPT_RETRY)
                continue
            task = loop.create_task(self._serve(conn))
            self._connections.add(task)
            # A task cancelled before its first step never runs its own `finally`; the
            # done-callback closes the connection in every case.
            task.add_done_callback(functools.partial(self._finished, conn))

    def _finished(self, conn: socket.socket, task: asyncio.Task[None]) -> None:
        self._connections.discard(task)
        conn.close()

    async def _serve(self, conn: socket.socket) -> None:
        pid, uid, _ = peer_credentials(conn)
        if uid not in (self._uid, 0):
            self.tally.control_refusals += 1
            _LOG.warning(
                "control socket %s: refused pid %d of uid %d: only uid %d and root may control "
                "this warden",
                self.path,
                pid,
                uid,
                self._uid,
            )
            error = (
                f"uid {uid} may not control this warden: only uid {self._uid} and root may; "
                "run as one of them"
            )
            await _send(conn, {"ok": False, "error": error})
            return
        try:
            line = await self._read_line(conn)
        except ControlError as exc:
            await _send(conn, {"ok": False, "error": str(exc)})
            return
        except OSError:
            return  # the client went away; nobody to answer
        if line is not None:
            await _send_encoded(conn, await self._answer(line))

    async def _read_line(self, conn: socket.socket) -> bytes | None:
        """The request line; None when the client closed without sending anything."""
        loop = asyncio.get_running_loop()
        data = bytearray()
        try:
            async with self._clock.timeout(self.request_timeout):
                while True:
                    chunk = await loop.sock_recv(conn, REQUEST_MAX + 1)
                    end = chunk.find(b"\n")
                    if end >= 0:
                        data += chunk[:end]
                    elif chunk:
                        data += chunk
                    if len(data) > REQUEST_MAX:
                        raise ControlError(
                            f"request is over {REQUEST_MAX} bytes without a newline; {_EXAMPLE}"
                        )
                    if end >= 0 or not chunk:
                        # A line the client ended with EOF instead of a newline is accepted
                        # too: `printf ... | socat` should not need to get that right.
                        return bytes(data) if data or chunk else None
        except TimeoutError:
            raise ControlError(
                f"no request within {self.request_timeout:g}s of connecting; {_EXAMPLE}"
            ) from None

    async def _answer(self, line: bytes) -> bytes:
        """The encoded reply to one request line; never raises but for cancellation."""
        command = "?"
        try:
            command, request = self._parse(line)
            reply: dict[str, object] = {"ok": True, **await self._handler(command, request)}
            return _encode(reply)
        except ControlError as exc:
            return _encode({"ok": False, "error": str(exc)})
        except Exception as exc:
            _LOG.exception("control socket %s: %r request failed", self.path, command)
            return _encode({"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}"})

    def _parse(self, line: bytes) -> tuple[str, Mapping[str, object]]:
        known = ", ".join(sorted(self._commands))
        try:
            request = json.loads(line)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise ControlError(
                f"request {_shorten(line)} is not JSON ({exc}); {_EXAMPLE}"
            ) from None
        except RecursionError:  # the client's fault, not ours: nested past the parser's stack
            raise ControlError(
                f"request {_shorten(line)} is nested too deeply to parse; {_EXAMPLE}"
            ) from None
        if not isinstance(request, dict):
            raise ControlError(
                f"request is a JSON {type(request).__name__}, not an object; {_EXAMPLE}"
            )
        command = request.get("command")
        if command is None:
            raise ControlError(f'request has no "command"; {_EXAMPLE} (commands: {known})')
        if not isinstance(command, str):
            raise ControlError(
                f'request "command" is {command!r}, not a string; use one of: {known}'
            )
        if command not in self._commands:
            raise ControlError(f"unknown command {command!r}; use one of: {known}")
        return command, request


def _make_parents(path: str) -> list[Path]:
    """Create the missing directories above ``path``, each 0755 (less what the umask takes);
    those it made, outermost first."""
    missing: list[Path] = []
    parent = Path(path).parent
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    made: list[Path] = []
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o755)
        except FileExistsError:
            continue  # made meanwhile (another warden's): not ours to remove
        except OSError as exc:
            for mine in reversed(made):
                with contextlib.suppress(OSError):
                    mine.rmdir()
            raise ConfigurationError(
                f"cannot create the directory of the control socket {path!r}: "
                f"{exc.strerror}; give a --control PATH in a directory warden may write"
            ) from exc
        made.append(directory)
    return made


def _check_directory(path: str) -> None:
    """Refuse a path another user could redirect: a shared /tmp directory of theirs, or a
    symlink of theirs on the way (re-pointed, it would hand our clients to their server).

    Every directory from ``/`` to the socket's, and every symlink followed, must be owned by
    us or root, and no directory may be writable by others unless it is sticky (like /tmp
    itself: others may add files there but not remove or rename ours).
    """
    problem = untrusted_path(str(Path(path).absolute().parent))
    if problem is not None:
        raise ConfigurationError(
            f"the control socket {path!r} is reached through a path another user controls "
            f"({problem}): they could replace the socket; give a --control PATH in "
            "directories only this user (or root) can write"
        )


def _clear_stale(path: str) -> None:
    """Remove a socket left by a warden that is gone; refuse a live one and any other file."""
    try:
        clear_stale_socket(path)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ControlInUseError(_in_use(path)) from None
        if exc.errno == errno.EEXIST:
            raise ConfigurationError(
                f"control socket path {path!r} exists and is not a socket; move that file "
                "away or give another --control PATH"
            ) from None
        raise ConfigurationError(
            f"cannot check the control socket path {path!r}: {exc.strerror}; remove it if no "
            "warden uses it, or give another --control PATH"
        ) from exc


def _in_use(path: str) -> str:
    return (
        f"another warden is listening on the control socket {path!r}; "
        "give each warden its own --control PATH"
    )


async def _send(conn: socket.socket, reply: dict[str, object]) -> None:
    await _send_encoded(conn, _encode(reply))


async def _send_encoded(conn: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the client went away: nothing to do about it
        await asyncio.get_running_loop().sock_sendall(conn, data)


def _encode(reply: dict[str, object]) -> bytes:
    # ensure_ascii escapes every control character: the reply stays one line. allow_nan=False:
    # NaN is not JSON, a client's parser would reject the whole reply.
    return json.dumps(reply, allow_nan=False).encode() + b"\n"


def _shorten(line: bytes, limit: int = 60) -> str:
    text = line[:limit].decode(errors="replace")
    return repr(text + "..." if len(line) > limit else text)
