"""Which signals warden passes on to the child, and how signal names are read.

What a PID 1 must do with each signal (learnt from tini, which forwards everything it does not
need itself):

* SIGTERM, SIGINT: the lifecycle's graceful stop, which runs the stop ladder (the child gets
  ``--stop-signal``); a second one skips to SIGKILL.
* SIGCHLD: never forwarded; it drives the reaper.
* SIGKILL, SIGSTOP: cannot be caught.
* SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT: raised synchronously by a fault
  *in warden*; forwarding them would blame the child for warden's crash. Sent by a user with
  ``kill`` they would end warden without its ladder (default action: core), so warden
  ignores them (:func:`ignore_unforwarded`); a real fault still kills it: the kernel delivers
  a synchronous fault with ``force_sig``, which resets an ignored disposition to the default,
  and ``abort()`` re-raises SIGABRT at its default action when it was ignored.
* SIGPIPE, SIGXFSZ, SIGXCPU: about warden's own writes and resource limits, not the child's;
  ignored (SIGXCPU's hard limit is SIGKILL anyway; Python already ignores PIPE and XFSZ).
* SIGTTIN, SIGTTOU: warden ignores them (it may write to a terminal whose foreground it gave
  to the child; with ``TOSTOP`` set, the default action would stop warden).
* Everything else (HUP, QUIT, USR1, USR2, WINCH, CONT, TSTP, ALRM, URG, ...) is meant for the
  program: forwarded to the child, or to its process group with ``--group``.

* The real-time signals SIGRTMIN..SIGRTMAX are forwarded too, as tini does (their default
  action is to terminate: one ``kill -s RTMIN+3`` used to end warden at once, exit 165, and
  orphan the program). ``signal.Signals`` names only the first and the last, so the others
  are plain numbers here. (glibc keeps 32 and 33, below SIGRTMIN, for its threads.)

So no signal a user can send ends warden without the stop ladder, except SIGKILL.

``--stop-signal`` must be a signal that can end a program: not one whose default action is to
ignore it (CHLD, URG, CONT) or to stop the process (STOP, TSTP, TTIN, TTOU). WINCH, ignored
by default, is allowed: Apache httpd's graceful stop is SIGWINCH.
"""

from __future__ import annotations

import signal

from ..._exceptions import ConfigurationError

#: Not forwarded, and ignored while warden runs (see the module's docstring): a user's
#: ``kill`` with one of them must not end warden without its ladder.
IGNORED = (
    signal.SIGSEGV,
    signal.SIGBUS,
    signal.SIGFPE,
    signal.SIGILL,
    signal.SIGTRAP,
    signal.SIGSYS,
    signal.SIGABRT,
    signal.SIGXCPU,
    signal.SIGXFSZ,
    signal.SIGPIPE,
)

#: Signals warden keeps for itself: the lifecycle's stop, the reaper's, those that cannot be
#: caught, the terminal's (warden ignores them), and the ignored ones above.
NOT_FORWARDED = frozenset(
    {
        signal.SIGTERM,
        signal.SIGINT,
        signal.SIGCHLD,
        signal.SIGKILL,
        signal.SIGSTOP,
        signal.SIGTTIN,
        signal.SIGTTOU,
        *IGNORED,
    }
)

#: The signals warden catches and passes on, in number order: every named one it does not
#: keep for itself, then every real-time signal (named ones as ``signal.Signals``).
FORWARDED: tuple[int, ...] = tuple(
    sorted(
        {
            *(sig for sig in signal.Signals if sig not in NOT_FORWARDED),
            *range(signal.SIGRTMIN + 1, signal.SIGRTMAX),
        },
        key=int,
    )
)

#: Signals that cannot end a program (ignored or stopping by default): never a stop signal.
_CANNOT_STOP = {
    signal.SIGCHLD: "is ignored by default",
    signal.SIGURG: "is ignored by default",
    signal.SIGCONT: "resumes a program instead of stopping it",
    signal.SIGTSTP: "suspends a program instead of stopping it",
    signal.SIGTTIN: "suspends a program instead of stopping it",
    signal.SIGTTOU: "suspends a program instead of stopping it",
}


def ignore_unforwarded() -> None:
    """Ignore the :data:`IGNORED` signals that are at their default action now.

    For warden's own process only (the program gets every disposition reset at its spawn).
    A handler installed by someone else (``faulthandler``) is left alone.
    """
    import faulthandler

    faults = {signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGABRT}
    for sig in IGNORED:
        if faulthandler.is_enabled() and sig in faults:
            continue
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, signal.SIG_IGN)


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
    if sig in _CANNOT_STOP:
        raise ConfigurationError(
            f"{what}={text!r}: {sig.name} {_CANNOT_STOP[sig]}, so it cannot end the program; "
            "use TERM, INT or QUIT"
        )
    return sig
