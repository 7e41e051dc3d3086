"""The health server's connections: a bounded set, kept usable by anyone who can connect.

Whoever can reach the port (another local user, anything on the pod network) can open
connections and hold them. The promise is that a probe (connect, one request) is still
answered at once, and that warden's memory and descriptors stay bounded, however many
connections are held, however they misbehave (idle, a byte a second, garbage, endless
headers, another protocol). What a server operator does, done here:

* **Evict, do not refuse.** At most ``limit`` connections are open. One more, and the one
  that has held a slot longest without completing its request goes (reset at once, its
  descriptor back). Refusing the newcomer instead would let whoever holds ``limit``
  connections lock every probe out; evicting the oldest means a probe, which sends its
  request as soon as it connects, is answered before ``limit`` newer connections can push it
  out. A connection whose request is complete is evicted only when none is still reading.
* **Bounded buffers.** A request head (request line and headers) has ``max_head`` bytes;
  more, and the connection is answered 431 and closed. The kernel's socket buffers are its
  own bound: nothing is read beyond the head.
* **A short deadline** to send the head (``timeout``), and the same to take the response:
  a slow or silent client is answered 408, or closed.
* **No thread per connection, no timer while idle.** Everything runs on the server's one
  loop: the listening socket and each connection are watched with ``add_reader``; one timer,
  armed only while a connection is open, fires at the earliest deadline.
* **A deep accept queue, emptied in small batches.** The listening socket's backlog
  (:data:`BACKLOG`) is deeper than the connections anyone is expected to hold, so a probe's
  SYN is not dropped (a dropped SYN is retried after 1 s, past a kubelet's default timeout);
  connections are accepted a few at a time so that a probe accepted in one batch is read
  before ``limit`` newer ones can evict it. Each new connection is read at once: a probe's
  request has usually arrived by then and is answered without waiting for the next round.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import math
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

_LOG = logging.getLogger("warden")

#: The listening socket's accept queue: the kernel caps it at ``net.core.somaxconn`` (4096 by
#: default since Linux 5.4). A full queue drops a probe's SYN, retried only after 1 s.
BACKLOG = 4096
#: Connections accepted per round of the loop (see the module's docstring).
ACCEPT_BATCH = 16
#: Seconds accepting pauses when the process is out of descriptors or memory.
ACCEPT_RETRY_DELAY = 1.0
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, no TIME_WAIT

Answer = Callable[[bytes], bytes | Awaitable[bytes]]
"""Turns a complete request head into the bytes to send (or a coroutine making them)."""


@dataclass(eq=False, slots=True)
class _Connection:
    sock: socket.socket
    deadline: float
    head: bytearray = field(default_factory=bytearray)
    #: Sending its head, or answered and lingering: evicted before the others.
    expendable: bool = True
    reading: bool = True  # its head is not complete yet
    unread: bool = False  # the client may still be sending: linger once answered
    out: bytes = b""  # response bytes the socket has not taken yet
    task: asyncio.Task[None] | None = None  # an answer being awaited


class Connections:
    """The open connections of one listening socket, on the running loop.

    Args:
        loop: the loop they run on (the server's own thread).
        listener: a bound, listening, non-blocking socket.
        answer: makes the response to a complete request head.
        limit: connections open at once.
        max_head: bytes of request line and headers a request may have.
        timeout: seconds to send the head, and again to take the response.
        describe: names the server in log lines.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        listener: socket.socket,
        answer: Answer,
        *,
        limit: int,
        max_head: int,
        timeout: float,
        describe: str,
    ) -> None:
        self._loop = loop
        self._listener = listener
        self._answer = answer
        self._limit = limit
        self._max_head = max_head
        self._timeout = timeout
        self._describe = describe
        self._open: collections.OrderedDict[int, _Connection] = collections.OrderedDict()
        self._timer: asyncio.TimerHandle | None = None
        self._resume: asyncio.TimerHandle | None = None
        self.evicted = 0  # counted for tests and benchmarks

    def __len__(self) -> int:
        return len(self._open)

    def start(self) -> None:
        self._loop.add_reader(self._listener.fileno(), self._accept)

    def close(self) -> None:
        """Stop accepting and reset every open connection."""
        with contextlib.suppress(ValueError, OSError):  # the listener is closed already
            self._loop.remove_reader(self._listener.fileno())
        for timer in (self._timer, self._resume):
            if timer is not None:
                timer.cancel()
        self._timer = self._resume = None
        for conn in list(self._open.values()):
            self._drop(conn, reset=True)

    # -- accepting ------------------------------------------------------------------------

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    self._out_of_resources(exc)
                    return
                continue  # ECONNABORTED and the like: that one is gone, take the next
            sock.setblocking(False)
            self._admit(sock)

    def _out_of_resources(self, exc: OSError) -> None:
        """Out of descriptors: free one by evicting a connection; with none to evict, pause
        accepting for a while (the listener would otherwise wake the loop without end)."""
        if self._evict():
            return
        _LOG.warning("health server %s: cannot accept: %s", self._describe, exc.strerror)
        self._loop.remove_reader(self._listener.fileno())
        self._resume = self._loop.call_later(ACCEPT_RETRY_DELAY, self._resume_accepting)

    def _resume_accepting(self) -> None:
        self._resume = None
        self._loop.add_reader(self._listener.fileno(), self._accept)

    def _admit(self, sock: socket.socket) -> None:
        if len(self._open) >= self._limit:
            self._evict()
        conn = _Connection(sock, self._loop.time() + self._timeout)
        self._open[sock.fileno()] = conn
        self._arm(conn.deadline)
        self._read(conn)  # a probe's request is usually here already
        if conn.reading and self._open.get(sock.fileno()) is conn:
            self._loop.add_reader(sock.fileno(), self._read, conn)

    def _evict(self) -> bool:
        """Reset the connection that has held a slot longest without completing a request
        (or, when every one has completed its request, the oldest)."""
        victim = next((c for c in self._open.values() if c.expendable), None)
        if victim is None:
            victim = next(iter(self._open.values()), None)
        if victim is None:
            return False
        self.evicted += 1
        self._drop(victim, reset=True)
        return True

    # -- one connection ---------------------------------------------------------------------

    def _read(self, conn: _Connection) -> None:
        """Read what has arrived, up to the kernel's "nothing more": a client that sent and
        closed (a flood of connections does) is dropped now, not after another round."""
        while True:
            try:
                data = conn.sock.recv(self._max_head + 1 - len(conn.head))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._drop(conn, reset=True)
                return
            if not data:  # the client went away before finishing its request
                self._drop(conn, reset=True)
                return
            searched = max(0, len(conn.head) - 3)
            conn.head += data
            end = _end_of_head(conn.head, searched)
            if end >= 0:
                head, conn.unread = bytes(conn.head[:end]), len(conn.head) > end
                self._stop_reading(conn)
                self._respond(conn, self._answer(head))
                return
            if len(conn.head) > self._max_head:
                conn.unread = True
                self._stop_reading(conn)
                self._send(conn, _error(431, "Request Header Fields Too Large"))
                return

    def _stop_reading(self, conn: _Connection) -> None:
        conn.reading = conn.expendable = False
        conn.head = bytearray()
        self._loop.remove_reader(conn.sock.fileno())

    def _respond(self, conn: _Connection, answer: bytes | Awaitable[bytes]) -> None:
        if isinstance(answer, bytes):
            self._send(conn, answer)
            return
        conn.deadline = math.inf  # the answer has a deadline of its own (the /livez wait)
        conn.task = self._loop.create_task(self._send_later(conn, answer))

    async def _send_later(self, conn: _Connection, answer: Awaitable[bytes]) -> None:
        data = await answer
        conn.task = None
        if self._open.get(conn.sock.fileno()) is conn:
            self._send(conn, data)

    def _send(self, conn: _Connection, data: bytes) -> None:
        try:
            sent = conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._drop(conn, reset=True)
            return
        if sent == len(data):
            self._finish(conn)
            return
        conn.out = data[sent:]
        conn.deadline = self._loop.time() + self._timeout
        self._arm(conn.deadline)
        self._loop.add_writer(conn.sock.fileno(), self._write, conn)

    def _write(self, conn: _Connection) -> None:
        try:
            sent = conn.sock.send(conn.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn, reset=True)
            return
        conn.out = conn.out[sent:]
        if not conn.out:
            self._loop.remove_writer(conn.sock.fileno())
            self._finish(conn)

    def _finish(self, conn: _Connection) -> None:
        """The response is sent: close, or, when the client may still be sending, linger.

        Closing a socket with unread input sends RST, which can destroy the response before
        the client reads it (a 431 to an oversized head, a 408 to a slow one). So the
        sending side is shut and what still comes is read and dropped until the client
        closes, within the deadline (a lingering close, as nginx's ``lingering_close``).
        """
        if not conn.unread:
            self._drop(conn, reset=False)
            return
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._drop(conn, reset=True)
            return
        conn.expendable = True
        conn.deadline = self._loop.time() + self._timeout
        self._arm(conn.deadline)
        self._loop.add_reader(conn.sock.fileno(), self._discard, conn)

    def _discard(self, conn: _Connection) -> None:
        try:
            if conn.sock.recv(65536):
                return
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
        self._drop(conn, reset=False)  # the client closed: done

    def _drop(self, conn: _Connection, *, reset: bool) -> None:
        fd = conn.sock.fileno()
        if fd < 0 or self._open.get(fd) is not conn:
            return
        del self._open[fd]
        self._loop.remove_reader(fd)
        self._loop.remove_writer(fd)
        if conn.task is not None:
            conn.task.cancel()
        if reset:
            with contextlib.suppress(OSError):
                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        conn.sock.close()
        if not self._open and self._timer is not None:
            self._timer.cancel()  # nothing open: nothing to wake up for
            self._timer = None

    # -- deadlines: one timer, at the earliest ------------------------------------------

    def _arm(self, deadline: float) -> None:
        if self._timer is None or deadline < self._timer.when():
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        self._timer = None
        now = self._loop.time()
        for conn in list(self._open.values()):
            if conn.deadline > now:
                continue
            if conn.reading:  # too slow: a last word if the socket takes it at once
                conn.unread = True
                self._stop_reading(conn)
                with contextlib.suppress(OSError):
                    conn.sock.send(_error(408, "Request Timeout"))
                self._finish(conn)
            else:  # it does not take its response, or lingers past its time
                self._drop(conn, reset=True)
        earliest = min((c.deadline for c in self._open.values()), default=math.inf)
        if earliest < math.inf:
            self._arm(earliest)


def _end_of_head(head: bytearray, start: int) -> int:
    """Where the head ends (past its blank line, CRLF or a bare LF), or -1."""
    crlf, lf = head.find(b"\r\n\r\n", start), head.find(b"\n\n", start)
    ends = [i + n for i, n in ((crlf, 4), (lf, 2)) if i >= 0]
    return min(ends, default=-1)


def _error(status: int, reason: str) -> bytes:
    body = f"{reason.lower()}\n".encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode("latin-1") + body
