"""The program's life under ``warden run``, in the order it happens.

::

    start    warden made a fit parent of the program (subreaper, its own oom_score_adj, small),
             then the program spawned, in a loop that waits out a shortage of descriptors,
             memory or process slots (the restart policy's backoff)
    gate     its readiness gate; the lifecycle, and READY=1 to a systemd above, is ready only
             once it passed. A program that misses it was stopped by the gate: decide.
    run      ``main``: wait until the program ends on its own, an upgrade replaces it (watch
             the new release), or memory asks for a fresh copy (``--recycle-at``: upgrade)
    decide   the restart policy, in one place (:meth:`ProgramRunner._decide`): restart (its
             leftovers cleared, the backoff waited, then start and gate again), or finish
             with its exit code (given up: said; not ready at start: exit 4)
    stop     the child component's stop: an upgrade under way abandoned, the stop ladder

:meth:`ProgramRunner.start` is the ``child`` component's start (start and gate),
:meth:`ProgramRunner.run` is the lifecycle's ``main`` (run and decide), and
:meth:`ProgramRunner.stop` the component's stop. What each step does to a run is in
``release/``: the launcher spawns and follows it, the gate asks it, the program says which run
is the program, the upgrader replaces it.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable
from dataclasses import dataclass

from .._exceptions import ConfigurationError, NotReady
from .._exitcodes import EXIT_FAILURE, EXIT_NOT_READY
from ..lifecycle import Clock, Fact
from ._events import GaveUp, RestartScheduled, SpawnFailed, StartDeferred
from ._options import SupervisorOptions
from ._tally import Tally
from .process._ladder import StopLadder
from .process._reason import ExitKind, ExitReason
from .process._spawn import SpawnError, is_shortage
from .release._child import RunningChild
from .release._gate import Gate
from .release._launcher import Launcher
from .release._program import Program, first_of
from .release._program_memory import ProgramMemory
from .release._restart import Finish, Restart, RestartTracker
from .release._upgrade import Upgrader


@dataclass
class Verdict:
    """What ``warden run`` says at the end: the code it exits with, once decided, and its last
    word for the user when it has one (the give-up line, an exec failure, a bad option)."""

    exit_code: int | None = None
    message: str | None = None


class ProgramRunner:
    """Starts, gates, runs, restarts and stops the program (see the module's docstring).

    Args:
        options: the supervisor's options.
        program: which run is the program.
        launcher: spawns a run and follows it to its end.
        gate: a run's readiness gate.
        ladder: stops the program, or what a run left behind.
        restarts: the restart policy.
        upgrader: the upgrade under way, which a run's end waits for; recycles.
        memory: asks for a fresh copy (``--recycle-at``).
        verdict: where the exit code and the last word are decided.
        publish: puts a fact on the timeline.
        clock: the supervisor's clock.
        tally: counts restarts and failed starts.
        stopping: whether warden is stopping (then an end is the ladder's, never restarted).
    """

    def __init__(
        self,
        options: SupervisorOptions,
        *,
        program: Program,
        launcher: Launcher,
        gate: Gate,
        ladder: StopLadder,
        restarts: RestartTracker,
        upgrader: Upgrader,
        memory: ProgramMemory,
        verdict: Verdict,
        publish: Callable[[Fact], object],
        clock: Clock,
        tally: Tally,
        stopping: Callable[[], bool],
    ) -> None:
        self._options = options
        self._program = program
        self._launcher = launcher
        self._gate = gate
        self._ladder = ladder
        self._restarts = restarts
        self._upgrader = upgrader
        self._memory = memory
        self._verdict = verdict
        self._publish = publish
        self._clock = clock
        self._tally = tally
        self._stopping = stopping
        self._started = False  # start ran (the ladder has work)
        self._starting = False  # start has not returned yet: a finish means "not ready"
        #: When the program is started again (the supervisor's clock), while a restart's
        #: backoff, or a failed start's, is waited out (``warden status``).
        self.next_start_at: float | None = None

    # -- start and gate: the child component's start -------------------------------------

    async def start(self) -> None:
        """Spawn the program and return once its gate passed (or raise, decided)."""
        ready = self._options.ready
        if ready.kind == "tcp" and not ready.port and self._gate.held_tcp_address() is None:
            self._verdict.message = (
                "--ready tcp needs a TCP --listen socket to connect to; add --listen "
                "tcp://HOST:PORT or give the address: --ready tcp://HOST:PORT"
            )
            raise ConfigurationError(self._verdict.message)
        self._started = self._starting = True
        self._launcher.prepare()
        try:
            while True:
                child = await self._spawn_and_gate()
                if child.running or ready.kind == "none":
                    # Without a gate the program is ready once started, even if it is already
                    # gone (`true`): its end is main's to handle, as any other end.
                    return
                decision = await self._decide(child)  # raises NotReady when it finishes
                assert decision is not None
                await self._restart_after(child, decision)
        except BaseException as exc:
            # A stop arrived while the program was starting (cancelled), or the start failed:
            # the lifecycle calls no stop for a start that did not finish, so the ladder runs
            # here; nothing the program started may outlive warden.
            if self._verdict.exit_code is None and not isinstance(exc, asyncio.CancelledError):
                # Failed for a reason other than the program (a notify socket that cannot be
                # made, no descriptors left): never 0, and one line saying why.
                self._verdict.exit_code = EXIT_FAILURE
                self._verdict.message = (
                    self._verdict.message or f"the program was not started: {exc}"
                )
            await self.stop()
            raise
        finally:
            self._starting = False

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
                child = self._spawn()
            except OSError as exc:
                if not is_shortage(exc) or not await self._retry_after_shortage(exc):
                    raise
                continue
            await self._gate.wait(child)
            return child

    def _spawn(self) -> RunningChild:
        """Spawn the program as *the* program (a start or a restart, not an upgrade)."""
        try:
            child = self._launcher.spawn()
        except SpawnError as exc:
            if not is_shortage(exc):  # the command's fault: said once, never retried
                self._verdict.exit_code = exc.exit_code
                self._verdict.message = str(exc)
                self._program.last_reason = ExitReason.exec_failed(exc.exit_code, exc.why)
            raise
        self._program.start(child)
        return child

    async def _retry_after_shortage(self, exc: OSError) -> bool:
        """Count and say the failed start, wait the backoff; False: no retry (decided)."""
        name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
        self._tally.spawn_failures[name] += 1
        detail = exc.strerror or str(exc)
        decision = self._restarts.start_failed(f"{detail} ({name})")
        if isinstance(decision, Finish):
            self._verdict.exit_code = decision.exit_code
            self._verdict.message = decision.message or f"the program was not started: {exc}"
            if decision.gave_up:
                self._publish(GaveUp(message=self._verdict.message, exit_code=decision.exit_code))
            return False
        self._publish(
            StartDeferred(
                error=str(exc), errno=name, attempt=decision.attempt, delay=decision.delay
            )
        )
        await self._backoff(decision.delay)
        return True

    # -- run and decide: main ------------------------------------------------------------

    async def run(self) -> int | None:
        """The lifecycle's ``main``: wait for the program to end on its own, and decide."""
        program = self._program
        recycle = self._memory.recycle_asked
        while True:
            child = program.current
            if child is None or not self._started:
                return None  # stopped before the program was started
            program.replaced.clear()
            await first_of(child.ended, program.replaced, recycle)
            if recycle.is_set():
                recycle.clear()
                self._upgrader.trigger(0, asked_by="--recycle-at")
                continue
            if child is self._upgrader.replacing and program.current is child:
                # The release being replaced ended during the upgrade: the upgrade decides
                # (the new release is promoted once ready, or the restart policy applies).
                await first_of(self._upgrader.idle, program.replaced)
            if self._stopping():
                # A stop is under way: the ladder decides the exit code; never restart.
                return None
            if program.current is not child:
                continue  # replaced by an upgrade: watch the new release
            decision = await self._decide(child)
            if decision is None:
                return self._verdict.exit_code
            await self._restart_after(child, decision)
            try:
                await self._spawn_and_gate()
            except OSError as exc:
                if is_shortage(exc):  # retried until the restart limit gave up: said
                    assert self._verdict.exit_code is not None
                    return self._verdict.exit_code
                if not isinstance(exc, SpawnError):
                    raise
                self._publish(SpawnFailed(error=str(exc), exit_code=exc.exit_code))
                return exc.exit_code

    async def _decide(self, child: RunningChild) -> Restart | None:
        """The restart policy on ``child``'s end: the restart, or None with warden's exit code
        and last word decided. At start (its gate not passed yet) a finish is "not ready":
        raises :class:`NotReady`."""
        assert child.reason is not None
        decision = self._restarts.child_exited(child.reason)
        if isinstance(decision, Restart):
            return decision
        verdict = self._verdict
        if self._starting:
            verdict.exit_code = decision.exit_code
            verdict.message = decision.message or f"the program {child.reason}"
            if decision.exit_code == 0:
                # Exited 0 before its gate (there is one) passed: the start failed.
                verdict.exit_code = EXIT_NOT_READY
                verdict.message += (
                    f" before it was ready (--ready {self._options.ready}); exit code "
                    f"{EXIT_NOT_READY}"
                )
            hint = self._program.sockets.handover_hint()
            if hint is not None and child.reason.kind is not ExitKind.NOT_READY:
                # It ended on its own before its gate passed, next to held sockets: most
                # often it bound the port itself and met warden's socket (EADDRINUSE).
                verdict.message += f"; {hint}"
            raise NotReady(verdict.message)
        if self._upgrader.running:
            # The program ended right after an upgrade promoted it: the old release finishes
            # its drain before warden goes (it still answers what it took).
            await first_of(self._upgrader.idle)
        verdict.exit_code = decision.exit_code
        if decision.gave_up:
            verdict.message = decision.message
            self._publish(GaveUp(message=decision.message or "", exit_code=decision.exit_code))
        return None

    async def _restart_after(self, child: RunningChild, restart: Restart) -> None:
        """Clear what ``child`` left behind, say the restart, wait its backoff."""
        # Leftovers of the last run (workers still holding the port) go first.
        deadline = self._clock.now() + self._options.stop_timeout
        if self._upgrader.running:
            # An old release is still draining next to it: only this run's group goes.
            await self._ladder.stop_group(child, deadline, group_signalled=False)
        else:
            await self._ladder.clear(child, deadline, group_signalled=False)
        self._tally.restarts += 1
        self._publish(
            RestartScheduled(attempt=restart.attempt, delay=restart.delay, after=child.reason)
        )
        await self._backoff(restart.delay)

    async def _backoff(self, delay: float) -> None:
        """Wait ``delay`` before the next start, which ``warden status`` tells meanwhile."""
        self.next_start_at = self._clock.now() + delay
        try:
            await self._clock.sleep(delay)
        finally:
            self.next_start_at = None

    # -- stop: the child component's stop -------------------------------------------------

    async def stop(self) -> None:
        """Abandon an upgrade under way, then the stop ladder; the exit code, if not decided."""
        await self._upgrader.cancel()
        program = self._program
        for run in program:
            if run.watchdog is not None:
                run.watchdog.stop()
        candidate = program.candidate
        if candidate is not None and candidate.running:
            # The upgrade was abandoned: the new release stops with the old, in parallel.
            candidate.send(self._options.stop_signal, group=self._options.group)
            program.drain(candidate)
        await self._ladder.stop(program.current)
        if self._verdict.exit_code is None:
            last = program.current.reason if program.current is not None else program.last_reason
            self._verdict.exit_code = last.exit_code if last is not None else 0
