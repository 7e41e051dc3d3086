"""An upgrade's confirmation window: the new release serves beside the old one and must stay up.

For ``--upgrade-confirm``, after its gate passed, the new release runs beside the old one,
which was never told to stop. It fails the window when its main process ends, when any
process of it ends (a master that respawns crashing workers stays up, and between crashes
its probes pass: ``process/_members.py`` says how their ends are seen), or when two health
checks in the window fail (the ``http`` or ``exec:`` gate asked again, and
``--upgrade-confirm-url``), in a row or not. It passes when the window is over and its last
health check passed, or at once when the old release ends meanwhile (the new one is all
there is).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ...lifecycle import Clock
from ..process._members import Descendants, exited
from ._child import RunningChild
from ._program import first_of

#: Failed health checks in one window that roll back (one slow probe under load is not
#: enough; two, in a row or not, are a release that does not answer as it should).
HEALTH_FAILURES = 2

#: How long the window waits for the reaper to report a main process seen to have exited.
_REAP_GRACE = 1.0


def health_interval(window: float) -> float:
    """Health checks in the window: about ten, 0.1 to 1 s apart; a timer only while one runs."""
    return min(1.0, max(0.1, window / 10))


async def watch_window(
    new: RunningChild,
    old: RunningChild,
    *,
    window: float,
    clock: Clock,
    healthy: Callable[[], Awaitable[str | None]],
    hurry: asyncio.Event,
) -> str | None:
    """Watch ``new`` beside ``old`` for ``window`` seconds: why it failed, or None.

    ``healthy()`` runs one round of health checks of ``new``: None if each passed, else why.
    ``hurry`` set (memory at critical) ends the window at once, passed, unless its last
    health check failed.
    """
    ready_at = new.ready_at if new.ready_at is not None else clock.now()
    members = Descendants(new.pid)
    try:
        return await _watch(
            new,
            old,
            members,
            window=window,
            ready_at=ready_at,
            clock=clock,
            healthy=healthy,
            hurry=hurry,
        )
    finally:
        members.close()


async def _watch(
    new: RunningChild,
    old: RunningChild,
    members: Descendants,
    *,
    window: float,
    ready_at: float,
    clock: Clock,
    healthy: Callable[[], Awaitable[str | None]],
    hurry: asyncio.Event,
) -> str | None:
    deadline = clock.now() + window
    failures = 0  # in the whole window, not only in a row: a release with one worker of
    # two hung answers every other probe, and must not pass on the ones it answers
    last_failed = False
    members.scan()
    # The window ends on a passed health check: one that failed near its end (a release
    # hanging: each unanswered probe takes the probe's whole timeout) is checked again at
    # once, and a second failure rolls back, however late in the window the first came.
    while clock.now() < deadline or last_failed:
        now = clock.now()
        tick = max(now, min(deadline, now + health_interval(window)))
        await clock.wait_until(first_of(new.ended, old.ended, members.changed, hurry), tick)
        if members.ended and new.running and exited(new.pid):
            # Its main process ended too (its workers' ends may be seen first): its exit
            # reason says more, and the reaper has it at its next SIGCHLD.
            await clock.wait_until(new.ended.wait(), clock.now() + _REAP_GRACE)
        after = clock.now() - ready_at
        if not new.running:
            after = (new.ended_at or clock.now()) - ready_at
            return f"new release pid {new.pid} {new.reason} {after:.3g}s after it was ready"
        if not old.running:
            return None  # the old release is gone: the new one is promoted at once
        if members.ended:
            ended = ", ".join(map(str, members.ended))
            which = "process" if len(members.ended) == 1 else "processes"
            return (
                f"new release pid {new.pid}: its {which} {ended} ended {after:.3g}s after "
                "it was ready"
            )
        members.scan()  # workers started since (a respawned one) are watched too
        if hurry.is_set() and not last_failed:
            return None  # memory at critical: the window ends here, passed so far
        if clock.now() < deadline or last_failed:
            problem = await healthy()
            last_failed = problem is not None
            failures += last_failed
            if failures >= HEALTH_FAILURES:
                return f"new release pid {new.pid}: {problem}"
    return None
