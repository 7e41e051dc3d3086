"""The notify server: the receiving end of sd_notify, as systemd's manager implements it.

The program gets ``NOTIFY_SOCKET=<path>`` and sends ``KEY=VALUE`` datagrams there. This module
checks them the way systemd 252 does (``manager_dispatch_notify_fd``) and hands the good ones
to a callback on the event loop. Kernel facts it rests on:

* ``SO_PASSCRED`` on the receiving socket makes the kernel attach the sender's pid, uid and gid
  (``SCM_CREDENTIALS``) to every datagram. A sender can claim another pid only with
  ``CAP_SYS_ADMIN`` (the real ``systemd-notify`` does, as root, to speak for its parent). A
  sender whose pid does not exist in our pid namespace arrives as pid 0: "no credentials".
* One ``recvmsg`` takes one datagram; what does not fit the buffer is discarded and the kernel
  sets ``MSG_TRUNC``. So one 4096-byte buffer and that flag mean exactly "over 4096 bytes"
  (systemd's ``NOTIFY_BUFFER_MAX``, ``PIPE_BUF``).
* ``recvmsg`` itself installs ``SCM_RIGHTS`` descriptors into our fd table. Those that do not
  fit the ancillary buffer, or exceed ``RLIMIT_NOFILE``, are discarded by the kernel, which
  sets ``MSG_CTRUNC``. Every descriptor that did arrive is ours to close.
* A sender may put at most ``SCM_MAX_FD`` (253) descriptors in one message (``EINVAL``
  otherwise), so a buffer for 253 never truncates an honest sender.
* asyncio's selector is level-triggered epoll: datagrams left in the queue wake the reader again
  on the next loop iteration, so reading a bounded batch per wake-up loses nothing.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import os
import socket
import struct
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..._exceptions import ConfigurationError
from ..._paths import private_directory, runtime_dir
from ..._unix import SUN_PATH_MAX, path_bytes
from .._tally import Tally

_LOG = logging.getLogger("warden")

MESSAGE_MAX = 4096  # systemd's NOTIFY_BUFFER_MAX
_UCRED = struct.Struct("iII")  # struct ucred: pid_t pid; uid_t uid; gid_t gid
_INT_SIZE = array.array("i").itemsize
_BATCH = 64  # datagrams per wake-up: a flooding child cannot starve the rest of the loop
_DRAIN_BATCHES = 4  # at most this many batches are read after the program ended

Access = Literal["main", "descendants", "all"]
"""Who may speak for the program: its main process only; the main process and every process
it started (hypercorn and gunicorn workers say READY=1 themselves); or any process that can
reach the socket."""

#: How far up the parent chain a sender is followed to find the main process.
_MAX_ANCESTRY = 32
#: Senders found outside the tree that are remembered; past it, all are forgotten at once.
_MAX_STRANGERS = 1024


@dataclass(frozen=True)
class NotifyMessage:
    """One accepted datagram.

    Attributes:
        pid, uid, gid: the sender, as the kernel vouches for it.
        fields: its ``KEY=VALUE`` lines (the last one wins); unknown keys are the caller's to
            ignore.
        fds: the descriptors of an ``FDSTORE=1`` message (CLOEXEC), now owned by the callback:
            keep them or close them. Empty for every other message (the server closed those).
    """

    pid: int
    uid: int
    gid: int
    fields: Mapping[str, str]
    fds: tuple[int, ...] = ()


class NotifyServer:
    """A ``NOTIFY_SOCKET`` for one program, handing its messages to ``on_message``.

    The socket is bound in the constructor (in a fresh private directory), so :attr:`path` can
    go into the program's environment before it starts; :meth:`start` begins reading on the
    loop. Rejected datagrams are never an exception: they are counted in :attr:`drops` by
    reason (``control-truncated``, ``no-credentials``, ``oversized``, ``nul``, ``not-utf8``,
    ``malformed``, ``not-main-pid``), checked in that order. ``BARRIER=1`` is answered by
    the server itself, from any sender, and never reaches ``on_message``.

    Example::

        server = NotifyServer(on_message, access="main")
        pid = spawn(env={"NOTIFY_SOCKET": server.path})
        server.set_main_pid(pid)  # in the same loop callback as the spawn: nothing is read yet
        server.start()
        ...
        server.close()
    """

    #: Descriptors one datagram may carry before it is dropped as ``control-truncated``.
    max_fds = 253

    def __init__(
        self,
        on_message: Callable[[NotifyMessage], object],
        *,
        access: Access = "main",
        directory: str | None = None,
        tally: Tally | None = None,
    ) -> None:
        if access not in ("main", "descendants", "all"):
            raise ConfigurationError(
                f"notify access {access!r} is invalid; use 'main', 'descendants' or 'all'"
            )
        self.access = access
        self._on_message = on_message
        self._main_pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.tally = tally or Tally()
        self._strangers: set[tuple[int, int]] = set()  # (pid, start time) outside the tree
        self._ancbufsize = socket.CMSG_SPACE(_UCRED.size) + socket.CMSG_SPACE(
            self.max_fds * _INT_SIZE
        )
        # A directory of its own with a random name. (An abstract socket would be open to
        # every process in the network namespace, under a name anyone can list.) Who may
        # connect: see _open_to_others.
        self._directory = private_directory(directory or runtime_dir())
        #: The absolute path to give the program as ``NOTIFY_SOCKET``.
        self.path = str(Path(self._directory) / "notify")
        try:
            # CLOEXEC: the program must not inherit our end; NONBLOCK: the reader drains
            # until EAGAIN. Inside the try: out of descriptors (EMFILE), the directory goes.
            self._sock = socket.socket(
                socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
            )
        except BaseException:
            self._remove_directory()
            raise
        try:
            if path_bytes(self.path) > SUN_PATH_MAX:
                raise ConfigurationError(
                    f"notify socket path {self.path!r} is {path_bytes(self.path)} bytes, "
                    f"over the {SUN_PATH_MAX} an AF_UNIX address holds; "
                    "use a shorter directory ($XDG_RUNTIME_DIR)"
                )
            # Before bind: a datagram queued while the option is off carries no credentials.
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            self._sock.bind(self.path)
            if access != "all":
                self._open_to_others()
        except BaseException:
            self._sock.close()
            self._remove_directory()
            raise

    def _open_to_others(self) -> None:
        """Let a program that drops privileges (``setpriv``, ``gosu``, ``su-exec``) connect.

        The program's eventual uid is unknown when the socket is made, so, as systemd's own
        notify socket is, the socket is 0666 and the directory 0711: any user may connect
        (the path is no secret: ``/proc/net/unix`` lists it to everyone), none may list the
        directory or put a file in it. Being able to connect grants nothing: with ``main`` and
        ``descendants`` every datagram is checked by the sender's pid, which the kernel
        vouches for (``SCM_CREDENTIALS``; claiming another pid needs ``CAP_SYS_ADMIN``).
        With ``all`` there is no such check, so the directory stays 0700: warden's user only.
        """
        Path(self.path).chmod(0o666)
        Path(self._directory).chmod(0o711)

    def _descends_from_main(self, pid: int) -> bool:
        """Whether ``pid`` (the kernel's SO_PASSCRED pid, not the sender's say) is the main
        process or one it started.

        Its process group first: the main process leads its own group (warden spawns it
        with setsid), and its workers stay in it. Then the parent chain, for a worker that
        made a group of its own. A worker whose parent died was re-parented to warden (the
        subreaper) and keeps only the group to show where it came from.
        """
        main = self._main_pid
        if main is None:
            return False
        if pid == main:
            return True
        with contextlib.suppress(OSError):
            if os.getpgid(pid) == main:
                return True
        # A process found outside the tree stays outside (it cannot join the main process's
        # session, nor get a new parent but the subreaper): one /proc read per datagram of a
        # flood from it, not a walk. Keyed with the start time, so a reused pid is new.
        parent, born = _stat(pid)
        sender = (pid, born)
        if sender in self._strangers:
            return False
        for _ in range(_MAX_ANCESTRY):
            if parent == main:
                return True
            if parent <= 1 or parent == os.getpid():
                break
            parent = _parent(parent)
        if len(self._strangers) >= _MAX_STRANGERS:
            self._strangers.clear()
        self._strangers.add(sender)
        return False

    def set_main_pid(self, pid: int | None) -> None:
        """With ``access="main"``, accept messages from ``pid`` only (none while ``None``)."""
        self._main_pid = pid
        self._strangers.clear()

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Read datagrams on ``loop`` (default: the running loop); no timers involved.

        Datagrams sent before this call wait in the kernel's queue and are read at once.
        """
        self._loop = loop or asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), self._on_readable)

    def drain(self) -> None:
        """Handle every datagram still queued (the program's last words before it ended)."""
        if self._loop is not None and self._sock.fileno() >= 0:
            for _ in range(_DRAIN_BATCHES):
                if not self._on_readable():
                    return

    def close(self) -> None:
        """Stop reading, close the socket, remove the socket file and its directory."""
        if self._loop is not None and self._sock.fileno() >= 0:
            self._loop.remove_reader(self._sock.fileno())
        self._loop = None
        self._sock.close()
        self._remove_directory()

    def _remove_directory(self) -> None:
        """Remove the socket file and its directory: nothing else is ever in it. Two path
        calls, no descriptor (``shutil.rmtree`` opens the directory, and out of descriptors
        it would fail, silently with ``ignore_errors``, and leave the directory behind)."""
        with contextlib.suppress(FileNotFoundError):
            Path(self.path).unlink()
        with contextlib.suppress(OSError):
            Path(self._directory).rmdir()

    def _on_readable(self) -> bool:
        """Read up to a batch; True if the batch was full (more may be queued)."""
        for _ in range(_BATCH):
            try:
                # MSG_CMSG_CLOEXEC: a descriptor we keep must not leak into the next program.
                data, ancillary, flags, _ = self._sock.recvmsg(
                    MESSAGE_MAX, self._ancbufsize, socket.MSG_CMSG_CLOEXEC
                )
            except BlockingIOError:
                return False
            except OSError as exc:  # not expected from a local datagram socket; keep serving
                _LOG.warning("notify socket %s: recvmsg failed: %s", self.path, exc)
                return False
            self._handle(data, ancillary, flags)
        return True

    def _handle(self, data: bytes, ancillary: list[tuple[int, int, bytes]], flags: int) -> None:
        fds: list[int] = []
        cred = (0, 0, 0)  # what the kernel reports for a sender it cannot name: none
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.extend(array.array("i", payload[: len(payload) - len(payload) % _INT_SIZE]))
            elif (
                level == socket.SOL_SOCKET
                and kind == socket.SCM_CREDENTIALS
                and len(payload) >= _UCRED.size
            ):
                cred = _UCRED.unpack_from(payload)
        try:
            fields = _envelope_fault(flags, cred[0]) or _parse(data)
            if isinstance(fields, str):
                self._drop(fields, cred)
            elif fields.get("BARRIER") == "1":
                # Datagrams are read and handled one at a time, in arrival order, on the loop
                # thread: every earlier one has been dispatched by now, so closing this fd
                # (in `finally`) is the answer. Like systemd, the rest of it is ignored and any
                # sender may ask (`systemd-notify` sends its barrier with its own pid).
                pass
            elif self.access == "main" and cred[0] != self._main_pid:
                self._drop("not-main-pid", cred)
            elif self.access == "descendants" and not self._descends_from_main(cred[0]):
                self._drop("not-a-descendant", cred)
            else:
                kept = tuple(fds) if fields.get("FDSTORE") == "1" else ()
                if kept:
                    fds = []  # owned by the callback from here on
                self._dispatch(NotifyMessage(*cred, fields=fields, fds=kept))
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)

    @property
    def drops(self) -> Counter[str]:
        """Dropped datagrams by reason (the tally's ``notify_drops``)."""
        return self.tally.notify_drops

    def _drop(self, reason: str, cred: tuple[int, int, int]) -> None:
        self.drops[reason] += 1
        # The first of each kind is worth a warning; a flood of them only the count.
        log = _LOG.warning if self.drops[reason] == 1 else _LOG.debug
        log("notify datagram from pid %d dropped: %s (further ones are counted)", cred[0], reason)

    def _dispatch(self, message: NotifyMessage) -> None:
        try:
            self._on_message(message)
        except Exception:
            # A bug in the handler must not end the reader. Any fds were handed over already:
            # closing them here could close a number the handler stored (or that was reused).
            _LOG.exception("notify message from pid %d: handler failed", message.pid)


def _envelope_fault(flags: int, pid: int) -> str | None:
    """Why the kernel's account of a datagram makes it unacceptable, if it does."""
    if flags & socket.MSG_CTRUNC:
        return "control-truncated"
    if pid <= 0:
        return "no-credentials"
    if flags & socket.MSG_TRUNC:
        return "oversized"
    return None


def _parse(data: bytes) -> dict[str, str] | str:
    """The fields of a datagram's text, or the reason to drop it."""
    if data.endswith(b"\0"):
        data = data[:-1]  # systemd tolerates one trailing NUL (a C string sent with its end)
    if b"\0" in data:
        return "nul"
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return "not-utf8"
    fields: dict[str, str] = {}
    for line in text.split("\n"):
        if line:
            key, sep, value = line.partition("=")
            if not (key and sep):
                return "malformed"
            fields[key] = value
    return fields


def _stat(pid: int) -> tuple[int, int]:
    """``pid``'s parent and start time from ``/proc/PID/stat`` ((0, 0) when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # "pid (comm) state ppid ... starttime(22nd)": comm may hold spaces and ")".
            fields = stat.read().rsplit(b")", 1)[1].split()
            return int(fields[1]), int(fields[19])
    except (OSError, ValueError, IndexError):
        return 0, 0


def _parent(pid: int) -> int:
    """``pid``'s parent from ``/proc/PID/stat`` (0 when it is gone)."""
    return _stat(pid)[0]
