"""The leak report: what the service started and left running after it stopped.

The Python counterpart of Go's goroutine-leak checks: pending asyncio tasks, non-daemon
threads (they keep the interpreter from exiting), child processes and listening sockets. Each
is compared with a baseline taken before the service started, so only what the service itself
left behind is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

from ._children import child_pids


@dataclass(frozen=True, slots=True)
class Leak:
    """Something the service started that was still alive after it stopped.

    Attributes:
        kind: ``task``, ``thread``, ``process`` or ``socket``.
        name: how to recognise it: a task or thread name, a pid and command line, an address.
        stack: where it is now (tasks, threads) or what is known of it (processes, sockets).
    """

    kind: str
    name: str
    stack: str


@dataclass(frozen=True, slots=True)
class Baseline:
    tasks: frozenset[asyncio.Task[object]]
    threads: frozenset[int]
    children: frozenset[int]
    sockets: frozenset[int]


def take_baseline() -> Baseline:
    try:
        tasks = frozenset(asyncio.all_tasks())
    except RuntimeError:
        tasks = frozenset()
    return Baseline(
        tasks,
        frozenset(t.ident for t in threading.enumerate() if t.ident is not None),
        frozenset(child_pids()),
        frozenset(_listening_sockets()),
    )


def find_leaks(baseline: Baseline) -> list[Leak]:
    """Everything alive now that was not in ``baseline``, each with a name and a stack."""
    leaks: list[Leak] = []
    current = asyncio.current_task()
    for task in asyncio.all_tasks():
        # A task being cancelled is on its way out (a watchdog pinger cancelled at "stopped").
        if task is current or task in baseline.tasks or task.done() or task.cancelling():
            continue
        leaks.append(Leak("task", task.get_name(), task_stack(task)))
    frames = sys._current_frames()
    loops = _default_executor_threads()
    for thread in threading.enumerate():
        if thread.daemon or thread is threading.main_thread() or thread.ident is None:
            continue
        if thread.ident in baseline.threads or thread in loops:
            continue
        frame = frames.get(thread.ident)
        stack = "".join(traceback.format_stack(frame)) if frame else "(no Python frame)\n"
        leaks.append(Leak("thread", thread.name, stack))
    for pid in sorted(set(child_pids()) - baseline.children):
        leaks.append(Leak("process", f"pid {pid}: {_cmdline(pid)}", _process_state(pid)))
    sockets = _listening_sockets()
    for inode in sorted(sockets.keys() - baseline.sockets):
        fd, address = sockets[inode]
        leaks.append(Leak("socket", f"fd {fd}: listening on {address}", "(still open)\n"))
    return leaks


def _default_executor_threads() -> set[threading.Thread]:
    """The threads of the running loop's default executor (``getaddrinfo``,
    ``run_in_executor(None, ...)``): the loop's own, shut down by ``asyncio.run`` when the
    loop ends, so not something the service left behind. asyncio has no public way to ask
    for them: read its attribute, and count none where it has changed."""
    try:
        executor = getattr(asyncio.get_running_loop(), "_default_executor", None)
    except RuntimeError:
        return set()
    threads = getattr(executor, "_threads", None)
    return set(threads) if isinstance(threads, set) else set()


def task_stack(task: asyncio.Task[object] | asyncio.Task[None]) -> str:
    """Where a task is now: every frame of its coroutine chain, outermost first.

    ``Task.get_stack()`` gives only the outermost frame of a suspended coroutine; the frame
    that matters is at the end of the ``cr_await`` chain.
    """
    frames = []
    awaited: object = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is not None:
            frames.append(frame)
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    if not frames:
        return f"(no frame: {task.get_coro()!r})\n"
    summary = traceback.StackSummary.extract((f, f.f_lineno) for f in frames)
    return "".join(traceback.format_list(summary))


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "(gone)"
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def _process_state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "(gone)\n"
    state = stat.rsplit(")", 1)[1].split()[0]
    return f"(process state {state})\n"


_SOCKET_LINK = re.compile(r"socket:\[(\d+)\]")


def _listening_sockets() -> dict[int, tuple[int, str]]:
    """Map inode -> (fd, address) for this process's listening sockets.

    Asks each of our own socket fds (``SO_ACCEPTCONN``) rather than reading
    ``/proc/net/tcp``, whose size grows with every connection on the machine (thousands of
    TIME_WAIT entries on a busy host).
    """
    listening: dict[int, tuple[int, str]] = {}
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                match = _SOCKET_LINK.fullmatch(os.readlink(f"/proc/self/fd/{name}"))
                if match is None:
                    continue
                fd = int(name)
                # A duplicate, so that closing our socket object leaves the service's fd open.
                with socket.socket(fileno=os.dup(fd)) as probe:
                    if probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                        listening[int(match.group(1))] = (fd, _address(probe))
    return listening


def _address(sock: socket.socket) -> str:
    address = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        text = address.decode(errors="replace") if isinstance(address, bytes) else address
        return f"unix:{text or '(unnamed)'}"
    if sock.family == socket.AF_INET6:
        return f"[{address[0]}]:{address[1]}"
    return f"{address[0]}:{address[1]}"
