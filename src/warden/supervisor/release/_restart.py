"""The restart policy: whether to start the child again, after how long, and when to give up.

A *quick* end is one that came before ``min_uptime`` had passed since the start. Quick ends in
a row make a crash loop: the n-th one waits ``initial * 2**(n-1)`` seconds (capped at
``maximum``) before the next start, and one more than ``max_restarts`` gives up. A run that
lasted ``min_uptime`` proves the program can work, so it resets the count.

Jitter is *subtracted*: the delay is the exponential step scaled by a random factor in
``(1 - jitter, 1]``. Many replicas that crashed together (a database went away) then spread
their restarts instead of hammering it in lockstep, and ``maximum`` stays a true maximum.

The clock and the random source are parameters so the whole sequence is testable without
sleeping (the tests jump the clock).
"""

from __future__ import annotations

import dataclasses
import enum
import os
import time
from collections.abc import Callable

from ..._exitcodes import EXIT_FAILURE
from ..process._reason import ExitKind, ExitReason


def uniform() -> float:
    """A float in [0, 1) from the kernel's random source, for the jitter.

    The ``random`` module would do, but costs PID 1 about 0.2 MiB resident for one number per
    restart (measured); jitter needs no reproducible sequence, and tests pass their own.
    """
    return int.from_bytes(os.urandom(7), "big") / (1 << 56)


class RestartPolicy(enum.Enum):
    """``--restart``: when the child is started again after it ended on its own."""

    NO = "no"
    ON_FAILURE = "on-failure"
    ALWAYS = "always"


@dataclasses.dataclass(frozen=True)
class Backoff:
    """Exponential backoff with subtractive jitter; all durations in seconds."""

    initial: float = 1.0
    maximum: float = 30.0
    #: Fraction of each delay that is randomised away, 0 (none) to 1 (anywhere in (0, step]).
    jitter: float = 0.2

    def delay(self, attempt: int, rng: Callable[[], float]) -> float:
        """The wait before restart number ``attempt`` (1-based) of a crash loop."""
        step = self.maximum
        # Compare before multiplying: 2**attempt overflows a float after ~1000 attempts.
        if attempt <= 64:
            step = min(self.initial * 2.0 ** (attempt - 1), self.maximum)
        return step * (1.0 - self.jitter * rng())


@dataclasses.dataclass(frozen=True)
class Restart:
    """Start the child again after ``delay`` seconds; ``attempt`` counts the crash loop."""

    delay: float
    attempt: int


@dataclasses.dataclass(frozen=True)
class Finish:
    """Do not restart: warden exits with ``exit_code``; ``message`` is the final line, if any."""

    exit_code: int
    gave_up: bool = False
    message: str | None = None


class RestartTracker:
    """Decides, at each end of the child, between :class:`Restart` and :class:`Finish`.

    Call :meth:`child_started` right after each successful spawn and :meth:`child_exited` with
    the reason of each end the child came to *on its own* (an end warden asked for by stopping
    is never restarted, so it is not reported here).
    """

    def __init__(
        self,
        policy: RestartPolicy,
        backoff: Backoff,
        *,
        min_uptime: float,
        max_restarts: int | None,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = uniform,
    ) -> None:
        self.policy = policy
        self.backoff = backoff
        self.min_uptime = min_uptime
        self.max_restarts = max_restarts
        self._clock = clock
        self._rng = rng
        self._started_at: float | None = None
        self._quick_ends = 0
        #: Every start so far, the first included.
        self.starts = 0

    def child_started(self) -> None:
        self._started_at = self._clock()
        self.starts += 1

    def child_exited(self, reason: ExitReason) -> Restart | Finish:
        if reason.kind is ExitKind.EXEC_FAILED:
            # The same argv against the same filesystem fails the same way; restarting only
            # hides the one-line error in a loop.
            return Finish(reason.exit_code)
        if self.policy is RestartPolicy.NO or (
            self.policy is RestartPolicy.ON_FAILURE and reason.success
        ):
            return Finish(reason.exit_code)
        started_at = self._started_at
        uptime = 0.0 if started_at is None else self._clock() - started_at
        if uptime >= self.min_uptime:
            self._quick_ends = 0
        # Never exit 0 after giving up: a crash loop of clean exits is still a failure.
        return self._quick_end(
            reason.exit_code or 1,
            lambda ends: (
                f"the program ended {_times(ends)} in a row, each within {self.min_uptime:g}s "
                f"of starting (last: {reason})"
            ),
        )

    def start_failed(self, error: str) -> Restart | Finish:
        """A start (or restart) could not run the program for want of a resource (no
        descriptor, no memory, no process slot): a quick end like any other, retried under
        ``on-failure`` and ``always`` with the same backoff and the same limit. Under ``no``,
        warden exits 1 (its own failure, not the program's)."""
        if self.policy is RestartPolicy.NO:
            return Finish(EXIT_FAILURE)
        return self._quick_end(
            EXIT_FAILURE,
            lambda ends: (
                f"{ends} failure{'' if ends == 1 else 's'} in a row (last: the program could not "
                f"be started: {error})"
            ),
        )

    def _quick_end(self, code: int, ends: Callable[[int], str]) -> Restart | Finish:
        """One more quick end in a row: the next restart and its backoff, or, past
        ``max_restarts``, giving up with ``code`` and a line saying why (``ends``: the quick
        ends in a row, in words)."""
        self._quick_ends += 1
        if self.max_restarts is not None and self._quick_ends > self.max_restarts:
            return Finish(
                code,
                gave_up=True,
                message=(
                    f"giving up after {self.max_restarts} restart"
                    f"{'' if self.max_restarts == 1 else 's'}: {ends(self._quick_ends)}; "
                    f"exit code {code}"
                ),
            )
        return Restart(self.backoff.delay(self._quick_ends, self._rng), self._quick_ends)


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"
