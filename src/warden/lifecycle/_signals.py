"""Signal intake: handlers that record the signal and wake the guard, nothing more.

Why a Python-level handler that writes to a pipe, rather than ``loop.add_signal_handler``:
the loop's own handling only runs when the loop runs, and the point of the deadline guard is
to act when it does not. ``signal.set_wakeup_fd`` would also work from C, but a process has
one wake-up fd and asyncio claims it for its own handlers. The handler below allocates
nothing, takes no lock and never logs (gunicorn's arbiter: "NO LOGGING, just queue the
signal"); everything else happens in the loop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterable
from types import FrameType

from warden._exceptions import SignalHandlerError

_Handler = signal.Handlers | int | None | object


def signal_name(signum: int) -> str:
    """``SIGSEGV`` for 11; ``SIGRTMIN+3`` for real-time signals; ``signal 99`` if unknown.

    ``signal.Signals`` names only SIGRTMIN and SIGRTMAX of the real-time range.
    """
    try:
        return signal.Signals(signum).name
    except ValueError:
        pass
    if signal.SIGRTMIN < signum <= signal.SIGRTMAX:
        return f"SIGRTMIN+{signum - signal.SIGRTMIN}"
    return f"signal {signum}"


class SignalIntake:
    """Installs recording handlers for a set of signals, and restores the previous ones."""

    def __init__(self, wake_fd: int) -> None:
        self._wake_fd = wake_fd
        self._previous: dict[int, _Handler] = {}

    def install(self, signums: Iterable[int]) -> None:
        """Install handlers (idempotent per signal); only from the main thread."""
        current = threading.current_thread()
        if current is not threading.main_thread():
            raise SignalHandlerError(
                f"warden can only install signal handlers from the main thread, not from "
                f"thread {current.name!r}; run the lifecycle in the main thread, or pass "
                "handle_signals=False and deliver stops with request_stop()"
            )
        for signum in signums:
            if signum not in self._previous:
                self._previous[signum] = signal.signal(signum, self._record)

    def restore(self) -> None:
        """Put back every handler that was replaced."""
        for signum, previous in self._previous.items():
            with contextlib.suppress(TypeError, ValueError):
                # None means the handler was installed outside Python: leave the default.
                signal.signal(signum, signal.SIG_DFL if previous is None else previous)  # type: ignore[arg-type]
        self._previous.clear()

    def _record(self, signum: int, frame: FrameType | None) -> None:
        # try/except rather than contextlib.suppress: no object is created in a handler.
        try:  # noqa: SIM105
            os.write(self._wake_fd, bytes((signum,)))
        except OSError:  # full pipe: a wake-up is already pending
            pass
