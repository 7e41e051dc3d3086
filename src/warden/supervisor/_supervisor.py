"""``warden run``: the program as a component of a :class:`~warden.lifecycle.Lifecycle`.

The supervisor is itself a service built on the library:

* component ``sockets``: binds ``--listen`` (or takes warden's own LISTEN_FDS) before anything
  is spawned, and closes them after the last child is gone;
* component ``child`` (needs ``sockets``): ``start`` spawns the program with the sockets at fds
  3.. and its own NOTIFY_SOCKET, and returns once the readiness gate passes (so the lifecycle,
  and with it READY=1 to a systemd above warden, is ready only when the program is);
  ``stop`` is the stop ladder;
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
import os
import random
import signal
import socket
import time
from collections.abc import Callable, Iterator, Sequence

from .._exceptions import ConfigurationError
from ..lifecycle import Lifecycle, signal_name
from ..observe import notify_systemd
from ..systemd import Notifier
from ._child import RunningChild
from ._handover import spawn_with_sockets
from ._ladder import StopLadder
from ._notify_server import NotifyMessage, NotifyServer
from ._oom import OomScoreGuard, release_free_memory
from ._options import SupervisorOptions
from ._readiness import GateInputs, NotReady, wait_ready
from ._reaper import Reaper, become_subreaper
from ._reason import ExitKind, ExitReason
from ._restart import Finish, RestartTracker
from ._signals import FORWARDED
from ._sockets import HeldSockets, ListenError
from ._spawn import SpawnError, Terminal, spawn_child
from ._watchdog import ChildWatchdog

#: What warden's own manager told warden, not the program: the program gets warden's values.
_MANAGER_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


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
        self._upward = Notifier.from_environment()  # a systemd above warden, if any
        self._sockets = HeldSockets()
        self._notify: NotifyServer | None = None
        self._notified = asyncio.Event()  # READY=1 from the current child
        self._child_reloading = False
        self._watchdog: ChildWatchdog | None = None
        self._watchdog_fired: set[int] = set()
        #: The last STATUS= the program sent, if any.
        self.child_status: str | None = None
        self.lifecycle.add("sockets", start=self._open_sockets, stop=self._close_sockets)
        self.lifecycle.add("child", start=self._start, stop=self._stop, depends_on=["sockets"])
        self.lifecycle.on_signal(signal.SIGCHLD, self._on_sigchld)
        for signum in FORWARDED:
            self.lifecycle.on_signal(signum, self._forward)
        if self._upward is not None:
            notify_systemd(self.lifecycle, self._upward)

    def run(self) -> int:
        """Run until the program is stopped or ends for good; return warden's exit code."""
        with _ignoring_terminal_stops():
            code = self.lifecycle.run(self._main)
        if self.exit_code is None:
            # No decision of ours (the program never started, or a failure of the lifecycle):
            # the lifecycle's own code stands.
            self.exit_code = code
        return self.exit_code

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
            self._publish("socket", name=line, detail="held for every child")

    async def _close_sockets(self) -> None:
        self._sockets.close()

    # -- component: the program ------------------------------------------------------------

    async def _start(self) -> None:
        ready = self.options.ready
        if ready.kind == "tcp" and not ready.port and self._held_tcp_address() is None:
            self.final_message = (
                "--ready tcp needs a TCP --listen socket to connect to; add --listen "
                "tcp://HOST:PORT or give the address: --ready tcp://HOST:PORT"
            )
            raise ConfigurationError(self.final_message)
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
        self._oom.protect()
        self._publish("oom_score_adj", detail=self._oom.describe())
        self._terminal = Terminal()
        self._notify = NotifyServer(self._on_notify, access=self.options.notify_access)
        self._notify.start()
        # Before the first spawn, not after it: a stop signal that comes right after the
        # program started must not wait for a full garbage collection.
        release_free_memory()
        try:
            await self._start_until_ready()
        except BaseException:
            # A stop arrived while the program was starting (cancelled), or the start failed:
            # the lifecycle calls no stop for a start that did not finish, so the ladder runs
            # here; nothing the program started may outlive warden.
            await self._stop()
            raise

    async def _start_until_ready(self) -> None:
        """Spawn and gate; a program not ready in time is handled by the restart policy."""
        while True:
            child = await self._spawn_and_gate()
            if child.running:
                return
            assert child.reason is not None
            decision = self._restarts.child_exited(child.reason)
            if isinstance(decision, Finish):
                self.exit_code = decision.exit_code
                self.final_message = decision.message or f"the program {child.reason}"
                raise NotReady(self.final_message)
            await self._restart_after(child, decision.attempt, decision.delay)

    async def _stop(self) -> None:
        assert self._ladder is not None
        child = self._child
        if self._watchdog is not None:
            self._watchdog.stop()
        await self._ladder.stop(child)
        if self.exit_code is None:
            last = child.reason if child is not None else self.reason
            self.exit_code = last.exit_code if last is not None else 0
        if self._notify is not None:
            self._notify.close()

    def _spawn(self) -> RunningChild:
        """Start the program (raises SpawnError); the one place a child is started."""
        assert self._oom is not None and self._terminal is not None
        assert self._notify is not None
        argv = self.options.command
        self._notified = asyncio.Event()
        self._child_reloading = False
        pid_variables = ("LISTEN_PID", "WATCHDOG_PID") if self.options.watchdog else ()
        try:
            with self._oom.child_defaults():
                pid = spawn_with_sockets(
                    argv,
                    sockets=self._sockets.named_fds,
                    env=self._child_environment(),
                    pid_variables=pid_variables or ("LISTEN_PID",),
                )
        except SpawnError as exc:
            self.exit_code = exc.exit_code
            self.final_message = str(exc)
            self.reason = ExitReason.exec_failed(exc.exit_code, exc.why)
            raise
        self._notify.set_main_pid(pid)
        child = RunningChild(pid, argv, self._clock())
        self._child = child
        self._terminal.give_to(child.pgid)
        self._reaper.watch(pid, lambda status: self._child_ended(child, status))
        # Made now so WATCHDOG=trigger counts from the first message; the timer itself starts
        # once the program is ready (systemd's watchdog, too, runs from start-up completion).
        self._watchdog = None
        if self.options.watchdog is not None:
            self._watchdog = ChildWatchdog(
                self.options.watchdog, lambda triggered: self._watchdog_expired(child, triggered)
            )
        self._restarts.child_started()
        self._publish("child", name=f"pid {pid}", detail=f"started: {' '.join(argv)}")
        return child

    def _child_environment(self) -> dict[str, str]:
        assert self._notify is not None
        env = {k: v for k, v in os.environ.items() if k not in _MANAGER_VARIABLES}
        env["NOTIFY_SOCKET"] = self._notify.path
        if self.options.watchdog is not None:
            env["WATCHDOG_USEC"] = str(int(self.options.watchdog * 1_000_000))
        return env

    async def _spawn_and_gate(self) -> RunningChild:
        """Spawn the program and wait for its readiness gate; a late one is killed."""
        child = self._spawn()
        inputs = GateInputs(
            notified=self._notified,
            ended=child.ended,
            held_tcp=self._held_tcp_address(),
            run_check=self._run_check,
        )
        try:
            await wait_ready(self.options.ready, inputs, self.options.ready_timeout)
        except NotReady as exc:
            await self._not_ready(child, exc)
            return child
        self._publish(
            "child",
            name=f"pid {child.pid}",
            outcome="ready",
            duration=self._clock() - child.started_at,
            detail=f"gate: {self.options.ready}",
        )
        if self._watchdog is not None:
            self._watchdog.start()
        return child

    async def _not_ready(self, child: RunningChild, exc: NotReady) -> None:
        if child.running:
            # Not ready in time: kill it (and its group), as systemd does on a start timeout.
            child.send(signal.SIGKILL, group=True)
            await child.ended.wait()
            assert child.reason is not None
            child.reason = self.reason = child.reason.refined(ExitKind.NOT_READY, str(exc))
        self._publish(
            "child", name=f"pid {child.pid}", outcome="failed", detail=f"not ready: {child.reason}"
        )

    def _child_ended(self, child: RunningChild, status: int) -> None:
        reason = ExitReason.from_wait_status(status)
        if child.pid in self._watchdog_fired:
            self._watchdog_fired.discard(child.pid)
            reason = reason.refined(ExitKind.WATCHDOG_TIMEOUT)
        if self._watchdog is not None and child is self._child:
            self._watchdog.stop()
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
        while True:
            child = self._child
            if child is None or self._ladder is None:
                return None  # stopped before the program was started
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
            await self._restart_after(child, decision.attempt, decision.delay)
            try:
                await self._spawn_and_gate()
            except SpawnError as exc:
                self._publish("child", outcome="failed", detail=str(exc))
                return exc.exit_code

    async def _restart_after(self, child: RunningChild, attempt: int, delay: float) -> None:
        assert self._ladder is not None
        # Leftovers of the last run (workers still holding the port) go first.
        deadline = self._clock() + self.options.stop_timeout
        await self._ladder.clear(child, deadline, group_signalled=False)
        self._publish(
            "restart",
            name=f"attempt {attempt}",
            detail=f"after {child.reason}; starting again in {delay:.3g}s",
        )
        await asyncio.sleep(delay)

    # -- what the program tells warden ----------------------------------------------------

    def _on_notify(self, message: NotifyMessage) -> None:
        """An sd_notify message from the program: readiness, watchdog, status, relayed up."""
        fields = message.fields
        for fd in message.fds:  # FDSTORE: not kept yet (no fd store across restarts)
            os.close(fd)
        if "STATUS" in fields:
            self.child_status = fields["STATUS"]
            self._relay(STATUS=fields["STATUS"])
        watchdog = fields.get("WATCHDOG")
        if watchdog is not None and self._watchdog is not None:
            if watchdog == "trigger":
                self._watchdog.trigger()
            elif watchdog == "1":
                self._watchdog.ping()
        if fields.get("RELOADING") == "1" and self.lifecycle.ready:
            self._child_reloading = True
            if self._upward is not None:
                with contextlib.suppress(OSError):
                    self._upward.reloading()
        if fields.get("READY") == "1":
            self._notified.set()
            if self._child_reloading:
                self._child_reloading = False
                self._relay(READY="1")
        extend = fields.get("EXTEND_TIMEOUT_USEC", "")
        if extend.isdigit():
            self._relay(EXTEND_TIMEOUT_USEC=extend)

    def _relay(self, **fields: str) -> None:
        if self._upward is None:
            return
        with contextlib.suppress(OSError, ConfigurationError):
            self._upward.send(**fields)

    def _watchdog_expired(self, child: RunningChild, triggered: bool) -> None:
        interval = self.options.watchdog
        self._watchdog_fired.add(child.pid)
        why = "WATCHDOG=trigger" if triggered else f"no WATCHDOG=1 within {interval:g}s"
        self._publish(
            "watchdog",
            name=f"pid {child.pid}",
            outcome="timeout",
            detail=f"{why}: SIGABRT now, SIGKILL to its group in {self.options.stop_timeout:g}s",
        )
        child.send(signal.SIGABRT, group=False)

        def kill_if_alive() -> None:
            if child.running:
                child.send(signal.SIGKILL, group=True)

        asyncio.get_running_loop().call_later(self.options.stop_timeout, kill_if_alive)

    async def _run_check(self, command: Sequence[str]) -> int:
        """Run an ``exec:`` readiness check as warden's child; the reaper collects it."""
        # No await between the spawn and watch(): the SIGCHLD callback that reaps runs on
        # this same loop, so it cannot take the status before the pid is watched.
        pid = spawn_child(command)
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

    def _held_tcp_address(self) -> tuple[str, int] | None:
        """Where a bare ``--ready tcp`` connects: the first TCP socket warden holds."""
        for held in self._sockets:
            if held.sock.family in (socket.AF_INET, socket.AF_INET6):
                host, port = held.sock.getsockname()[:2]
                wildcard = {"0.0.0.0": "127.0.0.1", "::": "::1"}
                return wildcard.get(host, host), port
        return None

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
