"""How the demo ends early: a signal, or its output closed.

A signal a person or a terminal sends (^C's SIGINT, SIGTERM, a closed terminal's or a dropped
ssh session's SIGHUP, ^\\'s SIGQUIT) ends the steps where they are, as :class:`Interrupted`;
the demo then stops warden, removes its directories and exits 128+N. A second signal during
that cleanup hurries it (SIGKILL to warden instead of waiting for its graceful stop), never
cuts it short.

An output no one reads any more (``warden demo | head -3``: EPIPE; a closed terminal: EIO)
ends the steps the same way, as :class:`OutputClosed`, and the demo exits 141 (128+SIGPIPE,
what a shell reports for a writer whose reader left) without a word: there is no one to
tell. Both are ``BaseException``: a step's ``except Exception`` does not swallow them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType, TracebackType
from typing import TextIO

#: The signals that end the demo through its cleanup.
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)

#: The exit code when the demo's output was closed: as a shell reports a writer whose reader
#: left (128 + SIGPIPE).
EXIT_OUTPUT_CLOSED = 128 + signal.SIGPIPE


class Interrupted(BaseException):
    """A signal ended the steps."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class OutputClosed(BaseException):
    """The demo's output is closed or broken: no one reads it any more."""


class Interrupts:
    """The demo's signal handlers, while it runs (a context manager).

    Outside :meth:`raising` a signal is only noted: the setup, the cleanup and the summary are
    never cut short (:attr:`received` says it came). Inside, the first raises
    :class:`Interrupted` at once. Any signal after the first sets :attr:`hurry`.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self.hurry = threading.Event()
        self._raising = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> Interrupts:
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            self.hurry.set()
            return
        self.received = signum
        if self._raising:
            raise Interrupted(signum)

    @contextlib.contextmanager
    def raising(self) -> Iterator[None]:
        """Signals raise :class:`Interrupted` in here (one noted before, at once)."""
        if self.received is not None:
            raise Interrupted(self.received)
        self._raising = True
        try:
            yield
        finally:
            self._raising = False

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Within :meth:`raising`: a signal here is raised at its end, not inside (a process
        started in here is known to the cleanup before the signal ends the steps)."""
        self._raising = False
        try:
            yield
        finally:
            self._raising = True
        if self.received is not None:
            raise Interrupted(self.received)


class Sink:
    """A stream the demo writes to, which may close under it.

    The first write that fails (EPIPE, EIO, a stream closed from the start) closes the sink
    for good: its descriptor then points at ``/dev/null``, so that Python's flush at exit
    finds nothing broken. A ``vital`` sink (where the summary goes) raises
    :class:`OutputClosed` then, and at every write after; another goes quiet.
    """

    def __init__(self, stream: TextIO | None, *, vital: bool) -> None:
        self.stream = stream
        self.vital = vital
        self.closed = stream is None

    def write(self, text: str) -> None:
        if not self.closed and self.stream is not None:
            try:
                self.stream.write(text)
                self.stream.flush()
                return
            except (OSError, ValueError):
                self._close()
        if self.vital:
            raise OutputClosed

    def _close(self) -> None:
        self.closed = True
        if self.stream is None:
            return
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)


def say(stream: TextIO | None, text: str) -> None:
    """Write ``text`` if ``stream`` can take it; say nothing otherwise (no one to tell)."""
    Sink(stream, vital=False).write(text)
