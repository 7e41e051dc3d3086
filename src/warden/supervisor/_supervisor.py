"""``warden run``: the program as a component of a :class:`~warden.lifecycle.Lifecycle`.

The supervisor is itself a service built on the library; this module is its wiring only:

* the parts, made once and handed to each other (:meth:`Supervisor.__init__`);
* the components: ``sockets`` binds ``--listen`` (or takes warden's own LISTEN_FDS) before
  anything is spawned and closes them after the last run is gone; ``memory`` the program's
  cgroup and sentinel; ``control`` (``--control``) the control socket; ``pid-file``;
  ``child`` (needs them all) the program, started and gated by the runner, its stop the stop
  ladder; ``reload-on-change`` (after ``child``): a file's new content does what SIGHUP does;
* ``main``, the runner's: wait for the program to end on its own, and the restart policy;
* one table of signal handlers (:data:`Supervisor.SIGNALS`), the lifecycle's own being
  SIGTERM/SIGINT (graceful stop) and a second one (the ladder skips to SIGKILL);
* the last word: why warden exits (:class:`~._closing.ClosingReason`), said once.

Where the rest lives: ``_runner.py`` (the program's life, step by step: start, gate, run,
decide, stop), ``release/`` (a run: ``_launcher`` spawns and follows it, ``_gate`` asks it,
``_program`` says which run is the program, ``_upgrade`` replaces it, ``_program_memory``
watches its memory), ``process/`` (spawn and exec shim, reaper, stop ladder, exit reasons),
``sockets/``, ``notify/``, ``control/`` (the socket and its commands), and the facts it
publishes in ``_events``. Nothing here speaks to systemd: the systemd observer reports the
timeline upward.

Nothing here wakes up on a timer while the program runs: the lifecycle's loop waits in
``epoll`` without a timeout and its guard thread in ``poll`` without one; timers exist only
while a restart backs off or the ladder waits for its deadline.
"""

from __future__ import annotations

import contextlib
import functools
import signal
from collections.abc import Awaitable, Callable, Mapping
from typing import ClassVar

from .._exceptions import ConfigurationError
from .._exitcodes import EXIT_DEADLINE, EXIT_FAILURE
from ..lifecycle import Clock, Fact, Lifecycle, State
from ..memory import MemoryCgroupError
from ..observe import notify_systemd
from ..systemd import Notifier
from ._closing import ClosingReason
from ._events import (
    ControlListening,
    ControlUnavailable,
    SocketHeld,
    StopEscalated,
    SupervisorStateChanged,
    TerminationLogFailed,
)
from ._options import KILL_MARGIN, SupervisorOptions
from ._pidfile import PidFile
from ._reload_on_change import ReloadOnChange
from ._runner import ProgramRunner, Verdict
from ._status import Status, snapshot
from ._tally import Tally
from ._termination_log import TerminationLogError, write_termination_message
from .control._commands import ControlCommands
from .control._server import ControlServer
from .process._ladder import StopLadder
from .process._reaper import Reaper
from .process._reason import ExitReason
from .process._signals import FORWARDED
from .process._spawn import Terminal, ignoring_terminal_stops
from .release._child import RunningChild
from .release._gate import Gate
from .release._launcher import Launcher
from .release._program import Program
from .release._program_memory import ProgramMemory
from .release._restart import RestartTracker, uniform
from .release._upgrade import Upgrader
from .sockets._held import HeldSockets, ListenError

SignalHandler = Callable[["Supervisor", int], None]


class Supervisor:
    """Runs one program under PID 1 duties, the stop ladder and a restart policy.

    Example::

        options = SupervisorOptions(command=("python", "-m", "http.server"), group=True)
        supervisor = Supervisor(options)
        sys.exit(supervisor.run())

    After :meth:`run`, :attr:`verdict` holds the exit code and the last word for the user
    when there is one (the give-up line, an exec failure), and :attr:`reason` the program's
    last exit reason.
    """

    def __init__(
        self,
        options: SupervisorOptions,
        *,
        clock: Clock | None = None,
        rng: Callable[[], float] = uniform,
    ) -> None:
        self.options = options
        self.clock = clock = clock or Clock()
        self.lifecycle = lifecycle = _SupervisorLifecycle(
            shutdown_timeout=options.shutdown_timeout,
            on_second_signal=self._second_stop_signal,
        )
        publish = lifecycle.publish
        self.started_at = clock.now()
        self.verdict = Verdict()
        #: Every counter, in one place: status and /metrics read it.
        self.tally = tally = Tally()
        self._reaper = reaper = Reaper(tally)
        restarts = RestartTracker(
            options.restart,
            options.backoff,
            min_uptime=options.min_uptime,
            max_restarts=options.max_restarts,
            clock=clock.now,
            rng=rng,
        )
        self.program = program = Program(terminal=Terminal(), restarts=restarts)
        self._ladder = ladder = StopLadder(
            reaper,
            stop_signal=options.stop_signal,
            timeout=options.stop_timeout,
            group=options.group,
            publish=publish,
            spared=lambda: program.signalled,
            clock=clock,
        )
        self.memory = memory = ProgramMemory(options, program=program, publish=publish, clock=clock)
        # Memory at "high": readiness false (shed load).
        lifecycle.ready_when(memory.accepting, what="memory high")
        launcher = Launcher(
            options,
            program=program,
            reaper=reaper,
            memory=memory,
            tally=tally,
            publish=publish,
            clock=clock,
            relaying=self._relaying,
        )
        gate = Gate(
            options,
            program=program,
            reaper=reaper,
            ladder=ladder,
            memory=memory,
            publish=publish,
            clock=clock,
        )
        self.upgrader = upgrader = Upgrader(
            options,
            program=program,
            launcher=launcher,
            gate=gate,
            ladder=ladder,
            publish=publish,
            clock=clock,
            tally=tally,
            stopping=self._stopping,
            hurry=memory.hurry,
        )
        self._runner = ProgramRunner(
            options,
            program=program,
            launcher=launcher,
            gate=gate,
            ladder=ladder,
            restarts=restarts,
            upgrader=upgrader,
            memory=memory,
            verdict=self.verdict,
            publish=publish,
            clock=clock,
            tally=tally,
            stopping=self._stopping,
        )
        self._control: ControlServer | None = None
        self._pid_file = None if options.pid_file is None else PidFile(options.pid_file)
        #: Why warden exits, composed from the timeline; said once at the end.
        self.closing = ClosingReason(stop_timeout=options.stop_timeout)
        lifecycle.timeline.subscribe(self.closing.observe)
        self._reload_on_change = None
        if options.reload_on_change:  # the same action as a SIGHUP to warden, one code path
            self._reload_on_change = ReloadOnChange(
                options.reload_on_change,
                reload=functools.partial(self._handle_hup, signal.SIGHUP),
                action=options.hup_action,
                publish=publish,
            )
        self._add_components()
        for signum in {*FORWARDED, *self.SIGNALS}:
            handler = self.SIGNALS.get(signum, Supervisor._handle_forward)
            lifecycle.on_signal(signum, functools.partial(handler, self))
        # A forced exit (deadline, second signal) leaves nothing running: the guard thread
        # calls this before os._exit, whatever the loop is doing.
        lifecycle.on_forced_exit(self._kill_everything)
        lifecycle.on_forced_exit(self._forced_exit_reason)
        upward = Notifier.from_environment()  # a systemd above warden, if any
        if upward is not None:
            notify_systemd(lifecycle, upward)

    def _add_components(self) -> None:
        lc, why = self.lifecycle, self._saying_why
        needs = ["sockets", "memory"]
        open_sockets = why(self._open_sockets, (ListenError, ConfigurationError))
        lc.add("sockets", start=open_sockets, stop=self._close_sockets)
        memory_start = why(self.memory.start, (MemoryCgroupError,), prefix="--memory-limit: ")
        lc.add("memory", start=memory_start, stop=self.memory.stop)
        if self.options.control is not None:
            lc.add("control", start=self._open_control, stop=self._close_control)
            needs.append("control")
        if self._pid_file is not None:
            pid_file = self._pid_file
            write = why(_async(pid_file.write), (ConfigurationError,))
            lc.add("pid-file", start=write, stop=_async(pid_file.remove))
            needs.append("pid-file")
        lc.add("child", start=self._runner.start, stop=self._runner.stop, depends_on=needs)
        if self._reload_on_change is not None:  # armed once the program is ready
            watch = self._reload_on_change
            start = why(watch.start, (ConfigurationError,))
            lc.add("reload-on-change", start=start, stop=watch.stop, depends_on=["child"])

    def _saying_why(
        self,
        start: Callable[[], Awaitable[None]],
        errors: tuple[type[Exception], ...],
        prefix: str = "",
    ) -> Callable[[], Awaitable[None]]:
        """``start``, whose failure with one of ``errors`` (a bad option, a busy path) is
        warden's last word."""

        async def start_saying_why() -> None:
            try:
                await start()
            except errors as exc:
                self.verdict.message = f"{prefix}{exc}"
                raise

        return start_saying_why

    def run(self) -> int:
        """Run until the program is stopped or ends for good; return warden's exit code."""
        if self.options.health is not None and not self._serve_health():
            return self._last_word()
        with ignoring_terminal_stops():
            code = self.lifecycle.run(self._runner.run)
        if self.verdict.exit_code is None:
            # No decision of ours (the program never started, or a failure of the lifecycle):
            # the lifecycle's own code stands.
            self.verdict.exit_code = code
        return self._last_word()

    def _serve_health(self) -> bool:
        """``--health``: bound now, so a busy or bad address is said before the program starts;
        its /metrics read the tally."""
        from ..observe import serve_health

        assert self.options.health is not None
        try:
            health = serve_health(self.lifecycle, self.options.health, details=self._health_details)
        except ConfigurationError as exc:
            self.verdict.message = str(exc)
            self.verdict.exit_code = EXIT_FAILURE
            return False
        metrics = health.health.metrics
        if metrics is not None:
            tally = self.tally
            metrics.read("notify_drops", lambda: dict(tally.notify_drops))
            metrics.read("control_refusals", lambda: tally.control_refusals)
            metrics.read("orphans_reaped", lambda: tally.orphans_reaped)
            metrics.read("spawn_failures", lambda: dict(tally.spawn_failures))
        return True

    def _last_word(self) -> int:
        """Publish why warden exits, once, last: the closing line of the log, the final
        STATUS= upward (the systemd observer), and the termination message file."""
        code = self.verdict.exit_code
        assert code is not None
        closing = self.closing.decide(code, self.verdict.message)
        try:
            write_termination_message(closing.reason, self.options.termination_log)
        except TerminationLogError as exc:
            self.publish(
                TerminationLogFailed(path=str(self.options.termination_log), error=str(exc))
            )
        self.publish(closing)
        return code

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

    def _health_details(self) -> dict[str, object]:
        """``/readyz?verbose``: the program, read from the health thread (reads only)."""
        child = self.program.current
        return {
            "program": None if child is None else f"pid {child.pid}",
            "upgrading": self.upgrader.running,
            "last_exit": None if self.reason is None else str(self.reason),
            "memory": self.memory.describe(),
        }

    def _stopping(self) -> bool:
        return self.lifecycle.stop_reason is not None

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
    def sockets(self) -> HeldSockets:
        return self.program.sockets

    @property
    def current_child(self) -> RunningChild | None:
        """The program's current run (the old release until an upgrade promotes the new)."""
        return self.program.current

    @property
    def next_start_at(self) -> float | None:
        """When the program starts again, while a restart's backoff is waited out."""
        return self._runner.next_start_at

    @property
    def reason(self) -> ExitReason | None:
        """The program's last exit reason, once it has ended at least once."""
        return self.program.last_reason

    @property
    def control_path(self) -> str | None:
        return None if self._control is None else self._control.path

    def _kill_everything(self) -> None:
        for run in list(self.program):
            run.send(signal.SIGKILL, group=True)
        self._reaper.kill_children(signal.SIGKILL)

    # -- signals: one handler each ------------------------------------------------------

    def _handle_chld(self, signum: int) -> None:
        """A child ended (coalesced: one or more): reap them all; the ladder re-checks."""
        self._reaper.reap()
        self._ladder.reaped()

    def _handle_hup(self, signum: int) -> None:
        """``--on-hup upgrade``: start an upgrade (or join one); ``forward``: to the program."""
        if self.options.hup_action == "upgrade":
            self.upgrader.trigger(signum)
        else:
            self._handle_forward(signum)

    def _handle_forward(self, signum: int) -> None:
        """Any other signal warden receives as PID 1 belongs to the program."""
        child = self.program.current
        if child is not None:
            child.send(signum, group=self.options.group)

    #: One handler per signal the supervisor handles itself (SIGTERM and SIGINT are the
    #: lifecycle's graceful stop). Every other signal in ``FORWARDED`` goes to
    #: :meth:`_handle_forward`, to the program.
    SIGNALS: ClassVar[Mapping[int, SignalHandler]] = {
        signal.SIGCHLD: _handle_chld,
        signal.SIGHUP: _handle_hup,
    }

    def _second_stop_signal(self, signum: int) -> None:
        """A second SIGTERM/SIGINT: the ladder skips to SIGKILL."""
        self._ladder.escalate.set()
        self.publish(StopEscalated(signum=signum))

    # -- components: the sockets, the control socket -------------------------------------

    # Async, though nothing here blocks: a sync component callable runs on a thread of its
    # own, and the GIL hand-offs with that thread cost ~8 ms of a stop (measured).

    async def _open_sockets(self) -> None:
        """Bind every --listen socket (and take warden's own LISTEN_FDS) before any spawn."""
        inherited = HeldSockets.from_environment()
        bound = HeldSockets.from_specs(self.options.listen)
        self.program.sockets = HeldSockets([*inherited, *bound])
        for line in self.program.sockets.describe():
            self.publish(SocketHeld(description=line))

    async def _close_sockets(self) -> None:
        self.upgrader.sockets.close()
        self.program.sockets.close()

    async def _open_control(self) -> None:
        assert self.options.control is not None
        commands = ControlCommands(self)
        control = ControlServer(
            self.options.control,
            commands.handle,
            commands=commands.TABLE,
            tally=self.tally,
            clock=self.clock,
            tidy=not self.options.control_optional,  # the default path's directory stays
        )
        try:
            await control.start()
        except ConfigurationError as exc:
            if not self.options.control_optional:
                self.verdict.message = str(exc)
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


class _SupervisorLifecycle(Lifecycle):
    """warden's own lifecycle: its states follow the program's, whose facts tell people."""

    _state_fact = SupervisorStateChanged


def _async(fn: Callable[[], object]) -> Callable[[], Awaitable[None]]:
    """``fn`` as a component's async callable: run on the loop, not on a thread of its own."""

    async def call() -> None:
        fn()

    return call
