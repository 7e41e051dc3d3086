"""A log handler that never blocks its caller on a stalled stream (warden's stderr).

warden's stderr is often a pipe to a log shipper. When nobody reads it, the pipe fills (64 KiB
by default, ``man 7 pipe``) and a blocking ``write`` waits until somebody does: a PID 1 that
logs from its event loop then stops reaping zombies, answering its control socket and
running its stop ladder (seen: SIGTERM ended such a warden with 124 after 7.2 s and left the
program running).

The descriptor itself cannot be made non-blocking: ``O_NONBLOCK`` belongs to the *open file
description*, which the program shares when it inherits the same stderr, and its own writes
would start failing with ``EAGAIN``. So the handler asks the kernel first: ``poll`` with a
zero timeout says whether the stream has room (for a pipe, ``POLLOUT`` means a free buffer
slot, and a write of at most ``PIPE_BUF`` bytes then completes without waiting). A line goes
out at once when it does; otherwise it joins a bounded queue that a daemon thread writes,
blocking in its own time. What does not fit the queue is dropped and counted, and once the
queue has drained, one line says how many were lost.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import select
import threading
import time
from typing import IO

__all__ = ["NonBlockingHandler", "stderr_handler", "write_bounded"]

#: Bytes of log lines held while the stream does not take them.
QUEUE_LIMIT = 256 * 1024
_PIPE_BUF = select.PIPE_BUF


class NonBlockingHandler(logging.Handler):
    """Writes formatted records to ``fd`` without ever blocking the caller.

    Args:
        fd: the descriptor to write to (warden's stderr, 2).
        limit: bytes queued at most while the stream is stalled; more are dropped.
    """

    def __init__(self, fd: int = 2, *, limit: int = QUEUE_LIMIT) -> None:
        super().__init__()
        self.fd = fd
        self.limit = limit
        #: Records dropped because the queue was full, since the start.
        self.dropped = 0
        self._unreported = 0
        self._queue: collections.deque[bytes] = collections.deque()
        self._queued = 0
        self._writing = False
        self._cond = threading.Condition()
        self._writer: threading.Thread | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = (self.format(record) + "\n").encode("utf-8", "backslashreplace")
        except Exception:
            self.handleError(record)
            return
        with self._cond:
            if not self._queue and not self._writing and len(data) <= _PIPE_BUF:
                written = _write_now(self.fd, data)
                if written == len(data):
                    return
                data = data[written:]
            if self._queued + len(data) > self.limit:
                self.dropped += 1
                self._unreported += 1
                return
            self._queue.append(data)
            self._queued += len(data)
            self._start_writer()
            self._cond.notify()

    def flush(self, timeout: float = 1.0) -> None:
        """Wait at most ``timeout`` seconds for the queue to reach the stream."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._writing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._cond.wait(remaining)

    def _start_writer(self) -> None:
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._write_queued, name="warden:log-writer", daemon=True
            )
            self._writer.start()

    def _write_queued(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                batch = b"".join(self._queue)
                self._queue.clear()
                self._queued = 0
                self._writing = True
            _write_blocking(self.fd, batch)
            with self._cond:
                self._writing = False
                lost, self._unreported = self._unreported, 0
                if not self._queue:
                    self._cond.notify_all()
            if lost:
                _write_blocking(self.fd, self._notice(lost))

    def _notice(self, lost: int) -> bytes:
        record = logging.LogRecord(
            "warden",
            logging.WARNING,
            __file__,
            0,
            "%d log records dropped: stderr was not read fast enough (a stalled log reader)",
            (lost,),
            None,
        )
        with contextlib.suppress(Exception):
            return (self.format(record) + "\n").encode("utf-8", "backslashreplace")
        return f"warden: {lost} log records dropped\n".encode()


def stderr_handler(stream: IO[str]) -> logging.Handler:
    """A :class:`NonBlockingHandler` on ``stream``'s descriptor; a plain ``StreamHandler``
    for a stream without one (a test's captured ``sys.stderr``)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return logging.StreamHandler(stream)
    return NonBlockingHandler(fd)


def _write_now(fd: int, data: bytes) -> int:
    """Write what the stream takes without waiting (0 when it would have to wait)."""
    try:
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        if not poller.poll(0):
            return 0
        return os.write(fd, data)
    except OSError:
        return len(data)  # a closed or broken stream: nobody to tell; drop it


def _write_blocking(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:  # someone else made it non-blocking: wait for room
            poller = select.poll()
            poller.register(fd, select.POLLOUT)
            poller.poll(1000)
        except OSError:
            return


def write_bounded(fd: int, text: str, timeout: float = 0.5) -> None:
    """Write ``text`` to ``fd`` from a helper thread, waiting at most ``timeout`` seconds.

    For a last line before the process exits: it must not hold the exit on a stalled stream.
    """
    data = text.encode("utf-8", "backslashreplace")
    data = data[_write_now(fd, data[:_PIPE_BUF]) :]
    if not data:
        return
    helper = threading.Thread(
        target=_write_blocking, args=(fd, data), name="warden:last-line", daemon=True
    )
    helper.start()
    helper.join(timeout)
