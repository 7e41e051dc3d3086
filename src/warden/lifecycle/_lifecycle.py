"""The lifecycle: components started in dependency order, stopped in reverse within deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Literal, Self

from warden._exceptions import ConfigurationError, DependencyError, LifecycleError, StartupError

from .._durations import parse_duration
from .._exitcodes import EXIT_FAILURE, EXIT_OK
from ._calls import Callback, call, is_async
from ._clock import Clock
from ._events import (
    ComponentStarted,
    ComponentStopped,
    Event,
    Fact,
    LeakFound,
    LogsReopened,
    MainFinished,
    Outcome,
    ReloadFinished,
    ReloadSkipped,
    SignalHookFailed,
    SignalReceived,
    StateChanged,
    StopRequested,
)
from ._graph import start_order
from ._guard import STOP_SIGNALS, DeadlineGuard, write_stderr
from ._leaks import Baseline, Leak, find_leaks, take_baseline, task_stack
from ._signals import SignalIntake, signal_name
from ._states import ALLOWED, State
from ._timeline import Timeline

DEFAULT_SHUTDOWN_TIMEOUT = 25.0
"""Below Kubernetes' default 30 s grace period, leaving a buffer before its SIGKILL."""

SignalCallback = Callable[[int], object]
SecondSignal = Literal["exit", "ignore"] | SignalCallback
Main = Callable[[], Awaitable[object]] | Callable[[], object]


@dataclass(frozen=True, slots=True)
class Component:
    """A part of the service with a start and a stop, and the parts it needs."""

    name: str
    start: Callback | None
    stop: Callback | None
    depends_on: tuple[str, ...]
    stop_timeout: float | None


@dataclass(slots=True)
class _InFlight:
    """A start or stop under way, for the deadline report."""

    phase: str
    since: float
    task: asyncio.Task[Any] | None = None
    threads: list[threading.Thread] = field(default_factory=list)


class Lifecycle:
    """Starts a service's components in dependency order and stops them within a deadline.

    Example::

        lc = warden.Lifecycle(shutdown_timeout=20, drain_delay=5)
        lc.add("db", start=pool.open, stop=pool.close)
        lc.add("http", start=server.start, stop=server.stop, depends_on=["db"])
        sys.exit(lc.run())

    Args:
        shutdown_timeout: the hard deadline for the whole shutdown, in seconds or as a
            duration string; ``None`` reads ``$WARDEN_SHUTDOWN_TIMEOUT``, else 25 s. Past it
            the process exits with code 124 even if the event loop is blocked.
        drain_delay: how long readiness is false before components stop (the window in which
            load balancers notice), like a Kubernetes preStop sleep. It runs inside the
            shutdown deadline, so it must be shorter.
        stop_timeout: the default stop timeout of a component (``None``: only the shutdown
            deadline bounds it).
        on_second_signal: what a second SIGTERM/SIGINT does: ``"exit"`` at once with 128+N,
            ``"ignore"``, or a callable given the signal number, called in the loop.
        handle_signals: install signal handlers while running (main thread only).
        clock: what the drain delay and the stop timeouts wait on (and what the service's
            parts built on the lifecycle read, :attr:`clock`); a test gives a
            :class:`~warden.lifecycle.ManualClock` to jump over them. The shutdown deadline
            is the guard thread's, in real time.
    """

    #: The fact a change of state is published as. A service built on the lifecycle whose own
    #: facts tell people its states (the supervisor: the program's start, readiness and end)
    #: publishes a kind of it that is quiet on a terminal.
    _state_fact: ClassVar[type[StateChanged]] = StateChanged

    def __init__(
        self,
        *,
        shutdown_timeout: float | str | None = None,
        drain_delay: float | str = 0.0,
        stop_timeout: float | str | None = None,
        on_second_signal: SecondSignal = "exit",
        handle_signals: bool = True,
        clock: Clock | None = None,
    ) -> None:
        #: The one clock the service's waits run on.
        self.clock = clock or Clock()
        if shutdown_timeout is None:
            env = os.environ.get("WARDEN_SHUTDOWN_TIMEOUT")
            self.shutdown_timeout = (
                DEFAULT_SHUTDOWN_TIMEOUT
                if env is None
                else parse_duration(env, what="WARDEN_SHUTDOWN_TIMEOUT", allow_zero=False)
            )
        else:
            self.shutdown_timeout = parse_duration(
                shutdown_timeout, what="shutdown_timeout", allow_zero=False
            )
        self.drain_delay = parse_duration(drain_delay, what="drain_delay")
        if self.drain_delay >= self.shutdown_timeout:
            raise ConfigurationError(
                f"drain_delay={self.drain_delay:g}s is not shorter than shutdown_timeout="
                f"{self.shutdown_timeout:g}s; the drain runs inside the shutdown deadline, so "
                "lengthen the timeout or shorten the drain"
            )
        self.stop_timeout = (
            None
            if stop_timeout is None
            else parse_duration(stop_timeout, what="stop_timeout", allow_zero=False)
        )
        if on_second_signal not in ("exit", "ignore") and not callable(on_second_signal):
            raise ConfigurationError(
                f"on_second_signal={on_second_signal!r} is not valid; "
                "use 'exit', 'ignore' or a callable taking the signal number"
            )
        self._on_second_signal = on_second_signal
        self._handle_signals = handle_signals
        self.timeline = Timeline()
        self.exit_code = EXIT_OK
        self.leaks: list[Leak] = []
        self._state = State.CREATED
        self._components: dict[str, Component] = {}
        self._started: list[str] = []
        self._in_flight: dict[str, _InFlight] = {}
        self._reload_hooks: list[Callback] = []
        self._reopen_hooks: list[Callback] = []
        self._signal_hooks: dict[int, list[SignalCallback]] = {}
        self._forced_exit_hooks: list[Callable[[], object]] = []
        self._hold_signals = False
        #: A KeyboardInterrupt or SystemExit a stop raised: re-raised once every stop ran.
        self._stop_interrupt: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._stop_event: asyncio.Event | None = None
        self._stop_reason: str | None = None
        self._stopping = False  # set from the guard thread too: a plain bool store is atomic
        self._ready_checks: list[tuple[Callable[[], bool], str]] = []
        self._stop_signals = 0
        self._draining_since: float | None = None
        self._reload_task: asyncio.Task[None] | None = None
        self._reload_again = False
        self._stop_heard = False  # someone awaits wait_for_stop(): main will end by itself
        self._background: set[asyncio.Future[object]] = set()
        self._guard: DeadlineGuard | None = None
        self._intake: SignalIntake | None = None
        self._baseline: Baseline | None = None

    # -- registration -------------------------------------------------------------------

    def add(
        self,
        name: str,
        *,
        start: Callback | None = None,
        stop: Callback | None = None,
        depends_on: Iterable[str] = (),
        stop_timeout: float | str | None = None,
    ) -> None:
        """Register a component. ``start`` and ``stop`` may be sync or async callables.

        Dependencies may be registered later; unknown names and cycles are reported when the
        service starts, before any component starts.
        """
        if self._state is not State.CREATED:
            raise LifecycleError(
                f"cannot add component {name!r}: the lifecycle is {self._state.value}; "
                "register every component before run() or 'async with'"
            )
        if not isinstance(name, str) or not name:
            raise DependencyError(f"component name must be a non-empty string, got {name!r}")
        if name in self._components:
            raise DependencyError(f"component {name!r} is already registered; pick another name")
        deps = (depends_on,) if isinstance(depends_on, str) else tuple(depends_on)
        if name in deps:
            raise DependencyError(f"component {name!r} depends on itself; remove {name!r}")
        for fn, what in ((start, "start"), (stop, "stop")):
            if fn is not None and not callable(fn):
                raise ConfigurationError(f"component {name!r}: {what}={fn!r} is not callable")
        timeout = (
            None
            if stop_timeout is None
            else parse_duration(stop_timeout, what=f"stop_timeout of {name!r}", allow_zero=False)
        )
        self._components[name] = Component(name, start, stop, deps, timeout)

    def on_reload(self, fn: Callback) -> Callback:
        """Call ``fn`` on SIGHUP or :meth:`reload` (coalesced; usable as a decorator)."""
        self._reload_hooks.append(fn)
        return fn

    def ready_when(self, check: Callable[[], bool], *, what: str = "a readiness check") -> None:
        """Count ``check()`` in :attr:`ready`: false while it returns false (memory at
        ``high``: shed load); ``what`` names it in :attr:`not_ready_because`. It is called on
        whatever thread reads readiness (a health check's), so it must only read a value,
        never block."""
        self._ready_checks.append((check, what))

    def on_reopen_logs(self, fn: Callback) -> Callback:
        """Call ``fn`` on SIGUSR1 (usable as a decorator)."""
        self._reopen_hooks.append(fn)
        return fn

    def on_signal(self, signum: int, fn: SignalCallback) -> None:
        """Call ``fn(signum)`` in the loop whenever ``signum`` arrives (coalesced).

        Runs in addition to the built-in handling of TERM, INT, HUP and USR1. A coroutine
        returned by ``fn`` is run as a task.
        """
        self._signal_hooks.setdefault(signum, []).append(fn)
        if self._intake is not None and self._guard is not None:
            self._intake.install([signum])
            self._guard.handled = self._intake.signals

    def on_forced_exit(self, fn: Callable[[], object]) -> None:
        """Call ``fn()`` on the guard thread right before a forced exit (the deadline passed,
        or a second stop signal with ``on_second_signal="exit"``).

        It runs while the event loop may be blocked, so it must not wait for the loop, take
        a lock the loop may hold, or block: send a signal, write a byte. The supervisor
        SIGKILLs the program's process group here, so nothing it started outlives warden.
        Nothing runs when the last resort (a kernel SIGKILL, ``MARGIN`` seconds after the
        deadline) ends a process whose GIL was held past the deadline.
        """
        self._forced_exit_hooks.append(fn)

    def hold_signals_at_exit(self) -> None:
        """After the shutdown, leave the signals the lifecycle handled ignored, not restored.

        For a process that exits right after :meth:`run` returns (``warden run``): a signal
        arriving between the restore and the exit would otherwise meet its default action
        and replace the exit code (SIGUSR1 -> 138). A library embedded in a longer-lived
        process should not call this.
        """
        self._hold_signals = True

    # -- observation --------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def ready(self) -> bool:
        """Readiness: true only while the service should receive new work.

        Turns false the instant a stop signal is seen, on the guard thread, before the loop
        has processed it: a health check answered from another thread is right at once.
        False, too, while a :meth:`ready_when` check says so.
        """
        return self.not_ready_because is None

    @property
    def not_ready_because(self) -> str | None:
        """Why :attr:`ready` is false (``"stopping"``, the state, or the :meth:`ready_when`
        check that says no), or None when it is true."""
        if not self._state.serving:
            return self._state.value
        if self._stopping:  # the guard thread saw the signal; the loop has not moved yet
            return "stopping"
        return next((what for check, what in self._ready_checks if not check()), None)

    @property
    def stop_reason(self) -> str | None:
        return self._stop_reason

    # -- control ------------------------------------------------------------------------

    def request_stop(self, reason: str = "requested", *, exit_code: int | None = None) -> None:
        """Begin the graceful stop; safe from any thread, a no-op once stopping.

        ``exit_code``: what :meth:`run` returns after this stop when nothing fails in it; a
        stop that is itself a failure gives one a service manager restarts on (the memory
        sentinel's stop at ``critical`` gives 1, for ``Restart=on-failure``). None: 0.
        """
        if self._loop is None:
            raise LifecycleError("request_stop() before the lifecycle runs; start it first")
        if threading.get_ident() == self._loop_thread:
            self._begin_stop(reason, exit_code)
        else:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._begin_stop, reason, exit_code)

    def reload(self) -> None:
        """Run the reload hooks, as SIGHUP does; safe from any thread."""
        if self._loop is None:
            raise LifecycleError("reload() before the lifecycle runs; start it first")
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._start_reload)

    async def wait_for_stop(self) -> str:
        """Wait until a stop is requested; returns the reason."""
        if self._stop_event is None:
            raise LifecycleError("wait_for_stop() outside a running lifecycle")
        self._stop_heard = True
        await self._stop_event.wait()
        return self._stop_reason or "requested"

    # -- entry points -------------------------------------------------------------------

    def run(self, main: Main | None = None) -> int:
        """Run the service in the calling thread until it stops; return the exit code.

        Starts the components, then runs ``main`` (sync or async) if given, and stops when a
        signal arrives, :meth:`request_stop` is called, or ``main`` returns (an ``int`` it
        returns becomes the exit code of a clean stop). Without ``main`` it serves until a
        stop is requested.

        A run that ends in failure with nothing observing the timeline (no
        :func:`warden.log_events`) says why on stderr, one line per failure, as Python does
        for an uncaught exception: a service never exits 1 in silence.
        """
        code = asyncio.run(self._run(main))
        if code != EXIT_OK and not self.timeline.reported:
            _say_unobserved(self.timeline, code)
        return code

    async def __aenter__(self) -> Self:
        await self._startup()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self.exit_code = EXIT_FAILURE
            self._begin_stop(f"error: {type(exc).__name__}: {exc}")
        await self._shutdown()

    async def _run(self, main: Main | None) -> int:
        try:
            await self._startup()
        except StartupError:
            return self.exit_code
        # A stop that came during start-up leaves the lifecycle not ready: main never runs.
        main_task = None
        if main is not None and self._state is State.READY:
            main_task = asyncio.create_task(self._run_main(main))
        try:
            assert self._stop_event is not None
            await self._stop_event.wait()
        finally:
            await self._shutdown(main_task)
        return self.exit_code

    async def _run_main(self, main: Main) -> None:
        started = self.clock.now()
        try:
            if is_async(main):
                result = await main()  # type: ignore[misc]
            else:
                box: list[object] = []
                await call(lambda: box.append(main()), thread_name="warden:main")
                result = box[0]
        except asyncio.CancelledError:
            self.publish(MainFinished(result=Outcome.CANCELLED, took=self.clock.now() - started))
            raise
        except SystemExit as exc:  # sys.exit(n) in main: a return with an exit code
            result = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except Exception as exc:
            self.exit_code = EXIT_FAILURE
            self.publish(
                MainFinished(
                    result=Outcome.FAILED, took=self.clock.now() - started, error=_err(exc)
                )
            )
            self._begin_stop("main failed")
            return
        if isinstance(result, int) and not isinstance(result, bool):
            self.exit_code = result
        self.publish(MainFinished(result=Outcome.OK, took=self.clock.now() - started))
        self._begin_stop("main returned")

    # -- start-up -----------------------------------------------------------------------

    async def _startup(self) -> None:
        if self._state is not State.CREATED:
            raise LifecycleError(
                f"this lifecycle is {self._state.value}; a Lifecycle runs once, create a new one"
            )
        order = start_order({n: c.depends_on for n, c in self._components.items()})
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._stop_event = asyncio.Event()
        self._baseline = take_baseline()
        self._guard = DeadlineGuard(
            timeout=self.shutdown_timeout,
            forward=self._forward_signal,
            on_first_stop_signal=self._stop_signal_seen,
            report=self._deadline_report,
            exit_on_second_signal=self._on_second_signal == "exit",
            forced_exit_hooks=self._forced_exit_hooks,
        )
        if self._handle_signals:
            guard = self._guard
            intake = SignalIntake(self._guard.wake_fd, on_taken=guard.set_chain_fd)
            try:
                intake.install([signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1])
                intake.install(self._signal_hooks)
                intake.watch_loop(self._loop)
            except BaseException:
                intake.restore()
                self._guard.finish()
                raise
            self._intake = intake
            self._guard.set_chain_fd(intake.previous_wakeup_fd)
            self._guard.handled = intake.signals
        self._guard.start()
        self._set_state(State.STARTING)
        began = self.clock.now()
        for name in order:
            if self._stop_event.is_set():
                self.publish(
                    ComponentStarted(component=name, result=Outcome.SKIPPED, error="stop requested")
                )
                continue
            error = await self._start_one(self._components[name])
            if error is not None:
                self.exit_code = EXIT_FAILURE
                self._begin_stop(f"component {name!r} failed to start")
                await self._shutdown()
                raise StartupError(name, error) from error
        if self._stop_event.is_set():
            return
        self._set_state(State.READY, duration=self.clock.now() - began)

    async def _start_one(self, component: Component) -> BaseException | None:
        """Start one component; returns the error if its start failed."""
        assert self._stop_event is not None
        name = component.name
        if component.start is None:
            self._started.append(name)
            self.publish(ComponentStarted(component=name, result=Outcome.OK, took=0.0))
            return None
        flight = self._track(name, "starting")
        task = asyncio.create_task(
            call(
                component.start, thread_name=f"warden:start:{name}", on_thread=flight.threads.append
            )
        )
        flight.task = task
        stop_wait = asyncio.create_task(self._stop_event.wait())
        try:
            await asyncio.wait({task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done() and is_async(component.start):
                # An async start can be cancelled: it never finished, so it is not stopped.
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                self.publish(
                    ComponentStarted(
                        component=name, result=Outcome.CANCELLED, error="stop requested"
                    )
                )
                return None
            # A sync start cannot be interrupted; once it returns the component is started
            # and will be stopped like the others.
            await asyncio.wait({task})
        finally:
            stop_wait.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stop_wait  # a cancelled task not awaited would show in the leak report
            self._in_flight.pop(name, None)
        duration = self.clock.now() - flight.since
        error = task.exception()
        if error is not None:
            self.publish(
                ComponentStarted(
                    component=name, result=Outcome.FAILED, took=duration, error=_err(error)
                )
            )
            return error
        self._started.append(name)
        self.publish(ComponentStarted(component=name, result=Outcome.OK, took=duration))
        return None

    # -- stopping -----------------------------------------------------------------------

    def _begin_stop(self, reason: str, exit_code: int | None = None) -> None:
        """Turn readiness false and arm the deadline; the rest happens in _shutdown."""
        assert self._stop_event is not None and self._guard is not None
        if self._stop_event.is_set():
            return
        if exit_code is not None and self.exit_code == EXIT_OK:
            self.exit_code = exit_code
        self._stop_reason = reason
        self._stopping = True
        self._stop_event.set()
        self._guard.arm()
        self.publish(StopRequested(reason=reason))
        if self._state.serving:
            self._draining_since = self.clock.now()
            self._set_state(State.DRAINING)

    async def _shutdown(self, main_task: asyncio.Task[None] | None = None) -> None:
        assert self._stop_event is not None and self._guard is not None
        self._begin_stop("service body finished")
        try:
            if self._draining_since is not None:
                drained = self._draining_since + self.drain_delay
                if drained > self.clock.now():
                    await self.clock.sleep_until(drained)
            if main_task is not None and not main_task.done() and self._stop_heard:
                # main listens for the stop (it called wait_for_stop()): it finishes its own
                # way, as long as it needs; the shutdown deadline bounds it, and names it.
                # A main that never asked cannot hear the stop but by cancellation, below.
                flight = self._track("main", "finishing")
                flight.task = main_task
                try:
                    await asyncio.wait({main_task})
                finally:
                    self._in_flight.pop("main", None)
            for task in (self._reload_task, main_task):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            self._set_state(State.STOPPING)
            began = self.clock.now()
            await self._stop_components()
            self._set_state(State.STOPPED, duration=self.clock.now() - began)
            # Still under the deadline guard: the leak scan is part of the shutdown.
            assert self._baseline is not None
            self.leaks = find_leaks(self._baseline)
            for leak in self.leaks:
                self.publish(LeakFound(leak=leak))
        finally:
            if self._intake is not None:
                self._intake.restore(ignore=self._hold_signals)
                self._intake = None
            self._guard.finish()
        if self._stop_interrupt is not None:
            # Every stop ran; now the interrupt a stop raised goes on to the caller.
            interrupt, self._stop_interrupt = self._stop_interrupt, None
            raise interrupt

    async def _stop_components(self) -> None:
        started = list(self._started)
        done = {name: asyncio.Event() for name in started}
        dependents = {
            name: [m for m in started if name in self._components[m].depends_on] for name in started
        }

        async def stop_one(name: str) -> None:
            try:
                for dependent in dependents[name]:
                    await done[dependent].wait()
                await self._stop_one(self._components[name])
            finally:
                done[name].set()

        await asyncio.gather(*(stop_one(name) for name in started))

    async def _stop_one(self, component: Component) -> None:
        name = component.name
        if component.stop is None:
            self.publish(ComponentStopped(component=name, result=Outcome.OK, took=0.0))
            return
        flight = self._track(name, "stopping")
        timeout = component.stop_timeout or self.stop_timeout
        task = asyncio.create_task(
            _interrupt_as_value(
                call(
                    component.stop,
                    thread_name=f"warden:stop:{name}",
                    on_thread=flight.threads.append,
                )
            )
        )
        flight.task = task
        outcome, detail = Outcome.OK, None
        try:
            interrupt = await self.clock.wait_for(task, timeout)
            if interrupt is not None:
                # KeyboardInterrupt or SystemExit from a stop: it fails this component, and
                # the stops of the components it depends on still run; it is re-raised after.
                if self._stop_interrupt is None:
                    self._stop_interrupt = interrupt
                outcome, detail = Outcome.FAILED, _err(interrupt)
        except TimeoutError:
            outcome = Outcome.TIMEOUT
            detail = f"did not stop within its stop_timeout of {timeout:g}s"
        except Exception as exc:
            outcome, detail = Outcome.FAILED, _err(exc)
        finally:
            self._in_flight.pop(name, None)
        if outcome is not Outcome.OK:
            self.exit_code = EXIT_FAILURE
        duration = self.clock.now() - flight.since
        self.publish(ComponentStopped(component=name, result=outcome, took=duration, error=detail))

    # -- signals and reload -------------------------------------------------------------

    def _stop_signal_seen(self) -> None:
        """Called on the guard thread at the first SIGTERM/SIGINT, even if the loop is stuck."""
        self._stopping = True

    def _forward_signal(self, signum: int) -> None:
        """Called on the guard thread: hand the signal to the loop."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(self._on_signal, signum)

    def _on_signal(self, signum: int) -> None:
        assert self._stop_event is not None
        name = signal_name(signum)
        if signum in STOP_SIGNALS:
            # "Second" means a second stop *signal*, as the guard counts them: a stop that
            # began otherwise (main returned, request_stop) does not make a SIGTERM second.
            self._stop_signals += 1
            second = self._stop_signals > 1
            self.publish(SignalReceived(signum=signum, second_stop=second))
            if not second:
                self._begin_stop(f"signal {name}")
            elif callable(self._on_second_signal):
                self._run_hook(self._on_second_signal, signum)
        elif signum == signal.SIGHUP and self._reload_hooks:
            self.publish(SignalReceived(signum=signum))
            self._start_reload()
        elif signum == signal.SIGUSR1 and self._reopen_hooks:
            self.publish(SignalReceived(signum=signum))
            self._in_background(self._run_hooks(LogsReopened, self._reopen_hooks))
        for hook in self._signal_hooks.get(signum, ()):
            self._run_hook(hook, signum)

    def _run_hook(self, hook: SignalCallback, signum: int) -> None:
        try:
            result = hook(signum)
            if asyncio.iscoroutine(result):
                self._in_background(result)
        except Exception:
            self.publish(SignalHookFailed(signum=signum, error=traceback.format_exc()))

    def _start_reload(self) -> None:
        if not self._state.serving:
            self.publish(ReloadSkipped(state=self._state))
            return
        if self._reload_task is not None and not self._reload_task.done():
            self._reload_again = True  # coalesce: one more round after this one
            return
        self._reload_task = asyncio.create_task(self._reload())

    async def _reload(self) -> None:
        while True:
            self._reload_again = False
            self._set_state(State.RELOADING)
            await self._run_hooks(ReloadFinished, self._reload_hooks)
            if self._state is State.RELOADING:
                self._set_state(State.READY)
            if not self._reload_again or not self._state.serving:
                return

    async def _run_hooks(
        self, fact: type[ReloadFinished | LogsReopened], hooks: list[Callback]
    ) -> None:
        began = self.clock.now()
        errors = []
        for hook in hooks:
            try:
                await call(hook, thread_name=f"warden:{fact.kind}")
            except Exception as exc:
                errors.append(_err(exc))
        self.publish(
            fact(
                result=Outcome.FAILED if errors else Outcome.OK,
                took=self.clock.now() - began,
                errors=tuple(errors),
            )
        )

    # -- bookkeeping --------------------------------------------------------------------

    def _in_background(self, coro: Coroutine[object, object, object]) -> None:
        # The loop keeps only weak references to tasks: hold one until the task is done.
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _set_state(self, state: State, *, duration: float | None = None) -> None:
        if state is self._state:
            return
        if state not in ALLOWED[self._state]:
            raise LifecycleError(f"invalid transition {self._state.value} -> {state.value}")
        self._state = state
        self.publish(self._state_fact(state=state, took=duration))

    def publish(self, fact: Fact) -> Event:
        """Put ``fact`` on the timeline, with the current state; call from the loop's thread.

        The one way anything built on the lifecycle (the supervisor, the config store, the
        memory sentinel) reports what happened: observers see it like the lifecycle's own.
        """
        return self.timeline.publish(fact, self._state)

    def _track(self, name: str, phase: str) -> _InFlight:
        flight = _InFlight(phase, self.clock.now())
        self._in_flight[name] = flight
        return flight

    def _deadline_report(self, headline: str) -> str:
        """Runs on the guard thread while the loop may be blocked: read, never wait."""
        now = self.clock.now()
        frames = sys._current_frames()
        lines = [f"warden: {headline}\n"]
        for name, flight in list(self._in_flight.items()):
            lines.append(
                f"warden: still {flight.phase}: component {name!r} "
                f"(for {now - flight.since:.3f}s)\n"
            )
            if flight.task is not None:
                with contextlib.suppress(Exception):
                    lines.extend("  " + line for line in task_stack(flight.task).splitlines(True))
            for thread in flight.threads:
                frame = frames.get(thread.ident or -1)
                if frame is not None:
                    lines.append(f"  on thread {thread.name!r}:\n")
                    lines.extend(_indented(traceback.format_stack(frame)))
        if self._loop_thread is not None and self._loop_thread in frames:
            lines.append("warden: event loop thread is at:\n")
            lines.extend(_indented(traceback.format_stack(frames[self._loop_thread])))
        return "".join(lines)


def _indented(entries: list[str]) -> list[str]:
    """A formatted stack, two spaces in: each entry is a File line *and* its source line."""
    return ["  " + line for line in "".join(entries).splitlines(True)]


async def _interrupt_as_value(work: Awaitable[None]) -> BaseException | None:
    """Await ``work``; a KeyboardInterrupt or SystemExit it raises is returned, not raised.

    Raised inside a task, either would escape the event loop itself (asyncio re-raises them
    from the loop), ending the whole shutdown with the stops that had not run yet.
    """
    try:
        await work
    except (KeyboardInterrupt, SystemExit) as exc:
        return exc
    return None


#: At most this many failures are said when nothing observes the timeline (the last ones).
_UNOBSERVED_LINES = 10


def _say_unobserved(timeline: Timeline, code: int) -> None:
    """The failures of a run nobody observed, on stderr: ``warden: main failed:
    ZeroDivisionError: division by zero``, then the exit code and where the rest is."""
    lines = []
    for event in timeline:
        if not event.fact.warning:
            continue
        words = " ".join(w for w in (event.kind, event.name, event.outcome) if w)
        detail = (event.detail or "").strip().splitlines()
        lines.append(f"warden: {words}: {detail[0]}" if detail else f"warden: {words}")
    if not lines:
        return  # an exit code main chose: nothing failed to say
    lines = lines[-_UNOBSERVED_LINES:]
    lines.append(f"warden: exit {code} (warden.log_events(lc) logs every step)")
    write_stderr("\n".join(lines) + "\n")


def _err(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
