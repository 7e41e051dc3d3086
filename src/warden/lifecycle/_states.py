"""The lifecycle's states and the transitions allowed between them."""

from __future__ import annotations

import enum


class State(enum.Enum):
    """Where a service is in its life.

    ``created → starting → ready → draining → stopping → stopped``, with ``reloading`` as an
    overlay on ``ready`` (the service still serves while it reloads). A stop requested during
    start-up skips ``ready`` and ``draining``: nothing was ever advertised, so nothing drains.
    """

    CREATED = "created"
    STARTING = "starting"
    READY = "ready"
    RELOADING = "reloading"
    DRAINING = "draining"
    STOPPING = "stopping"
    STOPPED = "stopped"

    @property
    def serving(self) -> bool:
        """True while the service should receive new work (readiness)."""
        return self in (State.READY, State.RELOADING)


ALLOWED: dict[State, frozenset[State]] = {
    State.CREATED: frozenset({State.STARTING}),
    State.STARTING: frozenset({State.READY, State.STOPPING}),
    State.READY: frozenset({State.RELOADING, State.DRAINING}),
    State.RELOADING: frozenset({State.READY, State.DRAINING}),
    State.DRAINING: frozenset({State.STOPPING}),
    State.STOPPING: frozenset({State.STOPPED}),
    State.STOPPED: frozenset(),
}
