"""A gunicorn config module: READY=1 once every worker has loaded the app, a deadline and a
leak report in each worker.

    warden run --listen tcp://0.0.0.0:8000 --ready notify \\
        -- gunicorn -c python:warden.integrations.gunicorn app:app

or, with settings of your own, in your config file: ``from warden.integrations.gunicorn
import *`` (the hooks below are gunicorn settings by name; wrap one to add to it).

What it changes (each a hook below):

* **Readiness** (``on_starting``, ``post_worker_init``, ``on_reload``): gunicorn's arbiter
  sends READY=1 as soon as it has bound its sockets, before any worker has imported the app
  (so a readiness gate, ``warden run --ready notify`` or systemd's ``Type=notify``, passes
  for a release that cannot serve). Here the arbiter's $NOTIFY_SOCKET is taken away from
  gunicorn, each worker reports through a pipe once its app is loaded, and the arbiter sends
  READY=1 when as many workers as ``workers`` have: the gate waits for the workers, and an
  upgrade under ``warden run`` (``warden upgrade``, or SIGHUP with ``--on-hup upgrade``) is
  gated on them. A ``kill -HUP`` to gunicorn itself sends RELOADING=1, then READY=1 once the
  new generation of workers has loaded.
* **A deadline in each worker** (``post_worker_init``): at SIGTERM the worker arms a guard
  thread; if the worker is still alive at the deadline (``$WARDEN_SHUTDOWN_TIMEOUT`` or
  ``graceful_timeout``, whichever is shorter, less 0.1 s, so before the arbiter's SIGKILL) it
  writes the requests still in flight (method, path, client, age) and every thread's stack
  to stderr, and exits with code 124: a silent SIGKILL becomes a named cut.
* **A leak report in each worker** (``worker_exit``): threads, child processes and
  listening sockets the worker started and left running, by name and stack, on gunicorn's
  log.

gunicorn is not imported by this module (the hooks receive its objects).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import select
import signal
import sys
import threading
import time
import traceback
from typing import Any

from warden.lifecycle import EXIT_DEADLINE, Leak
from warden.lifecycle import _Baseline as Baseline
from warden.lifecycle import _find_leaks as find_leaks
from warden.lifecycle import _take_baseline as take_baseline
from warden.systemd import Notifier, monotonic_usec

__all__ = [
    "on_reload",
    "on_starting",
    "post_fork",
    "post_request",
    "post_worker_init",
    "pre_request",
    "worker_exit",
]

_RESERVE = 0.1  # seconds before the arbiter's SIGKILL at graceful_timeout


class _Readiness:
    """The arbiter's side: counts workers that loaded the app; READY=1 once all have."""

    def __init__(self, notifier: Notifier, wanted: int) -> None:
        self.notifier = notifier
        self.wanted = wanted
        self.read_fd, self.write_fd = os.pipe()
        self._lock = threading.Lock()
        self._loaded: set[int] = set()
        self._generation_began = 0.0
        self._ready_sent = False
        threading.Thread(target=self._read, name="warden:gunicorn:ready", daemon=True).start()

    def reloading(self, wanted: int) -> None:
        with self._lock:
            self.wanted = wanted
            self._loaded.clear()
            self._ready_sent = False
        self.notifier.send(RELOADING=1, MONOTONIC_USEC=monotonic_usec(), STATUS="reloading")

    def _read(self) -> None:
        buffer = b""
        while chunk := os.read(self.read_fd, 4096):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                self._loaded_one(int(line))

    def _loaded_one(self, pid: int) -> None:
        with self._lock:
            self._loaded.add(pid)
            if self._ready_sent or len(self._loaded) < self.wanted:
                return
            self._ready_sent = True
        with contextlib.suppress(OSError):  # the manager is gone: gunicorn still serves
            self.notifier.send(READY=1, STATUS=f"{self.wanted} workers ready")


_readiness: _Readiness | None = None


def on_starting(server: Any) -> None:
    """Arbiter: take $NOTIFY_SOCKET from gunicorn (its READY=1 comes before the workers)."""
    global _readiness
    notifier = Notifier.from_environment(unset=True)
    if notifier is not None:
        _readiness = _Readiness(notifier, server.cfg.workers)


def on_reload(server: Any) -> None:
    """Arbiter, at SIGHUP: RELOADING=1; READY=1 again once the new workers have loaded."""
    if _readiness is not None:
        _readiness.reloading(server.cfg.workers)


def post_fork(server: Any, worker: Any) -> None:
    """Worker: the pipe's read end is the arbiter's."""
    if _readiness is not None:
        os.close(_readiness.read_fd)


# -- in each worker -------------------------------------------------------------------------

_baseline: Baseline | None = None
_in_flight: dict[int, tuple[str, str, float]] = {}  # id(req) -> (request, client, began)


def post_worker_init(worker: Any) -> None:
    """Worker, app loaded: report it; arm the deadline at SIGTERM; take the leak baseline."""
    global _baseline
    _baseline = take_baseline()
    _arm_deadline_at_sigterm(worker)
    if _readiness is not None:
        os.write(_readiness.write_fd, f"{os.getpid()}\n".encode())  # < PIPE_BUF: atomic
        os.close(_readiness.write_fd)


def pre_request(worker: Any, req: Any) -> None:
    client = req.peer_addr if isinstance(req.peer_addr, str) else ":".join(map(str, req.peer_addr))
    _in_flight[id(req)] = (f"{req.method} {req.path}", client, time.monotonic())


def post_request(worker: Any, req: Any, environ: Any, resp: Any) -> None:
    _in_flight.pop(id(req), None)


def worker_exit(server: Any, worker: Any) -> None:
    """Worker, leaving: name what it started and left running."""
    if _baseline is None:
        return
    # gthread's pool starts its threads at the first requests, after the baseline, and lets
    # them end on their own (``shutdown(wait=False)``): gunicorn's threads, not the app's.
    pool = getattr(worker, "tpool", None)
    own = {t.ident for t in getattr(pool, "_threads", ()) if t.ident is not None}
    baseline = dataclasses.replace(_baseline, threads=_baseline.threads | own)

    async def scan() -> list[Leak]:
        return find_leaks(baseline)  # the scan asks asyncio for tasks: give it a loop

    for leak in asyncio.run(scan()):
        worker.log.warning("warden: leak: %s %s\n%s", leak.kind, leak.name, leak.stack)


def _deadline(worker: Any) -> float:
    limit = float(worker.cfg.graceful_timeout)
    env = os.environ.get("WARDEN_SHUTDOWN_TIMEOUT")
    if env:
        with contextlib.suppress(ValueError):
            limit = min(limit, float(env))
    return max(0.0, limit - _RESERVE)


def _arm_deadline_at_sigterm(worker: Any) -> None:
    wake_r, wake_w = os.pipe()
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        # Record and wake only; the guard thread does the rest. A second write would block
        # only once the pipe is full, which one signal at a time never fills.
        with contextlib.suppress(BlockingIOError):
            os.write(wake_w, b"T")
        if callable(previous):
            previous(signum, frame)

    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGTERM, on_sigterm)
    threading.Thread(
        target=_guard,
        args=(wake_r, _deadline(worker)),
        name="warden:gunicorn:deadline",
        daemon=True,
    ).start()


def _guard(wake_fd: int, deadline: float) -> None:
    os.read(wake_fd, 1)  # SIGTERM came
    began = time.monotonic()
    select.select([], [], [], deadline)  # the worker's exit ends this daemon thread first
    now = time.monotonic()
    lines = [
        f"warden: worker {os.getpid()} still running {now - began:.3f}s after SIGTERM "
        f"(deadline {deadline:.3f}s); in flight:\n"
    ]
    for request, client, since in list(_in_flight.values()):
        lines.append(f"warden:   {request} from {client} ({now - since:.3f}s old)\n")
    frames = sys._current_frames()
    for thread in threading.enumerate():
        frame = frames.get(thread.ident or -1)
        if frame is not None and thread is not threading.current_thread():
            lines.append(f"warden: thread {thread.name!r}:\n")
            lines.extend("  " + line for line in traceback.format_stack(frame))
    with contextlib.suppress(OSError):
        os.write(2, "".join(lines).encode())
    os._exit(EXIT_DEADLINE)
