"""``warden run``: the program as a component of a :class:`~warden.lifecycle.Lifecycle`.

The supervisor is itself a service built on the library:

* component ``child``: ``start`` spawns the program, ``stop`` is the stop ladder;
* ``main`` waits for the program to end on its own and applies the restart policy; it returns
  the exit code when the program is not to be started again;
* ``on_signal(SIGCHLD)`` drives the reaper; every other signal a PID 1 receives for its
  program is forwarded through ``on_signal``; SIGTERM/SIGINT are the lifecycle's own graceful
  stop, and a second one (``on_second_signal``) skips the ladder to SIGKILL.

Nothing here wakes up on a timer while the program runs: the lifecycle's loop waits in
``epoll`` without a timeout and its guard thread in ``select`` without one; timers exist only
while a restart backs off or the ladder waits for its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections.abc import Callable, Iterator

from ..lifecycle import Lifecycle, signal_name
from ._child import RunningChild
from ._ladder import StopLadder
from ._oom import OomScoreGuard
from ._options import SupervisorOptions
from ._reaper import Reaper, become_subreaper
from ._reason import ExitReason
from ._restart import Finish, RestartTracker
from ._signals import FORWARDED
from ._spawn import SpawnError, Terminal, spawn_child


class Supervisor:
    """Runs one program under PID 1 duties, the stop ladder and a restart policy.

    Example::

        options = SupervisorOptions(command=("python", "-m", "http.server"), group=True)
        supervisor = Supervisor(options)
        sys.exit(supervisor.run())

    After :meth:`run`, :attr:`final_message` holds the last word for the user when there is
    one (the give-up line, an exec failure) and :attr:`reason` the program's last exit reason.
    """

    def __init__(
        self,
        options: SupervisorOptions,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.options = options
        self._clock = clock
        self.lifecycle = Lifecycle(
            shutdown_timeout=options.shutdown_timeout,
            on_second_signal=self._second_stop_signal,
        )
        self._reaper = Reaper()
        self._restarts = RestartTracker(
            options.restart,
            options.backoff,
            min_uptime=options.min_uptime,
            max_restarts=options.max_restarts,
            clock=clock,
            rng=rng,
        )
        self._ladder: StopLadder | None = None
        self._child: RunningChild | None = None
        self._terminal: Terminal | None = None
        self._oom: OomScoreGuard | None = None
        #: The program's last exit reason, once it has ended at least once.
        self.reason: ExitReason | None = None
        #: The code ``warden run`` exits with, once decided.
        self.exit_code: int | None = None
        self.final_message: str | None = None
        self.lifecycle.add("child", start=self._start, stop=self._stop)
        self.lifecycle.on_signal(signal.SIGCHLD, self._on_sigchld)
        for signum in FORWARDED:
            self.lifecycle.on_signal(signum, self._forward)

    def run(self) -> int:
        """Run until the program is stopped or ends for good; return warden's exit code."""
        with _ignoring_terminal_stops():
            code = self.lifecycle.run(self._main)
        if self.exit_code is None:
            # No decision of ours (the program never started, or a failure of the lifecycle):
            # the lifecycle's own code stands.
            self.exit_code = code
        return self.exit_code

    # -- component: the program ------------------------------------------------------------

    async def _start(self) -> None:
        self._ladder = StopLadder(
            self._reaper,
            stop_signal=self.options.stop_signal,
            timeout=self.options.stop_timeout,
            group=self.options.group,
            note=lambda name, detail: self._publish("stop_ladder", name=name, detail=detail),
        )
        try:
            become_subreaper()
        except OSError as exc:
            self._publish("subreaper", outcome="failed", detail=f"{exc}; orphans stay zombies")
        self._oom = OomScoreGuard()
        try:
            self._oom.protect()
            self._publish("oom_score_adj", detail=self._oom.describe())
        except OSError as exc:  # no /proc mounted, or a kernel without the file
            self._publish("oom_score_adj", outcome="failed", detail=str(exc))
        self._terminal = Terminal()
        self._spawn()

    async def _stop(self) -> None:
        assert self._ladder is not None
        child = self._child
        await self._ladder.stop(child)
        if self.exit_code is None:
            last = child.reason if child is not None else self.reason
            self.exit_code = last.exit_code if last is not None else 0

    def _spawn(self) -> None:
        """Start the program (raises SpawnError); the one place a child is started."""
        assert self._oom is not None and self._terminal is not None
        argv = self.options.command
        try:
            with self._oom.child_defaults():
                pid = spawn_child(argv)
        except SpawnError as exc:
            self.exit_code = exc.exit_code
            self.final_message = str(exc)
            self.reason = ExitReason.exec_failed(exc.exit_code, exc.why)
            raise
        child = RunningChild(pid, argv, self._clock())
        self._child = child
        self._terminal.give_to(child.pgid)
        self._reaper.watch(pid, lambda status: self._child_ended(child, status))
        self._restarts.child_started()
        self._publish("child", name=f"pid {pid}", detail=f"started: {' '.join(argv)}")

    def _child_ended(self, child: RunningChild, status: int) -> None:
        reason = ExitReason.from_wait_status(status)
        now = self._clock()
        child.mark_ended(reason, now)
        self.reason = reason
        self._publish(
            "child",
            name=f"pid {child.pid}",
            duration=now - child.started_at,
            detail=str(reason),
        )

    # -- main: the restart policy -------------------------------------------------------

    async def _main(self) -> int | None:
        assert self._ladder is not None
        while True:
            child = self._child
            assert child is not None
            await child.ended.wait()
            assert child.reason is not None
            if self.lifecycle.stop_reason is not None:
                # A stop is under way: the ladder decides the exit code; never restart.
                return None
            decision = self._restarts.child_exited(child.reason)
            if isinstance(decision, Finish):
                self.exit_code = decision.exit_code
                if decision.gave_up:
                    self.final_message = decision.message
                    self._publish("give_up", outcome="failed", detail=decision.message)
                return decision.exit_code
            # Leftovers of the last run (workers still holding the port) go first.
            deadline = self._clock() + self.options.stop_timeout
            await self._ladder.clear(child, deadline, group_signalled=False)
            self._publish(
                "restart",
                name=f"attempt {decision.attempt}",
                detail=f"after {child.reason}; starting again in {decision.delay:.3g}s",
            )
            await asyncio.sleep(decision.delay)
            try:
                self._spawn()
            except SpawnError as exc:
                self._publish("child", outcome="failed", detail=str(exc))
                return exc.exit_code

    # -- signals ------------------------------------------------------------------------

    def _on_sigchld(self, signum: int) -> None:
        self._reaper.reap()
        if self._ladder is not None:
            self._ladder.reaped()

    def _forward(self, signum: int) -> None:
        child = self._child
        if child is not None:
            child.send(signum, group=self.options.group)

    def _second_stop_signal(self, signum: int) -> None:
        if self._ladder is not None:
            self._ladder.escalate.set()
        self._publish(
            "stop_ladder", name=signal_name(signum), detail="second stop signal: SIGKILL now"
        )

    def _publish(self, kind: str, **fields: str | float | None) -> None:
        lc = self.lifecycle
        lc.timeline.publish(kind, lc.state, **fields)  # type: ignore[arg-type]


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
