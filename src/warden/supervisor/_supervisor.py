"""``warden run``: the program as a component of a :class:`~warden.lifecycle.Lifecycle`.

The supervisor is itself a service built on the library:

* component ``sockets``: binds ``--listen`` (or takes warden's own LISTEN_FDS) before anything
  is spawned, and closes them after the last child is gone;
* component ``control`` (``--control``): the control socket, for ``warden status``, ``upgrade``,
  ``reload`` and ``stop``; component ``pid-file`` (``--pid-file``);
* component ``child`` (needs the others): ``start`` spawns the program with the sockets at fds
  3.. and its own NOTIFY_SOCKET, and returns once the readiness gate passes (so the lifecycle,
  and with it READY=1 to a systemd above warden, is ready only when the program is);
  ``stop`` is the stop ladder;
* an upgrade (SIGHUP, ``warden upgrade``) starts a second run of the program next to the first,
  with the same sockets, and replaces the first once the second is ready (see ``_upgrade``);
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
import shlex
import signal
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

from .._exceptions import ConfigurationError
from ..lifecycle import Lifecycle, signal_name
from ..observe import notify_systemd
from ..systemd import Notifier
from ._child import RunningChild
from ._control import ControlError, ControlServer
from ._handover import spawn_with_sockets
from ._ladder import StopLadder
from ._notify_server import NotifyMessage, NotifyServer
from ._oom import OomScoreGuard, release_free_memory
from ._options import SupervisorOptions
from ._pidfile import PidFile
from ._readiness import GateInputs, NotReady, wait_ready
from ._reaper import Reaper, become_subreaper
from ._reason import ExitKind, ExitReason
from ._restart import Finish, RestartTracker
from ._signals import FORWARDED
from ._sockets import HeldSockets, ListenError
from ._spawn import SpawnError, Terminal, spawn_child
from ._status import describe
from ._upgrade import UpgradeFailed, Upgrader, UpgradeRefused, UpgradeResult
from ._watchdog import ChildWatchdog

_CONTROL_COMMANDS = ("status", "upgrade", "reload", "stop")

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
        #: The new release while an upgrade waits for it to become ready.
        self._candidate: RunningChild | None = None
        self._replaced = asyncio.Event()  # an upgrade promoted a new release
        self.upgrader = Upgrader(self, clock=clock)
        self.started_at = clock()
        #: Restarts after the program ended on its own (upgrades are not restarts).
        self.restarts = 0
        self._control: ControlServer | None = None
        self._pid_file = None if options.pid_file is None else PidFile(options.pid_file)
        self._terminal: Terminal | None = None
        self._oom: OomScoreGuard | None = None
        #: The program's last exit reason, once it has ended at least once.
        self.reason: ExitReason | None = None
        #: The code ``warden run`` exits with, once decided.
        self.exit_code: int | None = None
        self.final_message: str | None = None
        self._upward = Notifier.from_environment()  # a systemd above warden, if any
        self._sockets = HeldSockets()
        self._watchdog_fired: set[int] = set()
        needs = ["sockets"]
        self.lifecycle.add("sockets", start=self._open_sockets, stop=self._close_sockets)
        if options.control is not None:
            self.lifecycle.add("control", start=self._open_control, stop=self._close_control)
            needs.append("control")
        if self._pid_file is not None:
            self.lifecycle.add("pid-file", start=self._write_pid_file, stop=self._remove_pid_file)
            needs.append("pid-file")
        self.lifecycle.add("child", start=self._start, stop=self._stop, depends_on=needs)
        self.lifecycle.on_signal(signal.SIGCHLD, self._on_sigchld)
        for signum in FORWARDED:
            if signum == signal.SIGHUP and options.hup_action == "upgrade":
                self.lifecycle.on_signal(signum, self._upgrade_on_signal)
            else:
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

    @property
    def sockets(self) -> HeldSockets:
        return self._sockets

    @property
    def current_child(self) -> RunningChild | None:
        """The program's current run (the old release until an upgrade promotes the new)."""
        return self._child

    # -- components: the control socket and the pid file --------------------------------

    async def _open_control(self) -> None:
        assert self.options.control is not None
        control = ControlServer(self.options.control, self._on_control, commands=_CONTROL_COMMANDS)
        try:
            await control.start()
        except ConfigurationError as exc:
            if not self.options.control_optional:
                self.final_message = str(exc)
                raise
            # The default path (taken by another warden on this machine, or in a directory
            # that is not safe): not the user's mistake, so no reason not to run the program;
            # `--control PATH` gives this warden one of its own.
            self._publish("control", outcome="failed", detail=f"{exc}; running without one")
            return
        self._control = control
        self._publish("control", name=control.path, detail="listening (mode 0600)")

    async def _close_control(self) -> None:
        if self._control is not None:
            await self._control.close()

    @property
    def control_path(self) -> str | None:
        return None if self._control is None else self._control.path

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
        await self.upgrader.cancel()
        child, candidate = self._child, self._candidate
        for run in (child, candidate):
            if run is not None and run.watchdog is not None:
                run.watchdog.stop()
        if candidate is not None and candidate.running:
            # The upgrade was abandoned: the new release stops with the old, in parallel.
            candidate.send(self.options.stop_signal, group=self.options.group)
            self._ladder.signalled.add(candidate.pid)
        await self._ladder.stop(child)
        if self.exit_code is None:
            last = child.reason if child is not None else self.reason
            self.exit_code = last.exit_code if last is not None else 0

    def _spawn(self) -> RunningChild:
        """Start the program (raises SpawnError); the one place a child is started.

        The run gets a notify socket of its own. Nothing here makes it *the* program: the
        caller does (``self._child``), at once for a start and after the gate for an upgrade.
        """
        assert self._oom is not None
        argv = self.options.command
        child: RunningChild | None = None

        def on_message(message: NotifyMessage) -> None:
            if child is not None:
                self._on_notify(child, message)

        notify = NotifyServer(on_message, access=self.options.notify_access)
        pid_variables = ("LISTEN_PID", "WATCHDOG_PID") if self.options.watchdog else ()
        try:
            with self._oom.child_defaults():
                pid = spawn_with_sockets(
                    argv,
                    sockets=self._sockets.named_fds,
                    env=self._child_environment(notify.path),
                    pid_variables=pid_variables or ("LISTEN_PID",),
                )
        except BaseException:
            notify.close()
            raise
        # Same loop callback as the spawn: nothing has been read from the socket yet.
        notify.set_main_pid(pid)
        notify.start()
        child = RunningChild(pid, argv, self._clock(), notify=notify)
        run = child
        self._reaper.watch(pid, lambda status: self._child_ended(run, status))
        # Made now so WATCHDOG=trigger counts from the first message; the timer itself starts
        # once the program is ready (systemd's watchdog, too, runs from start-up completion).
        if self.options.watchdog is not None:
            child.watchdog = ChildWatchdog(
                self.options.watchdog, lambda triggered: self._watchdog_expired(run, triggered)
            )
        self._publish("child", name=f"pid {pid}", detail=f"started: {' '.join(argv)}")
        return child

    def _spawn_program(self) -> RunningChild:
        """Spawn the program as *the* program (a start or a restart, not an upgrade)."""
        assert self._terminal is not None
        try:
            child = self._spawn()
        except SpawnError as exc:
            self.exit_code = exc.exit_code
            self.final_message = str(exc)
            self.reason = ExitReason.exec_failed(exc.exit_code, exc.why)
            raise
        self._child = child
        self._terminal.give_to(child.pgid)
        self._restarts.child_started()
        return child

    def _child_environment(self, notify_path: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _MANAGER_VARIABLES}
        env["NOTIFY_SOCKET"] = notify_path
        if self.options.watchdog is not None:
            env["WATCHDOG_USEC"] = str(int(self.options.watchdog * 1_000_000))
        return env

    async def _spawn_and_gate(self) -> RunningChild:
        """Spawn the program and wait for its readiness gate; a late one is killed."""
        child = self._spawn_program()
        await self._gate(child)
        return child

    async def _gate(self, child: RunningChild) -> str | None:
        """Wait for ``child``'s readiness gate; a late one is killed. Returns why it failed."""
        inputs = GateInputs(
            notified=child.notified,
            ended=child.ended,
            held_tcp=self._held_tcp_address(),
            run_check=self._run_check,
        )
        try:
            await wait_ready(self.options.ready, inputs, self.options.ready_timeout)
        except NotReady as exc:
            await self._not_ready(child, exc)
            return f"not ready: {child.reason}"
        child.ready_at = self._clock()
        self._publish(
            "child",
            name=f"pid {child.pid}",
            outcome="ready",
            duration=child.ready_at - child.started_at,
            detail=f"gate: {self.options.ready}",
        )
        if child.watchdog is not None:
            child.watchdog.start()
        return None

    async def _not_ready(self, child: RunningChild, exc: NotReady) -> None:
        if child.running:
            # Not ready in time: stop it as systemd does after a start timeout, the stop signal
            # to its group first. It may be accepting on the shared sockets already (during an
            # upgrade, next to the old release): SIGKILL would reset what it has accepted.
            assert self._ladder is not None
            deadline = self._clock() + self.options.stop_timeout
            child.send(self.options.stop_signal, group=True)
            await self._ladder.stop_group(child, deadline, group_signalled=True)
            await child.ended.wait()
            assert child.reason is not None
            child.reason = child.reason.refined(ExitKind.NOT_READY, str(exc))
            if child is self._child:
                self.reason = child.reason
        self._publish(
            "child", name=f"pid {child.pid}", outcome="failed", detail=f"not ready: {child.reason}"
        )

    def _child_ended(self, child: RunningChild, status: int) -> None:
        reason = ExitReason.from_wait_status(status)
        if child.pid in self._watchdog_fired:
            self._watchdog_fired.discard(child.pid)
            reason = reason.refined(ExitKind.WATCHDOG_TIMEOUT)
        now = self._clock()
        child.mark_ended(reason, now)
        if child is self._child:
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
            self._replaced.clear()
            await _first_of(child.ended, self._replaced)
            if child is self.upgrader.replacing and self._child is child:
                # The release being replaced ended during the upgrade: the upgrade decides
                # (the new release is promoted once ready, or the restart policy applies).
                await _first_of(self.upgrader.idle, self._replaced)
            if self.lifecycle.stop_reason is not None:
                # A stop is under way: the ladder decides the exit code; never restart.
                return None
            if self._child is not child:
                continue  # replaced by an upgrade: watch the new release
            assert child.reason is not None
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
        if self.upgrader.running:
            # An old release is still draining next to it: only this run's group goes.
            await self._ladder.stop_group(child, deadline, group_signalled=False)
        else:
            await self._ladder.clear(child, deadline, group_signalled=False)
        self.restarts += 1
        self._publish(
            "restart",
            name=f"attempt {attempt}",
            detail=f"after {child.reason}; starting again in {delay:.3g}s",
        )
        await asyncio.sleep(delay)

    # -- upgrades (the steps the Upgrader runs) -------------------------------------------

    def current(self) -> RunningChild:
        """The program to replace; raises UpgradeRefused when there is none to replace."""
        if self.options.ready.kind == "none":
            raise UpgradeRefused(
                "an upgrade needs a readiness gate to know the new release works: run warden "
                "with --ready notify, --ready http://..., --ready tcp or --ready exec:CMD"
            )
        if self.lifecycle.stop_reason is not None:
            raise UpgradeRefused("warden is stopping")
        child = self._child
        if child is None or not child.running or child.ready_at is None:
            raise UpgradeRefused("no ready program to upgrade; try again once it is ready")
        return child

    async def check(self) -> None:
        command = self.options.upgrade_check
        if not command:
            return
        try:
            async with asyncio.timeout(self.options.ready_timeout):
                code = await self._run_check(command)
        except TimeoutError:
            raise UpgradeFailed(
                f"--upgrade-check did not finish within {self.options.ready_timeout:g}s"
            ) from None
        except SpawnError as exc:
            raise UpgradeFailed(f"--upgrade-check: {exc}") from None
        if code != 0:
            raise UpgradeFailed(f"--upgrade-check {shlex.join(command)!r} exited with {code}")

    async def start_new(self) -> RunningChild:
        try:
            new = self._spawn()
        except SpawnError as exc:
            raise UpgradeFailed(f"the new release cannot start: {exc}") from None
        self._candidate = new  # until promoted or gone; a stop meanwhile stops it too
        failure = await self._gate(new)
        if failure is not None:
            self._candidate = None
            raise UpgradeFailed(f"new release pid {new.pid} {failure}", new_pid=new.pid)
        return new

    def promote(self, new: RunningChild, old: RunningChild) -> None:
        assert self._terminal is not None
        self._candidate = None
        self._child = new
        self._replaced.set()
        self._terminal.give_to(new.pgid)
        self._restarts.child_started()
        if old.watchdog is not None:
            old.watchdog.stop()
        if new.status is not None:
            self._relay(STATUS=new.status)
        self._publish("upgrade", name=f"pid {new.pid}", outcome="promoted", detail="serving now")

    async def drain(self, old: RunningChild) -> None:
        assert self._ladder is not None
        timeout = self.options.drain_seconds
        name = signal_name(self.options.stop_signal)
        old.send(self.options.stop_signal, group=self.options.group)
        self._ladder.signalled.add(old.pid)
        self._publish(
            "upgrade",
            name=f"pid {old.pid}",
            outcome="draining",
            detail=f"{name} to the old release; SIGKILL to its group in {timeout:g}s",
        )
        deadline = self._clock() + timeout
        try:
            async with asyncio.timeout(timeout):
                await old.ended.wait()
        except TimeoutError:
            self._publish("upgrade", name=f"pid {old.pid}", detail="drain timeout: SIGKILL")
        # What is left of its process group (workers finishing their requests) gets the rest
        # of the drain time, then SIGKILL.
        await self._ladder.stop_group(old, deadline, group_signalled=self.options.group)
        await old.ended.wait()
        self._ladder.signalled.discard(old.pid)

    def began(self, old: RunningChild) -> None:
        if self.options.ready.kind in ("http", "tcp") and self._probes_held_socket():
            self._publish(
                "upgrade",
                outcome="warning",
                detail=f"--ready {self.options.ready} reaches a socket both releases share: it "
                "cannot tell the new one from the old; use --ready notify or exec: to gate "
                "upgrades",
            )
        self._publish("upgrade", name=f"pid {old.pid}", outcome="started")
        if self._upward is not None:
            with contextlib.suppress(OSError):
                self._upward.reloading(status=f"upgrading pid {old.pid}")

    def finished(self, result: UpgradeResult) -> None:
        self._publish(
            "upgrade", outcome=result.result, duration=result.duration, detail=result.detail
        )
        if self._upward is not None and self.lifecycle.stop_reason is None:
            # Ready either way: the new release serves, or the old one still does.
            with contextlib.suppress(OSError):
                self._upward.ready(status=f"upgrade {result.result}: {result.detail}")

    def _probes_held_socket(self) -> bool:
        ready = self.options.ready
        if ready.kind == "tcp" and not ready.port:
            return True
        inet = (socket.AF_INET, socket.AF_INET6)
        ports = {held.sock.getsockname()[1] for held in self._sockets if held.sock.family in inet}
        return ready.port in ports

    def _upgrade_on_signal(self, signum: int) -> None:
        try:
            self.upgrader.trigger()
        except UpgradeRefused as exc:
            self._publish("upgrade", name=signal_name(signum), outcome="refused", detail=str(exc))

    # -- the control socket ---------------------------------------------------------------

    async def _on_control(self, command: str, request: Mapping[str, object]) -> dict[str, object]:
        if command == "status":
            return {"status": describe(self)}
        if command == "stop":
            self.lifecycle.request_stop("warden stop")
            return {"stop": {"pid": os.getpid()}}
        if command == "reload" and self.options.hup_action == "forward":
            child = self._child
            if child is None or not child.running:
                raise ControlError("no program running to reload; try again once it runs")
            child.send(signal.SIGHUP, group=self.options.group)
            return {"reload": {"action": "forward", "signal": "SIGHUP", "pid": child.pid}}
        try:
            result, coalesced = await self.upgrader.request()
        except UpgradeRefused as exc:
            raise ControlError(str(exc)) from None
        return {"ok": result.ok, "upgrade": result.to_json(self._clock(), coalesced=coalesced)}

    # -- what the program tells warden ----------------------------------------------------

    def _on_notify(self, child: RunningChild, message: NotifyMessage) -> None:
        """An sd_notify message from one run of the program; the program's is relayed up."""
        fields = message.fields
        for fd in message.fds:  # FDSTORE: not kept yet (no fd store across restarts)
            os.close(fd)
        current = child is self._child
        if "STATUS" in fields:
            child.status = fields["STATUS"]
            if current:
                self._relay(STATUS=fields["STATUS"])
        watchdog = fields.get("WATCHDOG")
        if watchdog is not None and child.watchdog is not None:
            if watchdog == "trigger":
                child.watchdog.trigger()
            elif watchdog == "1":
                child.watchdog.ping()
        if (
            fields.get("RELOADING") == "1"
            and current
            and self.lifecycle.ready
            and not self.upgrader.running
        ):
            child.reloading = True
            if self._upward is not None:
                with contextlib.suppress(OSError):
                    self._upward.reloading()
        if fields.get("READY") == "1":
            child.notified.set()
            if child.reloading:
                child.reloading = False
                if current:
                    self._relay(READY="1")
        extend = fields.get("EXTEND_TIMEOUT_USEC", "")
        if extend.isdigit() and current:
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
        # Not warden's manager's variables: a check that says READY=1 must not speak for warden.
        env = {k: v for k, v in os.environ.items() if k not in _MANAGER_VARIABLES}
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


async def _first_of(*events: asyncio.Event) -> None:
    """Return as soon as one of ``events`` is set."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


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
