"""Asking a run whether it works: its readiness gate, and the upgrade window's health checks.

How each ``--ready`` gate probes is in ``_readiness.py``; this is what warden does with a run
around it. A run that passes is ready (its watchdog starts, its memory is measured as a fresh
copy's); one that misses its gate is stopped as systemd stops a unit after a start timeout:
the stop signal to its group first, SIGKILL only after a timeout, because it may be accepting
on the shared sockets already.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Callable, Sequence

from ..._exceptions import NotReady
from ...lifecycle import Clock, Fact
from .._events import ChildNotReady, ChildReady
from .._options import SupervisorOptions
from ..process._ladder import StopLadder
from ..process._reaper import Reaper
from ..process._reason import ExitKind
from ..process._spawn import spawn_child
from ..sockets._steering import Steering
from ._child import RunningChild
from ._launcher import MANAGER_VARIABLES
from ._program import Program
from ._program_memory import ProgramMemory
from ._readiness import GateInputs, ReadySpec, Seen, http_ok, wait_ready


class Gate:
    """The readiness gate of every run, and the checks an upgrade's window asks of one.

    Args:
        options: ``--ready``, ``--ready-timeout``, ``--upgrade-confirm-url``.
        program: the sockets warden holds (a probe of a held port), and which run ended.
        reaper: collects an ``exec:`` check, as every child of warden.
        ladder: stops a run that misses its gate.
        memory: told when a run is ready (a fresh copy's size is measured then).
        publish: puts a fact on the timeline.
        clock: the supervisor's clock.
    """

    def __init__(
        self,
        options: SupervisorOptions,
        *,
        program: Program,
        reaper: Reaper,
        ladder: StopLadder,
        memory: ProgramMemory,
        publish: Callable[[Fact], object],
        clock: Clock,
    ) -> None:
        self._options = options
        self._program = program
        self._reaper = reaper
        self._ladder = ladder
        self._memory = memory
        self._publish = publish
        self._clock = clock

    async def wait(
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
        self._memory.ready(child)
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
        await self._ladder.stop_run(child, stop_within)
        if running:
            assert child.reason is not None
            child.reason = child.reason.refined(ExitKind.NOT_READY, str(exc))
            self._program.record_end(child)
        self._publish(ChildNotReady(pid=child.pid, reason=child.reason))

    # -- the upgrade window's health checks -----------------------------------------------

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

    async def run_check(self, command: Sequence[str]) -> int:
        """Run an ``exec:`` check (or ``--upgrade-check``) as warden's child; the reaper
        collects it."""
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

    # -- what a probe reaches -------------------------------------------------------------

    def probes_held_socket(self) -> bool:
        """Whether the ``--ready`` gate connects to a socket every release shares."""
        ready = self._options.ready
        if ready.kind == "tcp" and not ready.port:
            return True
        return ready.kind in ("http", "tcp") and self.holds_port(ready.port)

    def holds_port(self, port: int) -> bool:
        """Whether ``port`` is one of the TCP sockets warden holds for the program."""
        inet = (socket.AF_INET, socket.AF_INET6)
        held = self._program.sockets
        return any(h.sock.getsockname()[1] == port for h in held if h.sock.family in inet)

    def held_tcp_address(self) -> tuple[str, int] | None:
        """Where a bare ``--ready tcp`` connects: the first TCP socket warden holds."""
        for held in self._program.sockets:
            if held.sock.family in (socket.AF_INET, socket.AF_INET6):
                host, port = held.sock.getsockname()[:2]
                wildcard = {"0.0.0.0": "127.0.0.1", "::": "::1"}
                return wildcard.get(host, host), port
        return None
