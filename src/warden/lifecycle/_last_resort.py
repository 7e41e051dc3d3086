"""The last resort behind the deadline guard: a kernel timer that delivers SIGKILL.

The guard is a Python thread, and a Python thread needs the GIL to call ``os._exit``. C code
that holds the GIL for seconds (a catastrophic regular expression in ``re``, a long
``json.dumps`` of a huge object, an extension that forgets to release it) keeps the guard from
running at all: measured, a stop that runs ``re.match(r"(a+)+$", "a" * 28 + "b")`` under a 2 s
deadline exited 124 only after 12.7 s. So when the deadline is armed, a POSIX timer is armed
too, ``MARGIN`` seconds later, whose expiry the kernel turns into SIGKILL of the process with
no code of ours running (``timer_create(2)`` with ``SIGEV_SIGNAL`` and ``sigev_signo =
SIGKILL``: the kernel queues the signal itself, and SIGKILL is acted on without a handler).

Why this design and not the others:

* ``setitimer(ITIMER_REAL)`` with SIGALRM at its default action also needs no GIL, but SIGALRM
  is a signal any user may send: during every shutdown one ``kill -ALRM`` would end the
  process without its ladder. Nobody can send SIGKILL but those who could kill us anyway.
* A watcher process would be one more child of a subreaper: the supervisor's ladder waits
  for every child to be gone, and would wait for the watcher that waits for it.
* ``timerfd`` needs a reader, which is the thread that cannot run.

The timer is not inherited across ``fork``/``exec`` (``timer_create(2)``), so children never
carry it. Where the timer cannot be created (no ``timer_create`` in libc, a seccomp filter),
the guard thread is all there is, as before.

The exit status of the last resort is that of SIGKILL: a parent sees "killed by signal 9"
(137 in a shell); the guard's own exit, with its report, stays 124 whenever it can run.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import threading

#: Seconds after the deadline at which the kernel kills the process if the guard could not
#: exit it. The guard's own forced exit takes at most ~0.11 s after the deadline (its report
#: gets 0.1 s to reach stderr, its flush 5 ms), so one second never races with it.
MARGIN = 1.0

_CLOCK_MONOTONIC = 1
_SIGEV_SIGNAL = 0


class _SigEvent(ctypes.Structure):
    # struct sigevent on Linux is 64 bytes: the value union, signo, notify, then a union.
    _fields_ = (
        ("sigev_value", ctypes.c_void_p),
        ("sigev_signo", ctypes.c_int),
        ("sigev_notify", ctypes.c_int),
        ("_rest", ctypes.c_byte * (64 - ctypes.sizeof(ctypes.c_void_p) - 8)),
    )


class _TimeSpec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class _ITimerSpec(ctypes.Structure):
    _fields_ = (("it_interval", _TimeSpec), ("it_value", _TimeSpec))


class LastResort:
    """One kernel timer that SIGKILLs this process when it expires; armed once, disarmed once.

    Safe to arm from any thread (the loop's or the guard's): the first arming counts.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._timer: ctypes.c_void_p | None = None
        self._done = False
        #: Whether a timer is armed (False when the kernel or libc refused one).
        self.armed = False

    def arm(self, seconds: float) -> None:
        """Kill the process with SIGKILL ``seconds`` from now unless :meth:`disarm` comes."""
        with self._lock:
            if self._timer is not None or self._done:
                return
            timer = _create()
            if timer is None:
                self._done = True
                return
            whole = int(seconds)
            spec = _ITimerSpec()
            spec.it_value.tv_sec = whole
            spec.it_value.tv_nsec = max(1, int((seconds - whole) * 1e9))
            if _libc().timer_settime(timer, 0, ctypes.byref(spec), None) != 0:
                _libc().timer_delete(timer)
                self._done = True
                return
            self._timer = timer
            self.armed = True

    def disarm(self) -> None:
        """The shutdown ended in time (or never began): delete the timer for good."""
        with self._lock:
            self._done = True
            if self._timer is not None:
                _libc().timer_delete(self._timer)
                self._timer = None
                self.armed = False


_LIBC: ctypes.CDLL | None = None


def _libc() -> ctypes.CDLL:
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
        _LIBC.timer_create.argtypes = (
            ctypes.c_int,
            ctypes.POINTER(_SigEvent),
            ctypes.POINTER(ctypes.c_void_p),
        )
        _LIBC.timer_settime.argtypes = (
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.POINTER(_ITimerSpec),
            ctypes.c_void_p,
        )
        _LIBC.timer_delete.argtypes = (ctypes.c_void_p,)
    return _LIBC


def _create() -> ctypes.c_void_p | None:
    with contextlib.suppress(OSError, AttributeError):
        event = _SigEvent()
        event.sigev_signo = signal.SIGKILL
        event.sigev_notify = _SIGEV_SIGNAL
        timer = ctypes.c_void_p()
        if _libc().timer_create(_CLOCK_MONOTONIC, ctypes.byref(event), ctypes.byref(timer)) == 0:
            return timer
    return None
