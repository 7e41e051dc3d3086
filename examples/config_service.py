"""A service whose config reloads on SIGHUP and whenever its file changes, never torn.

    python examples/config_service.py app.toml          # then edit app.toml, or kill -HUP

The config is a frozen dataclass: every reader takes ``store.current`` and gets one whole
snapshot. A bad edit (a syntax error, ``workers = 0``) is refused with a one-line reason and
the old config keeps serving; the pool subscriber vetoes a size it cannot take.
"""

from __future__ import annotations

import dataclasses
import sys

import warden
from warden.config import ConfigStore


@dataclasses.dataclass(frozen=True)
class Settings:
    greeting: str = "hello"
    workers: int = 2
    hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers={self.workers} must be at least 1")


MAX_WORKERS = 64


def check_pool(old: Settings, new: Settings) -> None:
    """prepare: a size the pool cannot take vetoes the whole reload."""
    if new.workers > MAX_WORKERS:
        raise ValueError(f"workers={new.workers} is over the pool's limit of {MAX_WORKERS}")


def resize_pool(old: Settings, new: Settings) -> None:
    """commit: runs after the swap, once per new revision."""
    print(f"config applied: workers {old.workers} -> {new.workers}", flush=True)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: config_service.py CONFIG.toml", file=sys.stderr)
        return 2
    store = ConfigStore(argv[1], schema=Settings, env_prefix="APP", watch=True)
    lc = warden.Lifecycle(shutdown_timeout=5)
    store.attach(lc)
    store.subscribe(resize_pool, prepare=check_pool, name="pool")
    warden.log_events(lc)
    warden.notify_systemd(lc)

    async def serve() -> None:
        print(f"ready: revision {store.revision}, {store.current.greeting}", flush=True)
        await lc.wait_for_stop()

    return lc.run(serve)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
