"""gRPC servers (sync and ``grpc.aio``) as lifecycle components with a bounded stop.

The stop, step by step (each a line of :meth:`_GrpcComponent.stop`):

1. at DRAINING (readiness false, before the lifecycle's drain delay): the health service
   says NOT_SERVING for every service (``enter_graceful_shutdown``); RPCs are still served,
   so clients and load balancers move away on their own;
2. at the component's stop: stop accepting connections (what arrives waits in the backlog),
   then ``stop()`` rejects new RPCs and lets those in flight run for the grace: the least of
   ``grace``, the component's stop timeout and what is left of the shutdown deadline;
3. at the grace: what is still running is named (method, peer, age, streaming) in a
   :class:`~warden.integrations.WorkCut` fact, then cancelled;
4. a short settle for handlers that honour the cancellation. A sync handler that does not
   cannot hold the stop (the wait is bounded) nor the process (its thread is a daemon).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar, Unpack

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from warden.lifecycle import Lifecycle

from .._budget import RESERVE
from .._component import Serve, ServerComponent
from .._errors import ServeError
from .._executor import DaemonPool
from .._inflight import InFlight
from .._relay import Relay, private_address
from ._tracking import AioTrackingInterceptor, TrackingInterceptor

SETTLE = 0.5
"""Seconds, at most, for cancelled handlers to return before the stop gives up on them."""

_ServerT = TypeVar("_ServerT", grpc.Server, grpc.aio.Server)
_T = TypeVar("_T")
Register = Callable[[Any], object]


class _GrpcComponent(ServerComponent, Generic[_ServerT]):
    default_name = "grpc"
    _health: health.HealthServicer | health.aio.HealthServicer

    def __init__(
        self,
        lifecycle: Lifecycle,
        register: Register | None = None,
        *,
        max_workers: int = 16,
        interceptors: Sequence[Any] = (),
        options: Sequence[tuple[str, Any]] = (),
        **serve: Unpack[Serve],
    ) -> None:
        if not serve.get("sockets") and serve.get("address") is None:
            raise ServeError(
                f"gRPC component {serve.get('name', self.default_name)!r} has nowhere to "
                "listen; pass sockets= (from warden.listen_fds()) or address='HOST:PORT'"
            )
        super().__init__(lifecycle, **serve)
        self._pool = DaemonPool(max_workers, name=f"warden:grpc:{self.name}")
        self._register = register
        self._interceptors = list(interceptors)
        # Our own port must be ours alone: grpc sets SO_REUSEPORT by default, which would let
        # a second server share a port in use instead of failing.
        self._options = [("grpc.so_reuseport", 0), *options]
        self.inflight = InFlight()
        self._relay = Relay(self._handed, private_address()) if self._handed else None
        self._server: _ServerT | None = None
        self._health = self._make_health()
        self._stops: list[asyncio.Task[None]] = []  # grpc.aio's stops under way

    def _make_health(self) -> health.HealthServicer | health.aio.HealthServicer:
        raise NotImplementedError

    @property
    def server(self) -> _ServerT:
        """The grpc server (built at start)."""
        if self._server is None:
            raise RuntimeError(f"gRPC component {self.name!r} has not started yet")
        return self._server

    def _peer(self, name: str) -> str:
        return self._relay.peer(name) if self._relay is not None else name

    def _bind(self, server: grpc.Server | grpc.aio.Server) -> None:
        target = self._address
        if self._relay is not None:
            target = f"unix-abstract:{self._relay.backend}"
        assert target is not None
        try:
            port = server.add_insecure_port(target)
        except RuntimeError as exc:  # grpc's message: "Failed to bind to address ..."
            raise ServeError(
                f"gRPC component {self.name!r} cannot listen on {target!r} ({exc}); pick a "
                "free address, or run under warden run --listen to be handed a socket"
            ) from exc
        if port == 0:  # older grpcio reports a failed bind this way
            raise ServeError(f"gRPC component {self.name!r} cannot listen on {target!r}")
        self.port = port if self._relay is None else self._handed[0].getsockname()[1]

    leave_how = "health NOT_SERVING"

    def leave(self) -> None:
        """Step 1: health says NOT_SERVING; RPCs are still served."""
        self._not_serving()

    async def start(self) -> None:
        """Build the server, bind, start; returns once RPCs are accepted (health SERVING)."""
        server = self._new_server()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        if self._register is not None:
            self._register(server)
        self._bind(server)
        await self._start_serving(server)
        self._server = server
        if self._relay is not None:
            self._relay.start()

    def _new_server(self) -> _ServerT:
        raise NotImplementedError

    async def _start_serving(self, server: _ServerT) -> None:
        """Start ``server``; its health says SERVING."""
        raise NotImplementedError

    def _not_serving(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop within the budget; what the grace cut is published and kept in :attr:`cut`."""
        began = time.monotonic()
        self._budget.drain()  # a stop during start-up comes without DRAINING
        if self._relay is not None:
            self._relay.stop_accepting()
        grace = self._budget.grace(self._grace, began, self._stop_timeout)
        await self._reject_new(grace + SETTLE + RESERVE)  # grpc's own cancel comes after ours
        if not await self.inflight.wait_idle(grace):
            self._report_cut(grace, self.inflight.cut())
        settle = min(SETTLE, max(0.0, self._budget.left(began, self._stop_timeout) - RESERVE / 2))
        await self._cancel_all(settle)
        if self._relay is not None:
            left = self._budget.left(began, self._stop_timeout) - RESERVE / 2
            await self._relay.close(min(SETTLE, left))

    async def _reject_new(self, cancel_after: float) -> None:
        raise NotImplementedError

    async def _cancel_all(self, settle: float) -> None:
        raise NotImplementedError


class GrpcServer(_GrpcComponent[grpc.Server]):
    """A ``grpc.server`` (sync handlers on a pool of daemon threads) as a lifecycle component.

    Registers itself with ``lifecycle`` as the component ``name``; start returns once the
    server accepts RPCs (so the lifecycle's READY=1 is true), and the health service
    (``grpc.health.v1``) says SERVING. See the module's docstring for the stop.

    Example::

        lifecycle = warden.Lifecycle(drain_delay=5)
        handed = [sock for _, sock in warden.listen_fds()]
        GrpcServer(lifecycle, lambda server: add_GreeterServicer_to_server(Greeter(), server),
                   sockets=handed, address=None if handed else "127.0.0.1:50051")
        sys.exit(lifecycle.run())

    Args:
        lifecycle: the :class:`warden.Lifecycle` to join.
        register: called with the server before it starts, to add the servicers
            (``add_XServicer_to_server(servicer, server)`` or
            ``server.add_generic_rpc_handlers(...)``).
        name: the component's name.
        sockets: listening sockets to serve (from :func:`warden.listen_fds`): grpcio cannot
            adopt a descriptor, so they are relayed to a private listener (see
            ``_relay.py``); the peer in reports is still the TCP client.
        address: ``HOST:PORT`` to bind when no socket is handed (port 0: any free port,
            read it back from :attr:`port`).
        grace: the longest in-flight RPCs may run once the stop begins (``None``: as long as
            the stop timeout and the shutdown deadline allow).
        depends_on: components that must stop after this one (the database behind it).
        stop_timeout: the component's stop timeout (``None``: the lifecycle's default).
        max_workers: handler threads.
        interceptors: more server interceptors (after warden's tracking one).
        options: grpc channel arguments for the server.
    """

    _health: health.HealthServicer

    def _make_health(self) -> health.HealthServicer:
        return health.HealthServicer()

    def _new_server(self) -> grpc.Server:
        return grpc.server(
            self._pool,
            interceptors=[TrackingInterceptor(self.inflight, self._peer), *self._interceptors],
            options=self._options,
        )

    async def _start_serving(self, server: grpc.Server) -> None:
        server.start()
        self._health.set(health.OVERALL_HEALTH, health_pb2.HealthCheckResponse.SERVING)

    def _not_serving(self) -> None:
        assert isinstance(self._health, health.HealthServicer)
        self._health.enter_graceful_shutdown()

    async def _reject_new(self, cancel_after: float) -> None:
        self._stopped = await _on_daemon_thread(lambda: self.server.stop(cancel_after))

    async def _cancel_all(self, settle: float) -> None:
        # stop(0) again: grpc cancels every call now, from its own thread, without blocking
        # (only stop(None) waits, and for a handler deaf to cancellation it waits forever).
        await _on_daemon_thread(lambda: self.server.stop(0))
        await _wait_event(self._stopped, settle)
        self._pool.shutdown(wait=False)


class AioGrpcServer(_GrpcComponent[grpc.aio.Server]):
    """A ``grpc.aio.server`` as a lifecycle component; the same stop as :class:`GrpcServer`.

    Coroutine and async-generator handlers are cancelled at the grace; sync handlers (run
    on ``migration_thread_pool``, here a pool of daemon threads) are abandoned, as a thread
    cannot be cancelled, and named in the report. Same arguments as :class:`GrpcServer`.
    """

    _health: health.aio.HealthServicer

    def _make_health(self) -> health.aio.HealthServicer:
        return health.aio.HealthServicer()

    def _new_server(self) -> grpc.aio.Server:  # on the running loop
        return grpc.aio.server(
            migration_thread_pool=self._pool,
            interceptors=[AioTrackingInterceptor(self.inflight, self._peer), *self._interceptors],
            options=self._options,
        )

    async def _start_serving(self, server: grpc.aio.Server) -> None:
        await server.start()
        await self._health.set(health.OVERALL_HEALTH, health_pb2.HealthCheckResponse.SERVING)

    def _not_serving(self) -> None:
        assert isinstance(self._health, health.aio.HealthServicer)
        task = asyncio.get_running_loop().create_task(self._health.enter_graceful_shutdown())
        self._stops.append(task)  # held: the loop keeps only a weak reference

    async def _reject_new(self, cancel_after: float) -> None:
        self._stops.append(asyncio.create_task(self.server.stop(cancel_after)))
        await asyncio.sleep(0)  # let it begin: new RPCs are refused from here on

    async def _cancel_all(self, settle: float) -> None:
        # A second stop(0) cancels every call now (the first one's grace is longer).
        self._stops.append(asyncio.create_task(self.server.stop(0)))
        await asyncio.wait(self._stops, timeout=settle)
        for task in self._stops:
            if not task.done():
                # Waiting for a sync handler that never returns (grpc #28999): give up on it.
                task.cancel()
        await asyncio.wait(self._stops)
        self._pool.shutdown(wait=False)


async def _on_daemon_thread(fn: Callable[[], _T]) -> _T:
    """Call ``fn`` on a short-lived daemon thread and return its result.

    grpc's ``stop(grace)`` starts a thread that waits out the grace; a thread is a daemon
    only if the thread that starts it is one, and a non-daemon one would hold the process
    at exit for the whole grace when a handler never returns.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    def run() -> None:
        try:
            result = fn()
        except BaseException as exc:  # handed to the waiting loop
            loop.call_soon_threadsafe(future.set_exception, exc)
        else:
            loop.call_soon_threadsafe(future.set_result, result)

    threading.Thread(target=run, name="warden:grpc:stop", daemon=True).start()
    return await future


async def _wait_event(event: threading.Event, timeout: float) -> bool:
    """Wait for a ``threading.Event`` without blocking the loop; ``False`` on timeout."""
    if event.is_set():
        return True
    loop = asyncio.get_running_loop()
    future: asyncio.Future[bool] = loop.create_future()

    def wait() -> None:
        result = event.wait(timeout)
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
            loop.call_soon_threadsafe(_settle, future, result)

    threading.Thread(target=wait, name="warden:grpc:stop-wait", daemon=True).start()
    return await future


def _settle(future: asyncio.Future[bool], result: bool) -> None:
    if not future.done():
        future.set_result(result)
