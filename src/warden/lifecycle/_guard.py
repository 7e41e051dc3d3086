"""The deadline guard: the part of warden that does not trust the event loop.

One daemon thread, blocked in ``poll()`` on a pipe while nothing happens (no periodic
wake-ups). Three things write to the pipe:

* CPython's C-level signal handler, one byte per delivery holding the signal number (the pipe
  is the process's wakeup fd: see ``_signals.py``);
* the loop, ``ARM`` when a shutdown starts for a reason other than a signal;
* the loop, ``DONE`` when the shutdown has finished, which ends the thread.

The guard forwards every signal to the loop (``call_soon_threadsafe``), and at the first stop
signal it turns readiness false and arms the deadline *itself*, so a loop that is already
blocked when SIGTERM arrives cannot keep the process alive past the deadline. When the
deadline passes, it runs the forced-exit hooks (the supervisor kills the program's process
group there), writes the report it is given to stderr and leaves with ``os._exit``: no cleanup
code of the stuck program can block it.

The guard needs the GIL to do any of that. For C code that holds the GIL past the deadline,
arming the deadline also arms the last resort (``_last_resort.py``): a kernel timer that
SIGKILLs the process ``MARGIN`` seconds after the deadline, with no Python running.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable

from .._exitcodes import EXIT_DEADLINE, EXIT_SIGNAL_BASE
from ._last_resort import MARGIN, LastResort
from ._signals import signal_name

_POLL_MAX = 2**31 - 1  # ms: poll()'s timeout is a C int
ARM = 0xFE
DONE = 0xFF
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


class DeadlineGuard:
    """Arms a hard deadline on the first stop signal or :meth:`arm`, and enforces it."""

    def __init__(
        self,
        *,
        timeout: float,
        forward: Callable[[int], None],
        on_first_stop_signal: Callable[[], None],
        report: Callable[[str], str],
        exit_on_second_signal: bool,
        forced_exit_hooks: list[Callable[[], object]] | None = None,
    ) -> None:
        self._timeout = timeout
        self._forward = forward
        self._on_first_stop_signal = on_first_stop_signal
        self._report = report
        self._exit_on_second_signal = exit_on_second_signal
        self._forced_exit_hooks = [] if forced_exit_hooks is None else forced_exit_hooks
        self._last_resort = LastResort()
        #: Where the numbers of signals warden does not handle go (an asyncio loop's own
        #: wakeup fd, if it had one): set by the intake, -1 for none.
        self.chain_fd = -1
        self.handled: frozenset[int] = frozenset()
        self._rfd, self.wake_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._thread = threading.Thread(target=self._watch, name="warden:guard", daemon=True)
        self._armed_at: float | None = None

    def start(self) -> None:
        self._thread.start()

    def set_chain_fd(self, fd: int) -> None:
        """Where the numbers of signals warden does not handle go from now on (-1: nowhere)."""
        self.chain_fd = fd

    def arm(self) -> None:
        """Start the deadline now (idempotent: the first arming counts).

        The last resort is armed here, on the caller's thread, not when the guard reads
        ``ARM``: the caller may go on into C code that holds the GIL before the guard runs.
        """
        self._last_resort.arm(self._timeout + MARGIN)
        _write_control(self.wake_fd, ARM)

    def finish(self) -> None:
        """The shutdown has ended (or never began): disarm, stop the thread, close the pipe."""
        self._last_resort.disarm()
        if self._thread.is_alive():
            _write_control(self.wake_fd, DONE)
            self._thread.join()
        os.close(self._rfd)
        os.close(self.wake_fd)

    def _watch(self) -> None:
        deadline: float | None = None
        stop_signals_seen = 0
        # poll, not select: select() cannot watch an fd >= 1024, and a busy service has that
        # many open; the guard must never be the thing that breaks.
        poller = select.poll()
        poller.register(self._rfd, select.POLLIN)
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            # poll() takes a C int of milliseconds: a longer deadline is waited in parts.
            readable = poller.poll(None if timeout is None else min(timeout * 1000, _POLL_MAX))
            if not readable and deadline is not None and time.monotonic() < deadline:
                continue
            if not readable:
                self._force_exit(
                    EXIT_DEADLINE,
                    f"shutdown deadline of {self._timeout:g}s exceeded; "
                    f"forcing exit with code {EXIT_DEADLINE}",
                )
            try:
                data = os.read(self._rfd, 512)
            except BlockingIOError:
                continue
            # Signals coalesce (the kernel already merges pending ones): forward each signal
            # of a batch once, so a storm of SIGCHLD costs the loop one callback, not 2,000.
            # Stop signals are still counted one by one for the second-signal rule.
            batch: dict[int, None] = {}
            for byte in data:
                if byte == DONE:
                    return
                if (byte == ARM or byte in STOP_SIGNALS) and deadline is None:
                    deadline = time.monotonic() + self._timeout
                    self._last_resort.arm(self._timeout + MARGIN)
                if byte == ARM:
                    continue
                if byte not in self.handled and self.chain_fd >= 0:
                    _write_byte(self.chain_fd, byte)  # someone else's signal: pass it on
                    continue
                if byte in STOP_SIGNALS:
                    stop_signals_seen += 1
                    if stop_signals_seen == 1:
                        self._on_first_stop_signal()
                    if stop_signals_seen > 1 and self._exit_on_second_signal:
                        name = signal_name(byte)
                        self._force_exit(
                            EXIT_SIGNAL_BASE + byte,
                            f"second {name}: stopping immediately "
                            f"with code {EXIT_SIGNAL_BASE + byte}",
                        )
                    if stop_signals_seen > 1:
                        self._forward(byte)  # the loop must see the second one as such
                        continue
                batch[byte] = None
            for signum in batch:
                self._forward(signum)

    def _force_exit(self, code: int, headline: str) -> None:
        # A thread spinning in Python keeps the GIL for the whole switch interval (5 ms) each
        # time the guard gives it up for a syscall; writing the report takes dozens of those.
        # We are about to exit: let the guard win the GIL back in 0.1 ms instead.
        sys.setswitchinterval(1e-4)
        for hook in list(self._forced_exit_hooks):
            # First, before the report: the program must not outlive us (the supervisor
            # SIGKILLs its process group here). A failing hook must not keep us alive.
            with contextlib.suppress(BaseException):
                hook()
        try:
            text = self._report(headline)
        except BaseException:  # the report must never be what keeps the process alive
            text = f"warden: {headline}\n"
        try:
            # stderr may be a pipe nobody drains (a stalled log shipper): a blocking write
            # would hold the exit forever, so it gets a helper thread and a short wait.
            _in_helper(lambda: _write_all(2, text.encode("utf-8", "replace")), 0.1)
            _in_helper(_flush_stdio, 0.005)
        finally:
            os._exit(code)


def write_stderr(text: str) -> None:
    """``text`` to stderr (fd 2), lost rather than waited for: on a helper thread given
    0.5 s, so a full pipe nobody reads never holds the process's exit (PID 1 never blocks
    on what it says). Python's own buffers go first, on that thread too. Nothing when
    there is no stderr (``2>&-``: descriptor 2 may be another file by now)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return

    def write() -> None:
        _flush_stdio()
        _write_all(fd, text.encode("utf-8", "replace"))

    _in_helper(write, 0.5)


def _write_byte(fd: int, value: int) -> None:
    # A full pipe means the guard already has a wake-up pending: dropping is correct.
    with contextlib.suppress(BlockingIOError, OSError):
        os.write(fd, bytes((value,)))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            poller = select.poll()
            poller.register(fd, select.POLLOUT)
            poller.poll(1000)


def _flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _in_helper(work: Callable[[], None], wait: float) -> None:
    """Run ``work`` on a daemon thread and wait at most ``wait`` seconds for it: the stuck
    thread may hold a stream's lock, or the stream may not be drained."""

    def run() -> None:
        with contextlib.suppress(Exception):
            work()

    helper = threading.Thread(target=run, name="warden:exit", daemon=True)
    helper.start()
    helper.join(wait)


def _write_control(fd: int, value: int) -> None:
    # ARM and DONE must arrive (a lost DONE would leave finish() waiting forever): if a
    # signal storm filled the pipe, wait for the guard to drain it.
    for _ in range(100):
        try:
            os.write(fd, bytes((value,)))
            return
        except BlockingIOError:
            poller = select.poll()
            poller.register(fd, select.POLLOUT)
            poller.poll(100)
