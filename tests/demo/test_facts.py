"""How the demo reads facts: a whole start order waited for, and warden's words for people.

The service's facts arrive through a real pipe into the demo's reader (``FactStream``), a
thread of its own: an order read the moment warden says ready may still lack the lines that
thread has not read yet. warden's facts are made by warden's own classes and written by its
own JSON log formatter, as the demo reads them from a real ``warden run``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from warden.demo._scenario import components
from warden.demo._warden import FactStream
from warden.demo._words import words
from warden.lifecycle import Event, Fact, State
from warden.memory._events import MemoryLevelChanged, MemoryRecycle
from warden.memory._levels import Level
from warden.observe._log import JsonFormatter, describe
from warden.supervisor._events import StopSignalSent, UpgradeFinished, WardenExiting
from warden.supervisor.process._reason import ExitKind, ExitReason

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[FactStream, int]]:
    """The demo's reader on a real pipe, and the pipe's write end (closed after)."""
    read, write = os.pipe()
    stream = FactStream(os.fdopen(read, "rb"), tmp_path / "service.log")
    try:
        yield stream, write
    finally:
        os.close(write)
        stream.close_wait(5)


def _line(pid: int, kind: str, name: str) -> bytes:
    fact = {"pid": pid, "kind": kind, "name": name, "outcome": "ok" if kind != "state" else None}
    return (json.dumps(fact) + "\n").encode()


def _started(pid: int, *names: str) -> bytes:
    return b"".join(_line(pid, "start", name) for name in names)


def test_a_start_order_not_yet_whole_is_none_never_a_part(
    service: tuple[FactStream, int],
) -> None:
    """warden already said ready; two of the service's four start lines have been read."""
    stream, write = service
    os.write(write, _line(7, "state", "starting") + _started(7, "config", "writes"))
    assert stream.wait(lambda f: f.get("name") == "writes", 5) is not None
    assert components(stream, 7, "start", "ready", timeout=0.2) is None


def test_the_whole_start_order_is_waited_for(service: tuple[FactStream, int]) -> None:
    stream, write = service
    os.write(write, _line(7, "state", "starting") + _started(7, "config", "writes"))
    found: list[tuple[str, ...] | None] = []
    waiting = threading.Thread(
        target=lambda: found.append(components(stream, 7, "start", "ready", timeout=10))
    )
    waiting.start()
    # Another release's lines interleave; then the rest of pid 7's, and its ready.
    os.write(write, _started(8, "config") + _started(7, "leak", "http"))
    os.write(write, _line(7, "state", "ready") + _started(7, "late"))
    waiting.join(10)
    assert found == [("config", "writes", "leak", "http")]


def test_a_stop_order_ends_with_its_stopped_state(service: tuple[FactStream, int]) -> None:
    stream, write = service
    stops = b"".join(_line(7, "stop", name) for name in ("http", "leak", "writes", "config"))
    os.write(write, stops + _line(7, "state", "stopped"))
    assert components(stream, 7, "stop", "stopped", timeout=5) == (
        "http",
        "leak",
        "writes",
        "config",
    )


# -- warden's words -----------------------------------------------------------------------------


def _as_logged(fact: Fact) -> dict[str, Any]:
    """``fact`` as warden's JSON log writes it (its formatter, its record)."""
    event = Event(seq=1, at=123.0, state=State.READY, fact=fact)
    record = logging.LogRecord("warden", fact.log_level, "", 0, "%s", (describe(event),), None)
    record.warden_event = event
    found = json.loads(JsonFormatter().format(record))
    assert isinstance(found, dict)
    return found


MIB = 2**20


def test_the_closing_line_is_warden_exiting_and_why() -> None:
    closing = WardenExiting(
        exit_code=0,
        cause="stop",
        reason="stopped by SIGTERM; the program exited(0)",
        stopped_by="SIGTERM",
        last_exit=ExitReason(ExitKind.EXITED, code=0),
    )
    assert words(_as_logged(closing)) == (
        "warden exited 0: stopped by SIGTERM; the program exited(0)"
    )


def test_internal_steps_are_not_said() -> None:
    ladder = StopSignalSent(signum=signal.SIGTERM, pid=7, pgid=None, kill_after=10.0)
    assert words(_as_logged(ladder)) is None


def test_no_line_is_named_after_a_kind_or_a_pid() -> None:
    said = [
        words(_as_logged(fact))
        for fact in (
            MemoryRecycle(
                pid=7,
                at="warn",
                working_set=307 * MIB,
                limit=384 * MIB,
                fresh=15 * MIB,
                recycled=True,
            ),
            MemoryLevelChanged(
                level=Level.WARN,
                previous=Level.OK,
                working_set=307 * MIB,
                limit=384 * MIB,
                time_to_limit=8.9,
                rate=8.0 * MIB,
                cgroup="/sys/fs/cgroup/memory/x",
            ),
            UpgradeFinished(
                result="ok",
                reason="pid 7 -> 8; pid 7 exited(0)",
                old_pid=7,
                new_pid=8,
                took=1.3,
            ),
        )
    ]
    assert said == [
        "working set 307.0 MiB of 384.0 MiB crossed --recycle-at warn; a fresh copy "
        "takes 15.0 MiB: replacing pid 7 by a zero-downtime upgrade",
        "memory warn: working set 307.0 MiB of 384.0 MiB (80%), time to limit 8.90 s, from ok",
        "upgrade ok in 1.30 s: pid 7 -> 8; pid 7 exited(0)",
    ]
