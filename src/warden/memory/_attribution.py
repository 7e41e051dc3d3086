"""Supervisor-side OOM attribution: was *this run* of a child killed by the OOM killer?

The kernel's OOM kill is a plain SIGKILL; what tells it from ``kill -9`` is the memory
cgroup's ``oom_kill`` counter, which the kernel raises before it sends the signal
(``oom_kill_process`` → ``memcg_memory_event(MEMCG_OOM_KILL)``), so it is already up when
the child is reaped. The counter is cumulative over the cgroup's life, so a verdict compares
it with its value *at this run's spawn* (Kubernetes misreads a SIGTERM exit after an earlier
OOM kill in the same cgroup as ``OOMKilled`` for lack of this, kubernetes PR #140718):

    oom-killed  ⇔  died by SIGKILL  ∧  oom_kill rose during the run

Per event, not per cgroup: a run may outlive an OOM kill in its cgroup (a worker of its own
was the victim). :meth:`RunAttribution.observe`, called while the run is thought alive (on
each sentinel sample), takes such a kill off the run's account once the run is seen alive,
not dying, *after* the counter showed it; the kernel queues the victim's SIGKILL right after
it raises the counter, so a later look at the victim finds it dying or dead. Only an OOM kill
the run was not seen to survive counts. Left: a ``kill -9`` from elsewhere within one
observation of another process's OOM kill is still named ``oom-killed`` (give each child its
own cgroup, :class:`ChildCgroup`, to make the counter the child's alone).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._cgroup import MemoryCgroup
from ._events import OomKillAttributed
from ._readers import MemoryReader, Sample, reader_for


@dataclass
class RunAttribution:
    """The ``oom_kill`` counter of a run's cgroup, taken at spawn; :meth:`decide` at exit.

    Descriptors: given a :class:`MemoryCgroup`, the attribution opens a reader of its own
    (the counter's file and the limits up the hierarchy) and closes it once it has decided,
    or at :meth:`close` for a run never decided. Given a reader, it borrows it: a supervisor
    that attributes run after run shares one reader, which it closes itself.

    Example::

        attribution = RunAttribution.at_spawn(pid, child_cgroup.cgroup)
        ...                                  # the reaper reaps pid with wait status ``st``
        fact = attribution.decide_wait_status(st, timeline=sentinel.timeline())
        fact.oom_killed, fact.outcome        # True, "oom-killed"
    """

    pid: int
    reader: MemoryReader
    kills_at_spawn: int | None
    #: OOM kills in the cgroup that the run was seen to outlive (another process's).
    kills_survived: int = 0
    #: The counter at the last :meth:`observe`, to be taken off once the run is seen alive.
    _pending: int | None = field(default=None, repr=False)
    proc: Path = field(default=Path("/proc"), repr=False)
    #: The reader was opened for this attribution (closed by it), not lent to it.
    owns_reader: bool = field(default=False, repr=False)

    @classmethod
    def at_spawn(
        cls,
        pid: int,
        cgroup: MemoryCgroup | MemoryReader,
        *,
        kills_before: int | None = None,
    ) -> RunAttribution:
        """Snapshot the counter for ``pid``'s run (call right after the spawn).

        ``kills_before``: the counter read *before* the spawn, used instead of reading it now.
        A child that joins its cgroup before its exec can be OOM-killed before the spawn
        returns (at 64 KiB, the kernel kills it inside ``execve``, measured 5 of 5 times): a
        counter read after the spawn already holds that kill, and the run would be
        ``not an OOM kill``.
        """
        if not isinstance(cgroup, MemoryCgroup):
            reader: MemoryReader = cgroup
            owns = False
        else:
            reader, owns = reader_for(cgroup), True
        try:
            baseline = reader.oom_kills() if kills_before is None else kills_before
            return cls(pid, reader, baseline, owns_reader=owns)
        except BaseException:
            if owns:
                reader.close()
            raise

    def close(self) -> None:
        """Close the reader this attribution opened (a borrowed one stays open)."""
        if self.owns_reader:
            self.reader.close()

    def observe(self) -> bool:
        """Call while the run is thought alive: kills it was seen to outlive leave its account.

        Two steps, one call apart: the counter read at the previous call is taken off only if
        the run is alive and not dying *now* (the kernel raises the counter just before it
        queues the victim's SIGKILL). Returns whether a rise awaits that confirmation (call
        again soon).
        """
        if self.kills_at_spawn is None:
            return False
        baseline = self.kills_at_spawn + self.kills_survived
        if (
            self._pending is not None
            and self._pending > baseline
            and alive_not_dying(self.pid, self.proc)
        ):
            self.kills_survived = self._pending - self.kills_at_spawn
            baseline = self._pending
        now = self.reader.oom_kills()
        self._pending = now if now is not None and now > baseline else None
        return self._pending is not None

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
        self.close()  # a run ends once: its verdict is the last read
        rose = None if now is None or self.kills_at_spawn is None else now - self.kills_at_spawn
        killed = signum == signal.SIGKILL and rose is not None and rose > self.kills_survived
        return OomKillAttributed(
            pid=self.pid,
            oom_killed=killed,
            signum=signum,
            exit_code=exit_code,
            kills_during_run=rose,
            kills_survived=self.kills_survived,
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


#: ``PF_EXITING`` in the flags of ``/proc/PID/stat`` (include/linux/sched.h).
_PF_EXITING = 0x4


def alive_not_dying(pid: int, proc: Path = Path("/proc")) -> bool:
    """Whether ``pid`` runs and is not on its way out: not a zombie, not exiting, no SIGKILL
    pending (what the OOM killer leaves on its victim until it dies)."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
        status = (proc / str(pid) / "status").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    state, flags = fields[0], int(fields[6])
    if state in ("Z", "X", "x") or flags & _PF_EXITING:
        return False
    kill_bit = 1 << (signal.SIGKILL - 1)
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key in ("SigPnd", "ShdPnd") and int(value.strip(), 16) & kill_bit:
            return False
    return True


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
