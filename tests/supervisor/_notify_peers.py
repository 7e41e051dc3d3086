"""Real peers for the notify server: an event loop serving it, raw senders, client processes.

No sleeping as synchronisation. The server handles datagrams one at a time in arrival order,
so a ``BARRIER=1`` that returns (or a last message that arrives) proves every datagram sent
before it was handled, dropped ones included.
"""

from __future__ import annotations

import array
import asyncio
import concurrent.futures
import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from warden.supervisor.notify._server import Access, NotifyMessage, NotifyServer

DEADLINE = 20.0
T = TypeVar("T")


class Served:
    """A :class:`NotifyServer` on its own event loop, run only while the test waits on it."""

    def __init__(
        self,
        directory: Path,
        access: Access,
        server: type[NotifyServer] = NotifyServer,
        *,
        before: Callable[[NotifyMessage], None] | None = None,
    ) -> None:
        self._before = before  # runs first on every message; may raise, as a buggy handler
        self.loop = asyncio.new_event_loop()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self.messages: list[NotifyMessage] = []
        self._waiters: list[tuple[Callable[[NotifyMessage], bool], asyncio.Future[None]]] = []
        self.server = server(self._received, access=access, directory=str(directory))

    def start(self) -> None:
        self.server.start(self.loop)

    def _received(self, message: NotifyMessage) -> None:
        if self._before is not None:
            self._before(message)
        self.messages.append(message)
        for match, future in self._waiters:
            if not future.done() and match(message):
                future.set_result(None)

    def serve_while(self, work: Callable[[], T], timeout: float = DEADLINE) -> T:
        """Run ``work`` on a thread while the loop serves the socket; its result."""
        future = self.loop.run_in_executor(self._executor, work)
        return self.loop.run_until_complete(asyncio.wait_for(future, timeout))

    def wait_message(self, key: str, value: str, timeout: float = DEADLINE) -> NotifyMessage:
        """Serve until a message with ``key=value`` was dispatched; that message."""

        def match(message: NotifyMessage) -> bool:
            return message.fields.get(key) == value

        for message in self.messages:
            if match(message):
                return message
        future: asyncio.Future[None] = self.loop.create_future()
        self._waiters.append((match, future))
        self.loop.run_until_complete(asyncio.wait_for(future, timeout))
        return next(m for m in self.messages if match(m))

    def close(self) -> None:
        self.server.close()
        for message in self.messages:  # descriptors handed over and not used by the test
            for fd in message.fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.loop.close()


class Sender:
    """A raw datagram client: any bytes, any descriptors, a timeout on every send."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.settimeout(DEADLINE)  # blocks while the server's queue is full

    def send(self, payload: bytes, fds: Sequence[int] = ()) -> None:
        ancillary = []
        if fds:
            rights = array.array("i", fds).tobytes()
            ancillary.append((socket.SOL_SOCKET, socket.SCM_RIGHTS, rights))
        self.sock.sendmsg([payload], ancillary, 0, self.path)

    def barrier(self) -> None:
        """Return once the server has handled everything sent before (it closed our fd)."""
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        try:
            try:
                self.send(b"BARRIER=1", [write_end])
            finally:
                os.close(write_end)
            assert hung_up(read_end, DEADLINE), "the server never answered BARRIER=1"
        finally:
            os.close(read_end)

    def close(self) -> None:
        self.sock.close()


def hung_up(read_end: int, timeout: float = 0.0) -> bool:
    """Whether every copy of the pipe's write end is closed (POLLHUP on the read end)."""
    poller = select.poll()
    poller.register(read_end, select.POLLHUP)
    return bool(poller.poll(timeout * 1000))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


CLIENT = """\
import os, sys
from warden.systemd import Notifier

notifier = Notifier(os.environ["NOTIFY_SOCKET"])
print("ready", flush=True)
for line in sys.stdin:
    words = line.split()
    if words == ["barrier"]:
        print("barrier", notifier.barrier(timeout=20), flush=True)
    elif words == ["fdstore"]:
        read_end, write_end = os.pipe()
        notifier.fdstore([read_end, write_end], name="stray")
        print("sent", flush=True)
    else:
        notifier.send(**dict(word.split("=", 1) for word in words))
        print("sent", flush=True)
"""


class Client:
    """A Python process talking to the server with warden's Notifier, one command per line.

    It waits for commands, so its pid is known (and can be made the main pid) before it sends.
    """

    def __init__(self, script: Path, notify_socket: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "NOTIFY_SOCKET": notify_socket},
        )
        self.pid = self.proc.pid
        if self.reply() != "ready":
            self.kill()
            raise AssertionError(f"notify client pid {self.pid} did not start")

    def say(self, command: str) -> str:
        """Send one command and return the client's answer (call it under ``serve_while``)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.reply()

    def reply(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(DEADLINE)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


def run_process(argv: Sequence[str], notify_socket: str) -> tuple[int, int]:
    """Run a program with NOTIFY_SOCKET to its end: (pid, exit code). Killed on timeout."""
    proc = subprocess.Popen(list(argv), env={**os.environ, "NOTIFY_SOCKET": notify_socket})
    try:
        return proc.pid, proc.wait(DEADLINE)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
