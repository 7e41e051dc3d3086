"""Item 10: a stop that raises KeyboardInterrupt (or SystemExit) does not abort the others."""

from __future__ import annotations

import pytest

import warden


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit])
def test_every_stop_runs_and_the_interrupt_comes_after(
    kind: str, error: type[BaseException]
) -> None:
    stopped: list[str] = []

    def interrupt_sync() -> None:
        stopped.append("http")
        raise error

    async def interrupt_async() -> None:
        stopped.append("http")
        raise error

    lc = warden.Lifecycle(shutdown_timeout=5, handle_signals=False)
    lc.add("db", stop=lambda: stopped.append("db"))
    lc.add("http", stop=interrupt_sync if kind == "sync" else interrupt_async, depends_on=["db"])

    async def main() -> None:
        lc.request_stop("test")

    with pytest.raises(error):
        lc.run(main)
    # db's stop ran after http's failed, and the lifecycle finished its shutdown.
    assert stopped == ["http", "db"]
    assert lc.state is warden.State.STOPPED
    assert lc.exit_code == 1
