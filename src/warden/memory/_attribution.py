"""Supervisor-side OOM attribution: was *this run* of a child killed by the OOM killer?

The kernel's OOM kill is a plain SIGKILL; what tells it from ``kill -9`` is the memory
cgroup's ``oom_kill`` counter, which the kernel raises before it sends the signal
(``oom_kill_process`` → ``memcg_memory_event(MEMCG_OOM_KILL)``), so it is already up when
the child is reaped. The counter is cumulative over the cgroup's life, so a verdict compares
it with its value *at this run's spawn* (Kubernetes misreads a SIGTERM exit after an earlier
OOM kill in the same cgroup as ``OOMKilled`` for lack of this, kubernetes PR #140718):

    oom-killed  ⇔  died by SIGKILL  ∧  oom_kill rose during the run

A run whose cgroup it shares with other processes can still be misnamed when one of *those*
is OOM-killed while this one gets a SIGKILL from elsewhere; give each child its own cgroup
(:class:`ChildCgroup`) to make the counter the child's own.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass

from ._cgroup import MemoryCgroup
from ._events import OomKillAttributed
from ._readers import MemoryReader, Sample, reader_for


@dataclass
class RunAttribution:
    """The ``oom_kill`` counter of a run's cgroup, taken at spawn; :meth:`decide` at exit.

    Example::

        attribution = RunAttribution.at_spawn(pid, child_cgroup.cgroup)
        ...                                  # the reaper reaps pid with wait status ``st``
        fact = attribution.decide_wait_status(st, timeline=sentinel.timeline())
        fact.oom_killed, fact.outcome        # True, "oom-killed"
    """

    pid: int
    reader: MemoryReader
    kills_at_spawn: int | None

    @classmethod
    def at_spawn(cls, pid: int, cgroup: MemoryCgroup | MemoryReader) -> RunAttribution:
        """Snapshot the counter for ``pid``'s run (call right after the spawn)."""
        reader = reader_for(cgroup) if isinstance(cgroup, MemoryCgroup) else cgroup
        return cls(pid, reader, reader.oom_kills())

    def decide(
        self,
        *,
        signum: int | None,
        exit_code: int | None,
        timeline: Sequence[Sample] = (),
        died_at: float | None = None,
    ) -> OomKillAttributed:
        """The verdict for a run that ended by ``signum`` (or with ``exit_code``)."""
        now = self.reader.oom_kills()
        rose = None if now is None or self.kills_at_spawn is None else now - self.kills_at_spawn
        killed = signum == signal.SIGKILL and rose is not None and rose > 0
        return OomKillAttributed(
            pid=self.pid,
            oom_killed=killed,
            signum=signum,
            exit_code=exit_code,
            kills_during_run=rose,
            timeline=describe_timeline(timeline, died_at),
        )

    def decide_wait_status(
        self, status: int, *, timeline: Sequence[Sample] = (), died_at: float | None = None
    ) -> OomKillAttributed:
        """:meth:`decide` from a ``waitpid`` status."""
        if os.WIFSIGNALED(status):
            return self.decide(
                signum=os.WTERMSIG(status), exit_code=None, timeline=timeline, died_at=died_at
            )
        return self.decide(
            signum=None, exit_code=os.WEXITSTATUS(status), timeline=timeline, died_at=died_at
        )

    def decide_returncode(
        self, returncode: int, *, timeline: Sequence[Sample] = (), died_at: float | None = None
    ) -> OomKillAttributed:
        """:meth:`decide` from a ``subprocess`` return code (``-N`` for signal N)."""
        if returncode < 0:
            return self.decide(
                signum=-returncode, exit_code=None, timeline=timeline, died_at=died_at
            )
        return self.decide(signum=None, exit_code=returncode, timeline=timeline, died_at=died_at)


def describe_timeline(samples: Sequence[Sample], died_at: float | None = None) -> tuple[str, ...]:
    """One line per sample, timed from the death (or the last sample): the last seconds."""
    if not samples:
        return ()
    end = samples[-1].at if died_at is None else died_at
    # At most ~20 lines: a fast ramp has hundreds of samples in its last seconds.
    step = max(1, len(samples) // 20)
    chosen = list(samples[::step])
    if chosen[-1] is not samples[-1]:
        chosen.append(samples[-1])
    return tuple(
        f"t{s.at - end:+.2f}s working set {s.working_set / 2**20:.1f} MiB of "
        f"{s.limit / 2**20:.0f} MiB ({s.ratio:.0%}), usage {s.usage / 2**20:.1f} MiB"
        for s in chosen
    )
