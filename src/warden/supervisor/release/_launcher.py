"""Starting one run of the program, and following it: its messages, its watchdog, its end.

A run is started the same way for a start, a restart and an upgrade: with the program's
sockets at fds 3.. (an upgrade's new release: their siblings), a notify socket of its own, in
the program's memory cgroup, the reaper watching its pid and, with ``--watchdog``, a watchdog
counting from its first message. What the run *is* (the program, or an upgrade's candidate)
is not decided here but in :class:`~._program.Program`; whether it is ready, in
:class:`~._gate.Gate`.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable

from ...lifecycle import Clock, Fact
from .._events import (
    ChildExited,
    ChildStarted,
    OomScoreAdjusted,
    ProgramExtendsTimeout,
    ProgramReloaded,
    ProgramReloading,
    ProgramStatus,
    SubreaperFailed,
    WatchdogExpired,
)
from .._options import SupervisorOptions
from .._tally import Tally
from ..notify._server import NotifyMessage, NotifyServer
from ..process._footprint import OomScoreGuard, release_free_memory
from ..process._handover import spawn_with_sockets
from ..process._reaper import Reaper, become_subreaper
from ..process._reason import ExitKind, ExitReason
from ..sockets._held import HeldSockets
from ._child import RunningChild
from ._program import Program
from ._program_memory import ProgramMemory
from ._watchdog import ChildWatchdog

#: What warden's own manager told warden, not the program: the program gets warden's values.
MANAGER_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class Launcher:
    """Spawns runs of the program and follows each to its end.

    Args:
        options: the supervisor's options (command, watchdog, notify access...).
        program: which run is the program (only the current run's messages go upward) and
            the sockets a run gets.
        reaper: the only code that waits for children; told about every run.
        memory: the program's cgroup (joined before exec), told of each run and its end.
        tally: counts the notify datagrams dropped.
        publish: puts a fact on the timeline.
        clock: the supervisor's clock (read and waited on).
        relaying: whether a program's RELOADING=1 may be relayed now (not during an upgrade,
            which reports its own).
    """

    def __init__(
        self,
        options: SupervisorOptions,
        *,
        program: Program,
        reaper: Reaper,
        memory: ProgramMemory,
        tally: Tally,
        publish: Callable[[Fact], object],
        clock: Clock,
        relaying: Callable[[], bool],
    ) -> None:
        self._options = options
        self._program = program
        self._reaper = reaper
        self._memory = memory
        self._tally = tally
        self._publish = publish
        self._clock = clock
        self._relaying = relaying
        #: warden's own oom_score_adj: lowered once, the original given to each run.
        self._footprint = OomScoreGuard()
        self._watchdog_fired: set[int] = set()

    def prepare(self) -> None:
        """Make warden a fit parent, once, before the first spawn: the subreaper of what the
        program leaves behind, the last process the OOM killer picks, and small."""
        try:
            become_subreaper()
        except OSError as exc:
            self._publish(SubreaperFailed(error=str(exc)))
        self._footprint.protect()
        self._publish(
            OomScoreAdjusted(original=self._footprint.original, current=self._footprint.current)
        )
        # Before the first spawn, not after it: a stop signal that comes right after the
        # program started must not wait for a full garbage collection.
        release_free_memory()

    # -- spawn ------------------------------------------------------------------------

    def spawn(self, sockets: HeldSockets | None = None) -> RunningChild:
        """Start a run of the program (raises SpawnError); the one place a child is started.

        ``sockets``: what it gets at fds 3.. (default: the program's; an upgrade's new release
        gets their siblings, see ``sockets/_steering.py``).
        """
        given = self._program.sockets if sockets is None else sockets
        argv = self._options.command
        child: RunningChild | None = None

        def on_message(message: NotifyMessage) -> None:
            if child is not None:
                self._on_message(child, message)

        notify = NotifyServer(on_message, access=self._options.notify_access, tally=self._tally)
        pid_variables = ("LISTEN_PID", "WATCHDOG_PID") if self._options.watchdog else ()
        # Before the spawn: at a small limit the run can be OOM-killed before it returns.
        kills_before = self._memory.spawning()
        try:
            with self._footprint.child_defaults():
                pid = spawn_with_sockets(
                    argv,
                    sockets=given.named_fds,
                    env=self._environment(notify.path),
                    pid_variables=pid_variables or ("LISTEN_PID",),
                    cgroup_procs=self._memory.cgroup_procs,
                    # warden killed with SIGKILL (no ladder can run) takes the program along.
                    parent_death_signal=signal.SIGKILL,
                )
        except BaseException:
            notify.close()
            raise
        # Same loop callback as the spawn: nothing has been read from the socket yet.
        notify.set_main_pid(pid)
        notify.start()
        child = RunningChild(pid, argv, self._clock.now(), notify=notify, sockets=given)
        run = child
        self._memory.spawned(run, kills_before)
        self._reaper.watch(pid, lambda status: self._ended(run, status))
        # Made now so WATCHDOG=trigger counts from the first message; the timer itself starts
        # once the program is ready (systemd's watchdog, too, runs from start-up completion).
        if self._options.watchdog is not None:
            child.watchdog = ChildWatchdog(
                self._options.watchdog,
                lambda triggered: self._watchdog_expired(run, triggered),
                clock=self._clock,
            )
        self._publish(ChildStarted(pid=pid, argv=tuple(argv)))
        return child

    def _environment(self, notify_path: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in MANAGER_VARIABLES}
        env["NOTIFY_SOCKET"] = notify_path
        if self._options.watchdog is not None:
            env["WATCHDOG_USEC"] = str(int(self._options.watchdog * 1_000_000))
        return env

    # -- the run's end ----------------------------------------------------------------

    def _ended(self, child: RunningChild, status: int) -> None:
        reason, memory = self._memory.ended(child, ExitReason.from_wait_status(status))
        if child.pid in self._watchdog_fired:
            self._watchdog_fired.discard(child.pid)
            reason = reason.refined(ExitKind.WATCHDOG_TIMEOUT)
        now = self._clock.now()
        child.mark_ended(reason, now)
        current = self._program.record_end(child)
        self._publish(
            ChildExited(
                pid=child.pid,
                reason=reason,
                uptime=now - child.started_at,
                current=current,
                memory=memory,
                on_stop_signal=reason.kind is ExitKind.KILLED
                and reason.signum == child.stop_signal,
            )
        )

    def _watchdog_expired(self, child: RunningChild, triggered: bool) -> None:
        interval = self._options.watchdog
        assert interval is not None
        kill_after = self._options.stop_timeout
        self._watchdog_fired.add(child.pid)
        self._publish(
            WatchdogExpired(
                pid=child.pid, triggered=triggered, interval=interval, kill_after=kill_after
            )
        )
        child.send(signal.SIGABRT, group=False)

        def kill_if_alive() -> None:
            if child.running:
                child.send(signal.SIGKILL, group=True)

        self._clock.call_later(kill_after, kill_if_alive)

    # -- what the run tells warden ----------------------------------------------------

    def _on_message(self, child: RunningChild, message: NotifyMessage) -> None:
        """An sd_notify message from one run; the current run's is reported upward."""
        fields = message.fields
        for fd in message.fds:  # FDSTORE: not kept yet (no fd store across restarts)
            os.close(fd)
        current = self._program.is_current(child)
        if "STATUS" in fields:
            # Shown by `warden status`, warden's log and a systemd above: no terminal escapes.
            child.status = _printable(fields["STATUS"])
            if current:
                self._publish(ProgramStatus(pid=child.pid, text=child.status))
        watchdog = fields.get("WATCHDOG")
        if watchdog is not None and child.watchdog is not None:
            if watchdog == "trigger":
                child.watchdog.trigger()
            elif watchdog == "1":
                child.watchdog.ping()
        if fields.get("RELOADING") == "1" and current and self._relaying():
            child.reloading = True
            self._publish(ProgramReloading(pid=child.pid))
        if fields.get("READY") == "1":
            child.notified.set()
            if child.reloading:
                child.reloading = False
                if current:
                    self._publish(ProgramReloaded(pid=child.pid))
        extend = fields.get("EXTEND_TIMEOUT_USEC", "")
        if extend.isdigit() and current:
            self._publish(ProgramExtendsTimeout(pid=child.pid, usec=int(extend)))


#: C0 controls (tab included: STATUS is one line), DEL and C1 controls.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    """``text`` with every control character shown as ``\\xNN`` (ESC is ``\\x1b``)."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
