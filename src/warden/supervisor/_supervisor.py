"""``warden run``: the program as a component of a :class:`~warden.lifecycle.Lifecycle`.

The supervisor is itself a service built on the library; this module is its wiring:

* component ``sockets``: binds ``--listen`` (or takes warden's own LISTEN_FDS) before anything
  is spawned, and closes them after the last run is gone;
* component ``control`` (``--control``): the control socket; component ``pid-file``;
* component ``reload-on-change`` (``--reload-on-change``, after ``child``): a file's new
  content does what SIGHUP does (``_reload_on_change``);
* component ``child`` (needs the others): ``start`` spawns the program and returns once its
  readiness gate passes (so the lifecycle, and READY=1 to a systemd above, is ready only
  when the program is); ``stop`` is the stop ladder;
* ``main`` waits for the program to end on its own and applies the restart policy;
* one table of signal handlers (:data:`Supervisor.SIGNALS`), the lifecycle's own being
  SIGTERM/SIGINT (graceful stop) and a second one (the ladder skips to SIGKILL).

Where the rest lives: ``release/`` (one run: ``_launcher`` spawns and gates it, ``_runs`` says
which run is the program, ``_upgrade`` orders an upgrade's steps and ``_steps`` does them,
``_restart``, ``_watchdog``, ``_readiness``), ``process/`` (spawn and exec shim, reaper, stop
ladder, exit reasons, warden's own footprint), ``sockets/``, ``notify/``, ``control/``, and the
facts it publishes in ``_events``. Nothing here speaks to systemd: the systemd observer
reports the timeline upward.

Nothing here wakes up on a timer while the program runs: the lifecycle's loop waits in
``epoll`` without a timeout and its guard thread in ``poll`` without one; timers exist only
while a restart backs off or the ladder waits for its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
from collections.abc import Callable, Iterator, Mapping

from .._exceptions import ConfigurationError, ControlError, NotReady, UpgradeRefused
from .._exitcodes import EXIT_DEADLINE, EXIT_FAILURE, EXIT_NOT_READY
from ..lifecycle import Clock, ComponentStarted, Fact, Lifecycle, Outcome, State
from ..memory._errors import MemoryCgroupError
from ..observe import notify_systemd
from ..systemd import Notifier
from ._closing import ClosingReason
from ._events import (
    ControlListening,
    ControlUnavailable,
    GaveUp,
    OomScoreAdjusted,
    RestartScheduled,
    SocketHeld,
    SpawnFailed,
    StartDeferred,
    StopEscalated,
    SubreaperFailed,
    SupervisorStateChanged,
    TerminationLogFailed,
    UpgradeRefusedFact,
)
from ._options import KILL_MARGIN, SupervisorOptions
from ._pidfile import PidFile
from ._reload_on_change import ReloadOnChange
from ._status import Status, snapshot
from ._tally import Tally
from ._termination_log import TerminationLogError, write_termination_message
from .control._server import ControlServer
from .process._footprint import OomScoreGuard, release_free_memory
from .process._ladder import StopLadder
from .process._reaper import Reaper, become_subreaper
from .process._reason import ExitKind, ExitReason
from .process._signals import FORWARDED
from .process._spawn import SpawnError, Terminal, is_shortage
from .release._launcher import Launcher
from .release._memory import ProgramMemory
from .release._restart import Finish, RestartTracker, uniform
from .release._run import RunningChild
from .release._runs import Runs, first_of
from .release._steps import ReleaseSwap
from .release._upgrade import Upgrader
from .sockets._held import HeldSockets, ListenError

_CONTROL_COMMANDS = ("status", "upgrade", "reload", "stop")


class Supervisor:
    """Runs one program under PID 1 duties, the stop ladder and a restart policy.

    Example::

        options = SupervisorOptions(command=("python", "-m", "http.server"), group=True)
        supervisor = Supervisor(options)
        sys.exit(supervisor.run())

    After :meth:`run`, :attr:`final_message` holds the last word for the user when there is
    one (the give-up line, an exec failure) and :attr:`reason` the program's last exit reason.
    """

    #: One handler per signal the supervisor handles itself (SIGTERM and SIGINT are the
    #: lifecycle's graceful stop). Every other signal in ``FORWARDED`` goes to the program.
    SIGNALS: Mapping[int, str] = {
        signal.SIGCHLD: "_handle_chld",
        signal.SIGHUP: "_handle_hup",
    }

    def __init__(
        self,
        options: SupervisorOptions,
        *,
        clock: Clock | None = None,
        rng: Callable[[], float] = uniform,
    ) -> None:
        self.options = options
        self._clock = clock = clock or Clock()
        self.lifecycle = _SupervisorLifecycle(
            shutdown_timeout=options.shutdown_timeout,
            on_second_signal=self._second_stop_signal,
            clock=clock,
        )
        self.started_at = clock.now()
        #: The code ``warden run`` exits with, once decided.
        self.exit_code: int | None = None
        self.final_message: str | None = None
        self.runs = Runs()
        #: Every counter, in one place: status and /metrics read it.
        self.tally = Tally()
        self._reaper = Reaper(self.tally)
        self._sockets = HeldSockets()
        self._footprint = OomScoreGuard()
        self._terminal = Terminal()
        self._restarts = RestartTracker(
            options.restart,
            options.backoff,
            min_uptime=options.min_uptime,
            max_restarts=options.max_restarts,
            clock=clock.now,
            rng=rng,
        )
        self._ladder = StopLadder(
            self._reaper,
            stop_signal=options.stop_signal,
            timeout=options.stop_timeout,
            group=options.group,
            publish=self.publish,
            spared=lambda: self.runs.signalled,
            clock=clock,
        )
        self.memory = ProgramMemory(
            options,
            current=lambda: self.runs.current,
            recycle=self._recycle,
            publish=self.publish,
            clock=clock,
        )
        # Memory at "high": readiness false (shed load); a run's readiness: a fresh copy's size.
        self.lifecycle.ready_when(self.memory.accepting, what="memory high")
        self.lifecycle.timeline.subscribe(self.memory.observe)
        self._launcher = Launcher(
            options,
            sockets=lambda: self._sockets,
            reaper=self._reaper,
            runs=self.runs,
            ladder=self._ladder,
            footprint=self._footprint,
            publish=self.publish,
            clock=clock,
            relaying=self._relaying,
            memory=self.memory,
            tally=self.tally,
        )
        self._swap = ReleaseSwap(
            options,
            runs=self.runs,
            launcher=self._launcher,
            ladder=self._ladder,
            restarts=self._restarts,
            terminal=self._terminal,
            sockets=lambda: self._sockets,
            adopt=self._adopt_sockets,
            publish=self.publish,
            clock=clock,
            stopping=lambda: self.lifecycle.stop_reason is not None,
        )
        self.upgrader = Upgrader(self._swap, clock=clock.now, tally=self.tally)
        self._started = False  # the child component's start ran (the ladder has work)
        self._control: ControlServer | None = None
        self._pid_file = None if options.pid_file is None else PidFile(options.pid_file)
        #: Why warden exits, composed from the timeline; said once at the end.
        self.closing = ClosingReason(stop_timeout=options.stop_timeout)
        self.lifecycle.timeline.subscribe(self.closing.observe)
        self._reload_on_change = None
        if options.reload_on_change:  # the same action as a SIGHUP to warden, one code path
            self._reload_on_change = ReloadOnChange(
                options.reload_on_change,
                reload=lambda: self._handle_hup(signal.SIGHUP),
                action=options.hup_action,
                publish=self.publish,
            )
        self._add_components()
        self._install_signal_handlers()
        # A forced exit (deadline, second signal) leaves nothing running: the guard thread
        # calls this before os._exit, whatever the loop is doing.
        self.lifecycle.on_forced_exit(self._kill_everything)
        self.lifecycle.on_forced_exit(self._forced_exit_reason)
        upward = Notifier.from_environment()  # a systemd above warden, if any
        if upward is not None:
            notify_systemd(self.lifecycle, upward)

    def _add_components(self) -> None:
        lc = self.lifecycle
        needs = ["sockets"]
        lc.add("sockets", start=self._open_sockets, stop=self._close_sockets)
        lc.add("memory", start=self._open_memory, stop=self.memory.stop)
        needs.append("memory")
        if self.options.control is not None:
            lc.add("control", start=self._open_control, stop=self._close_control)
            needs.append("control")
        if self._pid_file is not None:
            lc.add("pid-file", start=self._write_pid_file, stop=self._remove_pid_file)
            needs.append("pid-file")
        lc.add("child", start=self._start, stop=self._stop, depends_on=needs)
        if self._reload_on_change is not None:  # armed once the program is ready
            lc.add(
                "reload-on-change",
                start=self._watch_files,
                stop=self._reload_on_change.stop,
                depends_on=["child"],
            )

    def _install_signal_handlers(self) -> None:
        for signum in {*FORWARDED, *self.SIGNALS}:
            handler = getattr(self, self.SIGNALS.get(signum, "_handle_forward"))
            self.lifecycle.on_signal(signum, handler)

    def run(self) -> int:
        """Run until the program is stopped or ends for good; return warden's exit code."""
        if self.options.health is not None:
            from ..observe._server import serve_health

            try:  # binds now: a busy or bad address is said before the program starts
                health = serve_health(
                    self.lifecycle, self.options.health, details=self._health_details
                )
            except ConfigurationError as exc:
                self.final_message = str(exc)
                self.exit_code = EXIT_FAILURE
                self._say_why()
                return self.exit_code
            metrics = health.health.metrics
            if metrics is not None:
                tally = self.tally
                metrics.read("notify_drops", lambda: dict(tally.notify_drops))
                metrics.read("control_refusals", lambda: tally.control_refusals)
                metrics.read("orphans_reaped", lambda: tally.orphans_reaped)
                metrics.read("spawn_failures", lambda: dict(tally.spawn_failures))
        with _ignoring_terminal_stops():
            code = self.lifecycle.run(self._main)
        if self.final_message is None:
            self.final_message = self._start_failure()
        if self.exit_code is None:
            # No decision of ours (the program never started, or a failure of the lifecycle):
            # the lifecycle's own code stands.
            self.exit_code = code
        self._say_why()
        return self.exit_code

    def _say_why(self) -> None:
        """Publish why warden exits, once, last: the closing line of the log, the final
        STATUS= upward (the systemd observer), and the termination message file."""
        assert self.exit_code is not None
        closing = self.closing.decide(self.exit_code, self.final_message)
        try:
            write_termination_message(closing.reason, self.options.termination_log)
        except TerminationLogError as exc:
            self.publish(
                TerminationLogFailed(path=str(self.options.termination_log), error=str(exc))
            )
        self.publish(closing)

    def _forced_exit_reason(self) -> None:
        """On the guard thread, before a forced exit (124): the termination message, at
        least; the loop may be blocked, so nothing is published."""
        with contextlib.suppress(OSError):
            write_termination_message(
                f"warden's shutdown deadline passed (--stop-timeout "
                f"{self.options.stop_timeout:g}s + {KILL_MARGIN:g}s): forced exit "
                f"{EXIT_DEADLINE}; its report of what was still running is on stderr",
                self.options.termination_log,
            )

    def _start_failure(self) -> str | None:
        """The line for a component whose start failed without a word of its own (the
        control socket out of descriptors...): the run never got to the program."""
        for event in self.lifecycle.timeline:
            fact = event.fact
            if isinstance(fact, ComponentStarted) and fact.result is Outcome.FAILED:
                return f"the program was not started: {fact.component} failed: {fact.error}"
        return None

    def _health_details(self) -> dict[str, object]:
        """``/readyz?verbose``: the program, read from the health thread (reads only)."""
        child = self.runs.current
        return {
            "program": None if child is None else f"pid {child.pid}",
            "upgrading": self.upgrader.running,
            "last_exit": None if self.reason is None else str(self.reason),
            "memory": self.memory.describe(),
        }

    def _relaying(self) -> bool:
        """Whether the program's own RELOADING=1 goes up: while serving, not upgrading (and
        whatever the memory level, which only sheds new work)."""
        lc = self.lifecycle
        return lc.state is State.READY and lc.stop_reason is None and not self.upgrader.running

    def publish(self, fact: Fact) -> None:
        self.lifecycle.publish(fact)

    # -- what the rest of warden reads ---------------------------------------------------

    def status(self) -> Status:
        """What ``warden status`` shows, as a frozen snapshot."""
        return snapshot(self)

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def sockets(self) -> HeldSockets:
        return self._sockets

    @property
    def current_child(self) -> RunningChild | None:
        """The program's current run (the old release until an upgrade promotes the new)."""
        return self.runs.current

    @property
    def reason(self) -> ExitReason | None:
        """The program's last exit reason, once it has ended at least once."""
        return self.runs.last_reason

    @property
    def control_path(self) -> str | None:
        return None if self._control is None else self._control.path

    def _kill_everything(self) -> None:
        for run in list(self.runs):
            run.send(signal.SIGKILL, group=True)
        self._reaper.kill_children(signal.SIGKILL)

    # -- signals: one handler each ------------------------------------------------------

    def _handle_chld(self, signum: int) -> None:
        """A child ended (coalesced: one or more): reap them all; the ladder re-checks."""
        self._reaper.reap()
        self._ladder.reaped()

    def _handle_hup(self, signum: int) -> None:
        """``--on-hup upgrade``: start an upgrade (or join one); ``forward``: to the program."""
        if self.options.hup_action != "upgrade":
            self._handle_forward(signum)
            return
        try:
            self.upgrader.trigger()
        except UpgradeRefused as exc:
            self.publish(UpgradeRefusedFact(signum=signum, reason=str(exc)))

    def _handle_forward(self, signum: int) -> None:
        """Any other signal warden receives as PID 1 belongs to the program."""
        child = self.runs.current
        if child is not None:
            child.send(signum, group=self.options.group)

    def _second_stop_signal(self, signum: int) -> None:
        """A second SIGTERM/SIGINT: the ladder skips to SIGKILL."""
        self._ladder.escalate.set()
        self.publish(StopEscalated(signum=signum))

    # -- component: the sockets ---------------------------------------------------------

    # Async, though nothing here blocks: a sync component callable runs on a thread of its
    # own, and the GIL hand-offs with that thread cost ~8 ms of a stop (measured).

    async def _open_sockets(self) -> None:
        """Bind every --listen socket (and take warden's own LISTEN_FDS) before any spawn."""
        try:
            inherited = HeldSockets.from_environment()
            bound = HeldSockets.from_specs(self.options.listen)
        except (ListenError, ConfigurationError) as exc:
            self.final_message = str(exc)
            raise
        self._sockets = HeldSockets([*inherited, *bound])
        for line in self._sockets.describe():
            self.publish(SocketHeld(description=line))

    def _adopt_sockets(self, sockets: HeldSockets) -> None:
        """An upgrade's new release took over with sockets of its own (steering)."""
        self._sockets = sockets

    async def _close_sockets(self) -> None:
        self._swap.close()
        self._sockets.close()

    async def _open_memory(self) -> None:
        try:
            await self.memory.start()
        except MemoryCgroupError as exc:
            self.final_message = f"--memory-limit: {exc}"
            raise

    def _recycle(self) -> None:
        """--recycle-at: the working set crossed it; replace the program with a fresh copy."""
        try:
            self.upgrader.trigger()
        except UpgradeRefused as exc:
            self.publish(UpgradeRefusedFact(signum=0, reason=f"--recycle-at: {exc}"))

    # -- components: the control socket and the pid file --------------------------------

    async def _open_control(self) -> None:
        assert self.options.control is not None
        control = ControlServer(
            self.options.control,
            self._on_control,
            commands=_CONTROL_COMMANDS,
            tally=self.tally,
            clock=self._clock,
        )
        try:
            await control.start()
        except ConfigurationError as exc:
            if not self.options.control_optional:
                self.final_message = str(exc)
                raise
            # The default path (taken by another warden on this machine, or in a directory
            # that is not safe): not the user's mistake, so no reason not to run the program;
            # `--control PATH` gives this warden one of its own.
            self.publish(ControlUnavailable(error=str(exc)))
            return
        self._control = control
        self.publish(ControlListening(path=control.path))

    async def _close_control(self) -> None:
        if self._control is not None:
            await self._control.close()

    async def _write_pid_file(self) -> None:
        assert self._pid_file is not None
        try:
            self._pid_file.write()
        except ConfigurationError as exc:
            self.final_message = str(exc)
            raise

    async def _remove_pid_file(self) -> None:
        assert self._pid_file is not None
        self._pid_file.remove()

    async def _watch_files(self) -> None:
        assert self._reload_on_change is not None
        try:
            await self._reload_on_change.start()
        except ConfigurationError as exc:
            self.final_message = str(exc)
            raise

    # -- component: the program ------------------------------------------------------------

    async def _start(self) -> None:
        ready = self.options.ready
        if ready.kind == "tcp" and not ready.port and self._launcher.held_tcp_address() is None:
            self.final_message = (
                "--ready tcp needs a TCP --listen socket to connect to; add --listen "
                "tcp://HOST:PORT or give the address: --ready tcp://HOST:PORT"
            )
            raise ConfigurationError(self.final_message)
        self._started = True
        try:
            become_subreaper()
        except OSError as exc:
            self.publish(SubreaperFailed(error=str(exc)))
        self._footprint.protect()
        self.publish(
            OomScoreAdjusted(original=self._footprint.original, current=self._footprint.current)
        )
        # Before the first spawn, not after it: a stop signal that comes right after the
        # program started must not wait for a full garbage collection.
        release_free_memory()
        try:
            await self._start_until_ready()
        except BaseException as exc:
            # A stop arrived while the program was starting (cancelled), or the start failed:
            # the lifecycle calls no stop for a start that did not finish, so the ladder runs
            # here; nothing the program started may outlive warden.
            if self.exit_code is None and not isinstance(exc, asyncio.CancelledError):
                # Failed for a reason other than the program (a notify socket that cannot be
                # made, no descriptors left): never 0, and one line saying why.
                self.exit_code = EXIT_FAILURE
                self.final_message = self.final_message or f"the program was not started: {exc}"
            await self._stop()
            raise

    async def _start_until_ready(self) -> None:
        """Spawn and gate; a program not ready in time is handled by the restart policy."""
        while True:
            child = await self._spawn_and_gate()
            if child.running or self.options.ready.kind == "none":
                # Without a gate the program is ready once started, even if it is already
                # gone (`true`): its end is main's to handle, as any other end.
                return
            assert child.reason is not None
            decision = self._restarts.child_exited(child.reason)
            if isinstance(decision, Finish):
                self.exit_code = decision.exit_code
                self.final_message = decision.message or f"the program {child.reason}"
                if decision.exit_code == 0:
                    # Exited 0 before its gate (there is one) passed: the start failed.
                    self.exit_code = EXIT_NOT_READY
                    self.final_message += (
                        f" before it was ready (--ready {self.options.ready}); exit code "
                        f"{EXIT_NOT_READY}"
                    )
                hint = self._sockets.handover_hint()
                if hint is not None and child.reason.kind is not ExitKind.NOT_READY:
                    # It ended on its own before its gate passed, next to held sockets: most
                    # often it bound the port itself and met warden's socket (EADDRINUSE).
                    self.final_message += f"; {hint}"
                raise NotReady(self.final_message)
            await self._restart_after(child, decision.attempt, decision.delay)

    async def _stop(self) -> None:
        await self.upgrader.cancel()
        runs = self.runs
        for run in runs:
            if run.watchdog is not None:
                run.watchdog.stop()
        candidate = runs.candidate
        if candidate is not None and candidate.running:
            # The upgrade was abandoned: the new release stops with the old, in parallel.
            candidate.send(self.options.stop_signal, group=self.options.group)
            runs.drain(candidate)
        await self._ladder.stop(runs.current)
        if self.exit_code is None:
            last = runs.current.reason if runs.current is not None else runs.last_reason
            self.exit_code = last.exit_code if last is not None else 0

    def _spawn_program(self) -> RunningChild:
        """Spawn the program as *the* program (a start or a restart, not an upgrade)."""
        try:
            child = self._launcher.spawn()
        except SpawnError as exc:
            if not is_shortage(exc):  # the command's fault: said once, never retried
                self.exit_code = exc.exit_code
                self.final_message = str(exc)
                self.runs.last_reason = ExitReason.exec_failed(exc.exit_code, exc.why)
            raise
        self.runs.start(child)
        self._terminal.give_to(child.pgid)
        self._restarts.child_started()
        return child

    async def _spawn_and_gate(self) -> RunningChild:
        """Spawn the program and wait for its readiness gate; a late one is stopped.

        A spawn that fails for want of a resource (EMFILE, ENFILE, ENOMEM, ENOBUFS, EAGAIN:
        a descriptor, memory or a process slot that another process may give back) is tried
        again after the restart policy's backoff, counted and said. When the policy does not
        restart, or its limit gives up, the error is raised with the exit code and the final
        line decided.
        """
        while True:
            try:
                child = self._spawn_program()
            except OSError as exc:
                if not is_shortage(exc) or not await self._retry_after_shortage(exc):
                    raise
                continue
            await self._launcher.gate(child)
            return child

    async def _retry_after_shortage(self, exc: OSError) -> bool:
        """Count and say the failed start, wait the backoff; False: no retry (decided)."""
        name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
        self.tally.spawn_failures[name] += 1
        detail = exc.strerror or str(exc)
        decision = self._restarts.start_failed(f"{detail} ({name})")
        if isinstance(decision, Finish):
            self.exit_code = decision.exit_code
            self.final_message = decision.message or f"the program was not started: {exc}"
            if decision.gave_up:
                self.publish(GaveUp(message=self.final_message, exit_code=self.exit_code))
            return False
        self.publish(
            StartDeferred(
                error=str(exc), errno=name, attempt=decision.attempt, delay=decision.delay
            )
        )
        await self._clock.sleep(decision.delay)
        return True

    # -- main: the restart policy -------------------------------------------------------

    async def _main(self) -> int | None:
        runs = self.runs
        while True:
            child = runs.current
            if child is None or not self._started:
                return None  # stopped before the program was started
            runs.replaced.clear()
            await first_of(child.ended, runs.replaced)
            if child is self.upgrader.replacing and runs.current is child:
                # The release being replaced ended during the upgrade: the upgrade decides
                # (the new release is promoted once ready, or the restart policy applies).
                await first_of(self.upgrader.idle, runs.replaced)
            if self.lifecycle.stop_reason is not None:
                # A stop is under way: the ladder decides the exit code; never restart.
                return None
            if runs.current is not child:
                continue  # replaced by an upgrade: watch the new release
            assert child.reason is not None
            decision = self._restarts.child_exited(child.reason)
            if isinstance(decision, Finish):
                if self.upgrader.running:
                    # The program ended right after an upgrade promoted it: the old release
                    # finishes its drain before warden goes (it still answers what it took).
                    await first_of(self.upgrader.idle)
                self.exit_code = decision.exit_code
                if decision.gave_up:
                    self.final_message = decision.message
                    self.publish(
                        GaveUp(message=decision.message or "", exit_code=decision.exit_code)
                    )
                return decision.exit_code
            await self._restart_after(child, decision.attempt, decision.delay)
            try:
                await self._spawn_and_gate()
            except OSError as exc:
                if is_shortage(exc):  # retried until the restart limit gave up: said
                    assert self.exit_code is not None
                    return self.exit_code
                if not isinstance(exc, SpawnError):
                    raise
                self.publish(SpawnFailed(error=str(exc), exit_code=exc.exit_code))
                return exc.exit_code

    async def _restart_after(self, child: RunningChild, attempt: int, delay: float) -> None:
        # Leftovers of the last run (workers still holding the port) go first.
        deadline = self._clock.now() + self.options.stop_timeout
        if self.upgrader.running:
            # An old release is still draining next to it: only this run's group goes.
            await self._ladder.stop_group(child, deadline, group_signalled=False)
        else:
            await self._ladder.clear(child, deadline, group_signalled=False)
        self.tally.restarts += 1
        self.publish(RestartScheduled(attempt=attempt, delay=delay, after=child.reason))
        await self._clock.sleep(delay)

    # -- the control socket ---------------------------------------------------------------

    async def _on_control(self, command: str, request: Mapping[str, object]) -> dict[str, object]:
        if command == "status":
            return {"status": self.status().to_json()}
        if command == "stop":
            self.closing.stop_asked("warden stop")
            self.lifecycle.request_stop("warden stop")
            return {"stop": {"pid": os.getpid()}}
        if command == "reload" and self.options.hup_action == "forward":
            child = self.runs.current
            if child is None or not child.running:
                raise ControlError("no program running to reload; try again once it runs")
            child.send(signal.SIGHUP, group=self.options.group)
            return {"reload": {"action": "forward", "signal": "SIGHUP", "pid": child.pid}}
        try:
            result, coalesced = await self.upgrader.request()
        except UpgradeRefused as exc:
            raise ControlError(str(exc)) from None
        return {"ok": result.ok, "upgrade": result.to_json(self._clock.now(), coalesced=coalesced)}


class _SupervisorLifecycle(Lifecycle):
    """warden's own lifecycle: its states follow the program's, whose facts tell people."""

    _state_fact = SupervisorStateChanged


@contextlib.contextmanager
def _ignoring_terminal_stops() -> Iterator[None]:
    """Ignore SIGTTIN/SIGTTOU while supervising (tini does the same).

    warden hands the terminal's foreground to the program, after which warden is a background
    process: with ``TOSTOP`` set a write of its own would stop it, and moving the foreground
    again after a restart (``tcsetpgrp`` from the background) sends SIGTTOU.
    """
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGTTIN, signal.SIGTTOU)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
