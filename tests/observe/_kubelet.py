"""A kubelet and an endpoints-following load balancer, played as Kubernetes documents them.

What a pod's termination looks like from outside ("Termination of Pods" in the Kubernetes
docs), in the harness's terms:

* The **readiness probe** (``GET /readyz`` every ``readiness_period``) marks the pod not ready
  after ``readiness_failures`` failures in a row, ready again after one success.
* The **endpoints controller** publishes the ready pods; the **load balancer** (kube-proxy, an
  ingress) routes each new connection to one of them, and hears of every change only after
  the **propagation delay**. A pod being deleted is removed from the endpoints at once (it
  is terminating), which reaches the load balancer a propagation delay later.
* Deleting a pod, the **kubelet** runs the ``preStop`` hook (here: the sleep action), then
  sends SIGTERM, and SIGKILL when ``grace`` seconds have passed since the deletion (preStop
  included).

The load balancer is a TCP proxy on loopback: each client connection goes to the next ready
endpoint; a connection it cannot place (no endpoint, connect refused or reset) is a failed
request for the client, as it is behind kube-proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field

from tests._proc import Proc


@dataclass(frozen=True)
class Timing:
    """The numbers of a termination, in seconds."""

    pre_stop: float
    propagation: float
    readiness_period: float
    readiness_failures: int
    grace: float


@dataclass
class Pod:
    """A running server: its process, where it serves, where its health answers."""

    name: str
    proc: Proc
    address: tuple[str, int]
    health: str  # base URL of /readyz
    ready: bool = False
    deleted: bool = False


@dataclass
class Tally:
    ok: int = 0
    failed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def fail(self, reason: str) -> None:
        self.failed += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


class LoadBalancer:
    """Routes each connection to the next endpoint it knows of."""

    def __init__(self) -> None:
        self.endpoints: list[tuple[str, int]] = []
        self._next = itertools.count()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._pipes:
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            if not self.endpoints:
                return  # nowhere to go: the client sees its connection closed unanswered
            endpoint = self.endpoints[next(self._next) % len(self.endpoints)]
            try:
                up_reader, up_writer = await asyncio.open_connection(*endpoint)
            except OSError:
                return  # refused: the client gets nothing, as behind a real proxy
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                up_writer.close()
        finally:
            writer.close()
            self._pipes.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


class Cluster:
    """The kubelet, the endpoints controller and the load balancer, for a set of pods."""

    def __init__(self, timing: Timing) -> None:
        self.timing = timing
        self.lb = LoadBalancer()
        self.pods: list[Pod] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.log: list[tuple[float, str]] = []

    def _note(self, what: str) -> None:
        self.log.append((time.monotonic(), what))

    def _later(self, delay: float, fn: Callable[[], None]) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            fn()

        self._spawn(run())

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop every pod still running (SIGTERM, then SIGKILL to it and what it started)."""
        running = [pod for pod in self.pods if pod.proc.popen.poll() is None]
        trees = {pod.name: [pod.proc.pid, *_descendants(pod.proc.pid)] for pod in running}
        for pod in running:
            os.kill(pod.proc.pid, signal.SIGTERM)
        for pod in running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.to_thread(pod.proc.popen.wait), 10)
            for pid in trees[pod.name]:  # the program is in a session of its own: by pid
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.lb.close()

    # -- the endpoints controller and the proxy's view of it ----------------------------

    def _publish(self, pod: Pod, routed: bool) -> None:
        """The endpoints change now; the load balancer hears of it a propagation delay later."""

        def apply() -> None:
            if routed and pod.address not in self.lb.endpoints:
                self.lb.endpoints.append(pod.address)
            elif not routed and pod.address in self.lb.endpoints:
                self.lb.endpoints.remove(pod.address)
            self._note(f"lb {'adds' if routed else 'removes'} {pod.name}")

        self._later(self.timing.propagation, apply)

    async def _probe(self, pod: Pod) -> None:
        failures = 0
        while pod.proc.popen.poll() is None:
            ok = await _get_ok(pod.health + "/readyz", timeout=self.timing.readiness_period)
            failures = 0 if ok else failures + 1
            if ok and not pod.ready and not pod.deleted:
                pod.ready = True
                self._note(f"{pod.name} ready")
                self._publish(pod, True)
            elif pod.ready and failures >= self.timing.readiness_failures:
                pod.ready = False
                self._note(f"{pod.name} not ready")
                self._publish(pod, False)
            await asyncio.sleep(self.timing.readiness_period)

    def add(self, pod: Pod) -> None:
        self.pods.append(pod)
        self._spawn(self._probe(pod))

    # -- the kubelet deleting a pod -----------------------------------------------------

    async def delete(self, pod: Pod) -> tuple[int, bool]:
        """Terminate ``pod`` as the kubelet does; its exit code and whether SIGKILL was needed."""
        began = time.monotonic()
        pod.deleted = True
        self._note(f"delete {pod.name}")
        if pod.ready:  # a terminating pod leaves the endpoints at once
            pod.ready = False
            self._publish(pod, False)
        if self.timing.pre_stop:
            await asyncio.sleep(self.timing.pre_stop)  # the preStop sleep action
        self._note(f"SIGTERM {pod.name}")
        os.kill(pod.proc.pid, signal.SIGTERM)
        remaining = self.timing.grace - (time.monotonic() - began)
        try:
            code = await asyncio.wait_for(asyncio.to_thread(pod.proc.popen.wait), remaining)
            return code, False
        except TimeoutError:
            self._note(f"SIGKILL {pod.name}")
            os.kill(pod.proc.pid, signal.SIGKILL)
            return await asyncio.to_thread(pod.proc.popen.wait), True


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{parent}/task"):
                with (
                    contextlib.suppress(OSError),
                    open(f"/proc/{parent}/task/{task}/children") as f,
                ):
                    kids = [int(k) for k in f.read().split()]
                    found += kids
                    todo += kids
    return found


async def _get_ok(url: str, timeout: float) -> bool:
    host, _, rest = url.removeprefix("http://").partition(":")
    port, _, path = rest.partition("/")
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, int(port))
            try:
                writer.write(
                    f"GET /{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
                )
                status = await reader.readline()
                return status.split()[1:2] == [b"200"]
            finally:
                writer.close()
    except (OSError, TimeoutError, IndexError):
        return False


async def load(port: int, tally: Tally, until: asyncio.Event, clients: int = 16) -> None:
    """Requests through the load balancer, one connection each, until ``until`` is set."""

    async def client() -> None:
        while not until.is_set():
            try:
                async with asyncio.timeout(5):
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    try:
                        writer.write(
                            b"GET /slow?ms=5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                        )
                        response = await reader.read()
                    finally:
                        writer.close()
            except (OSError, TimeoutError) as exc:
                tally.fail(type(exc).__name__)
                continue
            if response.startswith(b"HTTP/1.1 200 "):
                tally.ok += 1
            else:
                tally.fail(response[:12].decode("latin-1") or "closed unanswered")

    await asyncio.gather(*(client() for _ in range(clients)))
