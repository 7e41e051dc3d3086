"""Hostile HTTP clients: hold COUNT connections to HOST:PORT, reopening each one closed.

    python3 -I _hostile_http.py KIND COUNT HOST PORT

KIND is what each connection does once connected:

* ``idle``: nothing (it holds a slot);
* ``slowloris``: a request line, then one byte of a header every second, never finishing;
* ``garbage``: 4 KiB of random bytes, then more every second;
* ``headers``: a request line, then one endless header, as fast as the server reads;
* ``h2``: the HTTP/2 connection preface and a SETTINGS frame, then nothing;
* ``mixed``: the five above in turn.

Prints ``holding COUNT`` once COUNT connections have been established, and on SIGTERM a
last line ``reopened N`` (connections the server closed and that were opened again), then
exits. Standard library only, one process, one thread (a ``selectors`` loop): it runs as
another user, under the system's ``python3``, in the tests and in ``bench/bench_health.py``.
"""

from __future__ import annotations

import errno
import os
import selectors
import signal
import socket
import sys
import time

KINDS = ("idle", "slowloris", "garbage", "headers", "h2")
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
HEADER_CHUNK = b"a" * 4096


class Attack:
    def __init__(self, kind: str, count: int, address: tuple[str, int]) -> None:
        self.kinds = KINDS if kind == "mixed" else (kind,)
        self.count = count
        self.address = address
        self.selector = selectors.DefaultSelector()
        self.kind_of: dict[socket.socket, str] = {}
        self.connected: set[socket.socket] = set()
        self.established = 0
        self.reopened = 0
        self.said_holding = False
        self.stopping = False

    def open(self, index: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        err = sock.connect_ex(self.address)
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            raise OSError(err, os.strerror(err))
        self.kind_of[sock] = self.kinds[index % len(self.kinds)]
        self.selector.register(sock, selectors.EVENT_WRITE)

    def reopen(self, sock: socket.socket) -> None:
        kind = self.kind_of.pop(sock)
        self.connected.discard(sock)
        self.selector.unregister(sock)
        sock.close()
        self.reopened += 1
        self.open(self.kinds.index(kind))

    def on_event(self, sock: socket.socket, mask: int) -> None:
        if sock not in self.connected:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                self.reopen(sock)
                return
            self.connected.add(sock)
            self.established += 1
            self.first_bytes(sock)
            return
        if mask & selectors.EVENT_READ:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.reopen(sock)
                return
        if mask & selectors.EVENT_WRITE:  # only ``headers`` waits to write
            self.send(sock, HEADER_CHUNK)

    def first_bytes(self, sock: socket.socket) -> None:
        kind = self.kind_of[sock]
        first = {
            "idle": b"",
            "slowloris": b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Slow: ",
            "garbage": os.urandom(4096).replace(b"\n", b"?"),
            "headers": b"GET /readyz HTTP/1.1\r\nX-Huge: ",
            "h2": H2_PREFACE,
        }[kind]
        if first:
            self.send(sock, first)
        events = selectors.EVENT_READ
        if kind == "headers":
            events |= selectors.EVENT_WRITE
        if sock in self.kind_of:  # still open
            self.selector.modify(sock, events)

    def send(self, sock: socket.socket, data: bytes) -> None:
        try:
            sock.send(data)
        except BlockingIOError:
            pass
        except OSError:
            self.reopen(sock)

    def tick(self) -> None:
        """Once a second: one more byte from every slowloris, more garbage from the rest."""
        for sock, kind in list(self.kind_of.items()):
            if sock not in self.connected:
                continue
            if kind == "slowloris":
                self.send(sock, b"a")
            elif kind == "garbage":
                self.send(sock, os.urandom(64).replace(b"\n", b"?"))

    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        for index in range(self.count):
            self.open(index)
        next_tick = time.monotonic() + 1.0
        while not self.stopping:
            if not self.said_holding and self.established >= self.count:
                print(f"holding {self.count}", flush=True)
                self.said_holding = True
            timeout = max(0.0, next_tick - time.monotonic())
            for key, mask in self.selector.select(timeout):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock in self.kind_of:
                    self.on_event(sock, mask)
            if time.monotonic() >= next_tick:
                self.tick()
                next_tick = time.monotonic() + 1.0
        print(f"reopened {self.reopened}", flush=True)


def main() -> None:
    kind, count, host, port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    if kind not in (*KINDS, "mixed"):
        sys.exit(f"unknown kind {kind!r}: one of {', '.join(KINDS)}, mixed")
    Attack(kind, count, (host, port)).run()


if __name__ == "__main__":
    main()
