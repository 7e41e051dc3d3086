"""Starting one run of the program: spawn, readiness gate, watchdog, its messages, its end.

A run is started the same way for a start, a restart and an upgrade: with the held sockets at
fds 3.., a notify socket of its own, the reaper watching its pid and, with ``--watchdog``, a
watchdog counting from its first message. What the run *is* (the program, or an upgrade's
candidate) is not decided here but in :class:`~._runs.Runs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
from collections.abc import Callable, Sequence

from ..._exceptions import NotReady
from ...lifecycle import Clock, Fact
from .._events import (
    ChildExited,
    ChildNotReady,
    ChildReady,
    ChildStarted,
    ProgramExtendsTimeout,
    ProgramReloaded,
    ProgramReloading,
    ProgramStatus,
    WatchdogExpired,
)
from .._options import SupervisorOptions
from .._tally import Tally
from ..notify._server import NotifyMessage, NotifyServer
from ..process._footprint import OomScoreGuard
from ..process._handover import spawn_with_sockets
from ..process._ladder import StopLadder
from ..process._reaper import Reaper
from ..process._reason import ExitKind, ExitReason
from ..process._spawn import spawn_child
from ..sockets._held import HeldSockets
from ..sockets._steering import Steering
from ._memory import ProgramMemory
from ._readiness import GateInputs, ReadySpec, Seen, http_ok, wait_ready
from ._run import RunningChild
from ._runs import Runs
from ._watchdog import ChildWatchdog

#: What warden's own manager told warden, not the program: the program gets warden's values.
MANAGER_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class Launcher:
    """Spawns runs of the program and gates them.

    Args:
        options: the supervisor's options (command, gate, watchdog, stop signal...).
        sockets: the sockets every run gets at fds 3...
        reaper: the only code that waits for children; told about every run.
        runs: which run is the program (a message from the current run is relayed upward).
        ladder: stops a run that misses its gate.
        footprint: warden's own oom_score_adj, reset around each spawn.
        publish: puts a fact on the timeline.
        clock: the supervisor's clock (read and waited on).
        relaying: whether a program's RELOADING=1 may be relayed now (not during an upgrade,
            which reports its own).
        memory: the program's cgroup (joined before exec) and OOM-kill attribution.
    """

    def __init__(
        self,
        options: SupervisorOptions,
        *,
        sockets: Callable[[], HeldSockets],
        reaper: Reaper,
        runs: Runs,
        ladder: StopLadder,
        footprint: OomScoreGuard,
        publish: Callable[[Fact], object],
        clock: Clock,
        relaying: Callable[[], bool],
        memory: ProgramMemory,
        tally: Tally,
    ) -> None:
        self._options = options
        self._sockets = sockets
        self._reaper = reaper
        self._runs = runs
        self._ladder = ladder
        self._footprint = footprint
        self._publish = publish
        self._clock = clock
        self._relaying = relaying
        self._memory = memory
        self._tally = tally
        self._watchdog_fired: set[int] = set()

    # -- spawn ------------------------------------------------------------------------

    def spawn(self, sockets: HeldSockets | None = None) -> RunningChild:
        """Start a run of the program (raises SpawnError); the one place a child is started.

        ``sockets``: what it gets at fds 3.. (default: the program's; an upgrade's new release
        gets their siblings, see ``sockets/_steering.py``).
        """
        given = self._sockets() if sockets is None else sockets
        argv = self._options.command
        child: RunningChild | None = None

        def on_message(message: NotifyMessage) -> None:
            if child is not None:
                self._on_message(child, message)

        notify = NotifyServer(on_message, access=self._options.notify_access, tally=self._tally)
        pid_variables = ("LISTEN_PID", "WATCHDOG_PID") if self._options.watchdog else ()
        # Before the spawn: at a small limit the run can be OOM-killed before it returns.
        kills_before = self._memory.before_spawn()
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

    # -- the readiness gate -----------------------------------------------------------

    async def gate(
        self,
        child: RunningChild,
        *,
        route: Steering | None = None,
        stop_within: float | None = None,
    ) -> str | None:
        """Wait for ``child``'s readiness gate; a late one is stopped. Returns why it failed.

        ``route``: an upgrade's steering, through which an ``http`` gate on a held port asks
        this run alone (another release serves the same port). ``stop_within``: how long a run
        that missed its gate gets between its stop signal and SIGKILL (``--stop-timeout`` by
        default; an upgrade's new release gets ``--drain-timeout``).
        """
        ready = self._options.ready
        inputs = GateInputs(
            notified=child.notified,
            ended=child.ended,
            held_tcp=self.held_tcp_address(),
            route=route if ready.kind == "http" and self.holds_port(ready.port) else None,
            run_check=self.run_check,
            clock=self._clock,
        )
        try:
            await wait_ready(self._options.ready, inputs, self._options.ready_timeout)
        except NotReady as exc:
            await self._not_ready(child, exc, stop_within)
            return f"not ready: {child.reason}"
        child.ready_at = self._clock.now()
        self._publish(
            ChildReady(
                pid=child.pid, gate=str(self._options.ready), took=child.ready_at - child.started_at
            )
        )
        if child.watchdog is not None:
            child.watchdog.start()
        return None

    async def _not_ready(
        self, child: RunningChild, exc: NotReady, stop_within: float | None
    ) -> None:
        running = child.running
        # Not ready in time: stop it as systemd does after a start timeout, the stop signal to
        # its group first. It may be accepting on the shared sockets already (during an
        # upgrade, next to the old release): SIGKILL would reset what it has accepted. Its
        # group goes even when it ended by itself: no worker of a failed run stays behind.
        await self.stop_run(child, stop_within)
        if running:
            assert child.reason is not None
            child.reason = child.reason.refined(ExitKind.NOT_READY, str(exc))
            self._runs.record_end(child)
        self._publish(ChildNotReady(pid=child.pid, reason=child.reason))

    async def stop_run(self, child: RunningChild, within: float | None = None) -> None:
        """Stop one run and what is left of its group: the stop signal, then SIGKILL after
        ``within`` seconds (``--stop-timeout`` by default); returns once it has ended."""
        deadline = self._clock.now() + (self._options.stop_timeout if within is None else within)
        child.send(self._options.stop_signal, group=True)
        await self._ladder.stop_group(child, deadline, group_signalled=True)
        await child.ended.wait()

    def probes_held_socket(self) -> bool:
        """Whether the ``--ready`` gate connects to a socket every release shares."""
        ready = self._options.ready
        if ready.kind == "tcp" and not ready.port:
            return True
        return ready.kind in ("http", "tcp") and self.holds_port(ready.port)

    def holds_port(self, port: int) -> bool:
        """Whether ``port`` is one of the TCP sockets warden holds for the program."""
        inet = (socket.AF_INET, socket.AF_INET6)
        held = self._sockets()
        return any(h.sock.getsockname()[1] == port for h in held if h.sock.family in inet)

    def health_checks(self) -> tuple[ReadySpec, ...]:
        """What the confirmation window asks of a new release: the ``http`` or ``exec:`` gate,
        and ``--upgrade-confirm-url``."""
        ready = self._options.ready
        checks = (ready,) if ready.kind in ("http", "exec") else ()
        url = self._options.upgrade_confirm_url
        return checks if url is None else (*checks, url)

    async def healthy(self, child: RunningChild, route: Steering | None = None) -> str | None:
        """One round of health checks of ``child`` (the confirmation window's): None if each
        passed, else why not. ``http`` checks of a held port go through ``route``, so ``child``
        alone answers them; an ``exec:`` gate's command is run again."""
        for check in self.health_checks():
            if check.kind == "http":
                seen = Seen()
                via = route if self.holds_port(check.port) else None
                if not await http_ok(check, route=via, seen=seen, clock=self._clock):
                    return f"its health check {check} did not answer 2xx/3xx ({seen})"
            else:
                code = await self.run_check(check.command)
                if code != 0:
                    return f"its health check {check} exited with {code}"
        return None

    def held_tcp_address(self) -> tuple[str, int] | None:
        """Where a bare ``--ready tcp`` connects: the first TCP socket warden holds."""
        for held in self._sockets():
            if held.sock.family in (socket.AF_INET, socket.AF_INET6):
                host, port = held.sock.getsockname()[:2]
                wildcard = {"0.0.0.0": "127.0.0.1", "::": "::1"}
                return wildcard.get(host, host), port
        return None

    async def run_check(self, command: Sequence[str]) -> int:
        """Run an ``exec:`` check as warden's child; the reaper collects it."""
        # No await between the spawn and watch(): the SIGCHLD callback that reaps runs on
        # this same loop, so it cannot take the status before the pid is watched.
        # Not warden's manager's variables: a check that says READY=1 must not speak for warden.
        env = {k: v for k, v in os.environ.items() if k not in MANAGER_VARIABLES}
        pid = spawn_child(command, env)
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def ended(status: int) -> None:
            if not done.done():
                done.set_result(os.waitstatus_to_exitcode(status))

        self._reaper.watch(pid, ended)
        try:
            return await done
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            raise

    # -- the run's end ----------------------------------------------------------------

    def _ended(self, child: RunningChild, status: int) -> None:
        reason = self._memory.attribute(child, ExitReason.from_wait_status(status))
        if child.pid in self._watchdog_fired:
            self._watchdog_fired.discard(child.pid)
            reason = reason.refined(ExitKind.WATCHDOG_TIMEOUT)
        now = self._clock.now()
        child.mark_ended(reason, now)
        self._runs.record_end(child)
        self._publish(
            ChildExited(
                pid=child.pid,
                reason=reason,
                uptime=now - child.started_at,
                current=self._runs.is_current(child),
                memory=self._memory.at_exit(child),
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
        current = self._runs.is_current(child)
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
