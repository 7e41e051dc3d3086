"""Which signals warden passes on to the child, and how signal names are read.

What a PID 1 must do with each signal (learnt from tini, which forwards everything it does not
need itself):

* SIGTERM, SIGINT: the lifecycle's graceful stop, which runs the stop ladder (the child gets
  ``--stop-signal``); a second one skips to SIGKILL.
* SIGCHLD: never forwarded; it drives the reaper.
* SIGKILL, SIGSTOP: cannot be caught.
* SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT: raised synchronously by a fault
  *in warden*; forwarding them would blame the child for warden's crash.
* SIGPIPE, SIGXFSZ, SIGXCPU: about warden's own writes and resource limits, not the child's.
* SIGTTIN, SIGTTOU: warden ignores them (it may write to a terminal whose foreground it gave
  to the child; with ``TOSTOP`` set, the default action would stop warden).
* Everything else (HUP, QUIT, USR1, USR2, WINCH, CONT, TSTP, ALRM, URG, ...) is meant for the
  program: forwarded to the child, or to its process group with ``--group``.

Real-time signals other than SIGRTMIN and SIGRTMAX are not forwarded yet: the lifecycle names
every signal it delivers through ``signal.Signals``, which has no member for them.
"""

from __future__ import annotations

import signal

from ..._exceptions import ConfigurationError

NOT_FORWARDED = frozenset(
    {
        signal.SIGTERM,
        signal.SIGINT,
        signal.SIGCHLD,
        signal.SIGKILL,
        signal.SIGSTOP,
        signal.SIGSEGV,
        signal.SIGBUS,
        signal.SIGFPE,
        signal.SIGILL,
        signal.SIGTRAP,
        signal.SIGSYS,
        signal.SIGABRT,
        signal.SIGPIPE,
        signal.SIGXFSZ,
        signal.SIGXCPU,
        signal.SIGTTIN,
        signal.SIGTTOU,
    }
)

_REAL_TIME_NAMED = frozenset({signal.SIGRTMIN, signal.SIGRTMAX})

#: The signals warden catches and passes on, in number order.
FORWARDED: tuple[signal.Signals, ...] = tuple(
    sig
    for sig in sorted(signal.Signals, key=int)
    if sig not in NOT_FORWARDED and (sig < signal.SIGRTMIN or sig in _REAL_TIME_NAMED)
)


def parse_signal(text: str, *, what: str) -> signal.Signals:
    """``TERM``, ``SIGTERM``, ``sigterm`` or ``15`` -> ``Signals.SIGTERM``.

    Raises :class:`ConfigurationError` naming ``what`` for anything else, and for SIGSTOP
    (it cannot stop a program, only freeze it) and 0 (not a signal).
    """
    raw = text.strip()
    sig: signal.Signals | None = None
    if raw.isdigit():
        try:
            sig = signal.Signals(int(raw))
        except ValueError:
            sig = None
    else:
        name = raw.upper()
        if not name.startswith("SIG"):
            name = "SIG" + name
        sig = signal.Signals.__members__.get(name)
    if sig is None:
        raise ConfigurationError(
            f"{what}={text!r} is not a signal name; use a name like TERM, INT, QUIT or HUP "
            "(see `kill -l`)"
        )
    if sig == signal.SIGSTOP:
        raise ConfigurationError(
            f"{what}={text!r}: SIGSTOP freezes a program instead of stopping it; use TERM, "
            "INT or QUIT"
        )
    return sig
