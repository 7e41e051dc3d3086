"""The integrations' facts: a server began to drain, and the work its deadline cut.

Observers match on the classes (``case WorkCut(cut=...)``); the log renders ``detail``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from warden.lifecycle import Fact, Says


@dataclass(frozen=True, slots=True)
class Cut:
    """One request or RPC still running when its server's grace ended.

    Attributes:
        method: the gRPC method (``/pkg.Service/Method``) or the HTTP method and target.
        peer: the client, as the server names it (``ipv4:127.0.0.1:51234``).
        age: seconds since the work began, at the cut.
        streaming: whether the work streams (a server- or client-streaming RPC, an HTTP
            response still being streamed).
        thread_held: for a sync handler, whether its thread was still inside the handler at
            the cut (cancellation does not stop a thread; warden's pool threads are daemon
            threads, so such a handler cannot hold the process at exit).
    """

    method: str
    peer: str
    age: float
    streaming: bool
    thread_held: bool = False

    def describe(self) -> str:
        kind = "streaming" if self.streaming else "unary"
        held = ", handler thread still running" if self.thread_held else ""
        return f"{self.method} from {self.peer} ({kind}, {self.age:.3f}s old{held})"


@dataclass(frozen=True, slots=True, kw_only=True)
class Draining(Fact):
    """A server began its drain: it still answers, and tells clients to go.

    ``how`` says what the clients are told (``health NOT_SERVING``, ``Connection: close``,
    ``GOAWAY``).
    """

    kind: ClassVar[str] = "server.draining"
    says: ClassVar[Says] = Says(name="{component}", detail="{how}")
    component: str
    how: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkCut(Fact):
    """The grace of a server's stop ended with work in flight: each one cut, by name."""

    kind: ClassVar[str] = "server.cut"
    says: ClassVar[Says] = Says(name="{component}", outcome="warning")
    component: str
    grace: float
    cut: tuple[Cut, ...]

    @property
    def detail(self) -> str:
        head = f"{len(self.cut)} in flight at the end of a {self.grace:.3f}s grace: "
        return head + "; ".join(c.describe() for c in self.cut)
