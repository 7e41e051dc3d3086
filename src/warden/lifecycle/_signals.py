"""Signal intake: the signal's number reaches the guard's pipe, and nothing else happens.

The number is written by CPython's C-level handler to the *wakeup fd* (``set_wakeup_fd``),
which is the guard's pipe while the lifecycle runs. Why not a Python-level handler that
writes it, or ``loop.add_signal_handler``: the kernel delivers a process-directed signal to
any thread that does not block it, and CPython runs Python-level handlers only in the main
thread, at its next bytecode. A main thread idle in ``epoll_wait`` (no timers: no wake-ups)
never gets there when the signal landed on another thread, and the stop would wait forever
(seen: a SIGTERM lost to the guard thread). The C handler writes from whichever thread caught
the signal, allocates nothing, takes no lock, never logs (gunicorn's arbiter: "NO LOGGING,
just queue the signal"); the Python-level handler installed beside it does nothing at all.

A process has one wakeup fd. An asyncio loop's own ``add_signal_handler`` uses it; the
previous fd is kept and the guard passes it every signal warden does not handle itself, so
such handlers keep working while the lifecycle runs. It is put back afterwards. A loop that
calls ``add_signal_handler`` while the lifecycle runs takes the wakeup fd over: the
lifecycle's loop is watched (:meth:`SignalIntake.watch_loop`), and right after such a call
the fd is taken back and the taker's fd becomes the one passed on.

The Python-level handler is a C function (``operator.is_``), never Python code: CPython runs
a Python-level handler at the next bytecode of the main thread, *including the handler's
own*, so under a storm of signals (``kill -USR1`` every few microseconds) a handler written in
Python was re-entered from its own first instruction until ``RecursionError`` ended the
process with 1, or a fatal error with the storm's signal (seen during the shutdown). A C
callable runs no bytecode, so a storm costs one call per delivery, never a deeper stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import signal
import threading
from collections.abc import Callable, Iterable

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

    def __init__(self, wake_fd: int, *, on_taken: Callable[[int], None]) -> None:
        self._wake_fd = wake_fd
        self._on_taken = on_taken
        self._previous: dict[int, _Handler] = {}
        #: The wakeup fd before ours (-1: none), for signals warden does not handle.
        self.previous_wakeup_fd = -1
        self._wakeup_installed = False
        self._watched: asyncio.AbstractEventLoop | None = None
        # What the watched loop's instance held under the wrapped names before us (another
        # lifecycle's wrappers, when lifecycles nest on one loop): put back at restore.
        self._unwrapped: dict[str, object] = {}

    def install(self, signums: Iterable[int]) -> None:
        """Install handlers (idempotent per signal); only from the main thread."""
        current = threading.current_thread()
        if current is not threading.main_thread():
            raise SignalHandlerError(
                f"warden can only install signal handlers from the main thread, not from "
                f"thread {current.name!r}; run the lifecycle in the main thread, or pass "
                "handle_signals=False and deliver stops with request_stop()"
            )
        if not self._wakeup_installed:
            self.previous_wakeup_fd = signal.set_wakeup_fd(self._wake_fd, warn_on_full_buffer=False)
            self._wakeup_installed = True
        for signum in signums:
            if signum not in self._previous:
                self._previous[signum] = signal.signal(signum, _NO_OP)

    @property
    def signals(self) -> frozenset[int]:
        """The signals handled here (their numbers are not passed to the previous fd)."""
        return frozenset(self._previous)

    def restore(self, *, ignore: bool = False) -> None:
        """Put back every handler that was replaced; with ``ignore``, SIG_IGN instead.

        ``ignore`` is for a process about to exit: a default action restored now would let
        a late signal end it with 128+N instead of its own exit code.
        """
        for signum, previous in self._previous.items():
            with contextlib.suppress(TypeError, ValueError):
                # None means the handler was installed outside Python: leave the default.
                restored = signal.SIG_DFL if previous is None else previous
                signal.signal(signum, signal.SIG_IGN if ignore else restored)  # type: ignore[arg-type]
        self._previous.clear()
        self._unwatch()
        if self._wakeup_installed:
            signal.set_wakeup_fd(self.previous_wakeup_fd)
            self._wakeup_installed = False

    def watch_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Take the wakeup fd back whenever ``loop`` adds or removes a signal handler (both
        set the process's wakeup fd); :meth:`restore` stops watching. Only the loop's own
        methods are wrapped, on this instance: nothing changes for any other loop."""
        add, remove = loop.add_signal_handler, loop.remove_signal_handler
        names = ("add_signal_handler", "remove_signal_handler")
        own = getattr(loop, "__dict__", {})  # a loop written in C may have none
        self._unwrapped = {name: own.get(name, _UNSET) for name in names}

        def add_signal_handler(sig: int, callback: Callable[..., object], *args: object) -> None:
            try:
                add(sig, callback, *args)
            finally:
                self._take_back()

        def remove_signal_handler(sig: int) -> bool:
            try:
                return remove(sig)
            finally:
                self._take_back()

        try:
            loop.add_signal_handler = add_signal_handler  # type: ignore[method-assign]
            loop.remove_signal_handler = remove_signal_handler  # type: ignore[method-assign]
        except AttributeError:  # methods that cannot be replaced (a loop written in C)
            self._watched = loop
            self._unwatch()  # the one that may have been replaced goes back
            return
        self._watched = loop

    def _unwatch(self) -> None:
        """Put back what the watched loop held under the wrapped names."""
        if self._watched is None:
            return
        for name, before in self._unwrapped.items():
            with contextlib.suppress(AttributeError):
                if before is _UNSET:
                    delattr(self._watched, name)
                else:
                    setattr(self._watched, name, before)
        self._watched = None
        self._unwrapped = {}

    def _take_back(self) -> None:
        if not self._wakeup_installed or threading.current_thread() is not threading.main_thread():
            return  # only the main thread sets the wakeup fd: the loop's own call has failed
        taken_by = signal.set_wakeup_fd(self._wake_fd, warn_on_full_buffer=False)
        if taken_by != self._wake_fd:
            self.previous_wakeup_fd = taken_by  # the taker's fd is the one passed on now
            self._on_taken(taken_by)


_UNSET = object()

#: The Python-level handler of every signal the intake takes: any callable makes CPython's
#: C-level handler write the number to the wakeup fd; this one runs no bytecode (see above).
_NO_OP = operator.is_
