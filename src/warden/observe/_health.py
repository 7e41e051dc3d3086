"""What ``/livez``, ``/readyz`` and ``/metrics`` answer, whoever serves them.

The standalone server (``_server.py``), the ASGI app and the WSGI app all ask one
:class:`Health`; it holds no socket and no thread of its own.

* **Readiness** is ``lifecycle.ready``, read as it is: the lifecycle's guard thread turns it
  false the instant a stop signal arrives, before the event loop has run, so ``/readyz`` says
  503 at once even when the loop is busy. ``?verbose`` lists each component, the configuration
  revision, the memory level and whatever the caller's ``details`` adds (the supervisor: the
  child).
* **Liveness** means the event loop still runs callbacks: ``/livez`` asks the lifecycle's loop
  for a round trip (``call_soon_threadsafe``) at request time and answers 503 when it does not
  come back within ``wedged_after`` seconds. Nothing ticks in between, so an idle service has
  no timer to wake it (a heartbeat task would wake it every period, forever). A loop blocked
  by a long synchronous call, a deadlock or an endless loop fails the check; a loop that is
  merely busy answers, late. Before the lifecycle runs and after it stopped there is no loop
  to ask, and the process is live.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from ..lifecycle import ComponentStarted, ComponentStopped, Event, State, Timeline
from ._metrics import Metrics

Details = Callable[[], Mapping[str, object]]
"""Extra ``name: value`` lines for ``/readyz?verbose``; called on the answering thread."""

DEFAULT_WEDGED_AFTER = 5.0
TEXT = "text/plain; charset=utf-8"
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class _Service(Protocol):
    @property
    def timeline(self) -> Timeline: ...
    @property
    def ready(self) -> bool: ...
    @property
    def not_ready_because(self) -> str | None: ...
    @property
    def state(self) -> State: ...


@dataclass(frozen=True, slots=True)
class Response:
    """An answer: status code, content type, body."""

    status: int
    content_type: str
    body: bytes

    @classmethod
    def text(cls, status: int, text: str) -> Response:
        return cls(status, TEXT, text.encode())


class Health:
    """The three endpoints of one lifecycle, answerable from any thread or loop.

    Args:
        lifecycle: the service (a :class:`warden.Lifecycle`).
        details: extra lines for ``/readyz?verbose``.
        metrics: the :class:`Metrics` to expose on ``/metrics``; by default one of its own,
            subscribed to the timeline now. ``False``: no ``/metrics`` (404).
        wedged_after: seconds the loop may take to run a callback before ``/livez`` fails.
    """

    def __init__(
        self,
        lifecycle: _Service,
        *,
        details: Details | None = None,
        metrics: Metrics | bool = True,
        wedged_after: float = DEFAULT_WEDGED_AFTER,
    ) -> None:
        self._lifecycle = lifecycle
        self._details = details
        self.wedged_after = wedged_after
        self._loop: asyncio.AbstractEventLoop | None = None
        self._components: dict[str, str] = {}
        if metrics is True:
            self.metrics: Metrics | None = Metrics()
            lifecycle.timeline.subscribe(self.metrics)
        else:
            self.metrics = metrics or None
        lifecycle.timeline.subscribe(self._observe)
        with contextlib.suppress(RuntimeError):  # made inside the running lifecycle
            self._loop = asyncio.get_running_loop()

    def _observe(self, event: Event) -> None:
        # Observers run on the lifecycle's loop: that is the loop /livez asks.
        if self._loop is None:
            with contextlib.suppress(RuntimeError):
                self._loop = asyncio.get_running_loop()
        fact = event.fact
        if isinstance(fact, ComponentStarted):
            self._components[fact.component] = (
                "started" if fact.result.value == "ok" else fact.result.value
            )
        elif isinstance(fact, ComponentStopped):
            self._components[fact.component] = (
                "stopped" if fact.result.value == "ok" else f"stop {fact.result.value}"
            )

    # -- the endpoints ------------------------------------------------------------------

    def ready(self, *, verbose: bool = False) -> Response:
        """``/readyz``: 200 while the service should get new work, else 503."""
        why = self._lifecycle.not_ready_because
        ok = why is None
        state = self._lifecycle.state.value
        if not verbose:
            return Response.text(200, "ok\n") if ok else Response.text(503, f"{why}\n")
        lines = [f"[{'+' if ok else '-'}]lifecycle {state}"]
        for name, status in list(self._components.items()):
            good = status in ("started", "stopped")
            lines.append(f"[{'+' if good else '-'}]component {name} {status}")
        lines.extend(self._verbose_extras())
        lines.append("ok" if ok else f"not ready: {why}")
        return Response.text(200 if ok else 503, "\n".join(lines) + "\n")

    def _verbose_extras(self) -> list[str]:
        lines = []
        if self.metrics is not None:
            values, _ = self.metrics.snapshot()
            revision = values["config_revision"].get(())
            if revision is not None:
                lines.append(f"config revision {revision:g}")
            level = next((k[0] for k, v in values["memory_level"].items() if v == 1.0), None)
            if level is not None:
                lines.append(f"memory level {level}")
        if self._details is not None:
            try:
                extra = dict(self._details())
            except Exception as exc:  # a broken details callable must not break readiness
                extra = {"details": f"unavailable ({type(exc).__name__}: {exc})"}
            lines.extend(f"{name} {value}" for name, value in extra.items())
        return lines

    async def live_async(self) -> Response:
        """``/livez`` from a coroutine on any loop (the lifecycle's own: live at once)."""
        loop = self._loop
        here = asyncio.get_running_loop()
        if loop is None or loop is here:
            return self._live(True)
        back = here.create_future()

        def answer() -> None:
            if not back.done():
                back.set_result(None)

        def there() -> None:
            with contextlib.suppress(RuntimeError):  # our own loop closed meanwhile
                here.call_soon_threadsafe(answer)

        try:
            loop.call_soon_threadsafe(there)
        except RuntimeError:  # the lifecycle's loop is closed: stopped, not wedged
            return self._live(True)
        try:
            async with asyncio.timeout(self.wedged_after):
                await back
        except TimeoutError:
            return self._live(False)
        return self._live(True)

    def live(self) -> Response:
        """``/livez`` from a thread (a WSGI worker): blocks up to ``wedged_after``."""
        loop = self._loop
        if loop is None:
            return self._live(True)
        with contextlib.suppress(RuntimeError):
            if asyncio.get_running_loop() is loop:
                return self._live(True)
        done = threading.Event()
        try:
            loop.call_soon_threadsafe(done.set)
        except RuntimeError:
            return self._live(True)
        return self._live(done.wait(self.wedged_after))

    def _live(self, alive: bool) -> Response:
        if alive:
            return Response.text(200, "ok\n")
        return Response.text(
            503, f"wedged: the event loop ran no callback within {self.wedged_after:g}s\n"
        )

    def scrape(self) -> Response:
        """``/metrics``: the Prometheus text format (0.0.4)."""
        if self.metrics is None:
            return Response.text(404, "metrics are off\n")
        return Response(200, PROMETHEUS_TEXT, self.metrics.exposition())

    # -- routing, shared by every server ------------------------------------------------

    async def answer_async(self, path: str, query: str) -> Response:
        """The response to ``GET path?query`` from a coroutine."""
        endpoint = route(path)
        if endpoint == "livez":
            return await self.live_async()
        return self._answer(endpoint, query)

    def answer(self, path: str, query: str) -> Response:
        """The response to ``GET path?query`` from a thread."""
        endpoint = route(path)
        if endpoint == "livez":
            return self.live()
        return self._answer(endpoint, query)

    def _answer(self, endpoint: str | None, query: str) -> Response:
        if endpoint == "readyz":
            return self.ready(verbose=_verbose(query))
        if endpoint == "metrics":
            return self.scrape()
        return Response.text(404, "not found: try /livez, /readyz, /metrics\n")


def route(path: str) -> str | None:
    """``livez``, ``readyz`` or ``metrics`` for a path ending so (wherever it is mounted)."""
    last = path.rstrip("/").rpartition("/")[2]
    return last if last in ("livez", "readyz", "metrics") else None


def _verbose(query: str) -> bool:
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if name == "verbose":
            return value.lower() not in ("0", "false", "no")
    return False
