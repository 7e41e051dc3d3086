"""How loud each fact is: declared on its kind, a terminal shows INFO and up, JSON keeps all."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import select
import signal
from collections.abc import Iterator
from typing import ClassVar

import pytest

import warden
from warden.lifecycle import ComponentStarted, Outcome, State, StateChanged
from warden.memory._events import OomKillAttributed
from warden.observe._log import log_events
from warden.supervisor._events import ChildExited, GaveUp, SupervisorStateChanged
from warden.supervisor.process._reason import ExitKind, ExitReason

DEBUG, INFO, WARNING, ERROR = logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR


def _exited(code: int) -> ExitReason:
    return ExitReason.from_wait_status(code << 8)


def _killed(signum: int) -> ExitReason:
    return ExitReason.from_wait_status(signum)


@pytest.mark.parametrize(
    ("fact", "level"),
    [
        (ComponentStarted(component="http", result=Outcome.OK, took=0.1), DEBUG),
        (ComponentStarted(component="http", result=Outcome.FAILED, error="boom"), WARNING),
        (StateChanged(state=State.READY), INFO),
        (StateChanged(state=State.STOPPED), INFO),
        (StateChanged(state=State.DRAINING), DEBUG),
        (SupervisorStateChanged(state=State.READY), DEBUG),  # the program's facts say it
        (ChildExited(pid=7, reason=_exited(0), uptime=1.0, current=True), INFO),
        (ChildExited(pid=7, reason=_exited(3), uptime=1.0, current=True), WARNING),
        (ChildExited(pid=7, reason=_killed(signal.SIGTERM), uptime=1.0, current=True), WARNING),
        (
            # died of the stop signal warden's stop sent it: the stop asked for
            ChildExited(
                pid=7, reason=_killed(signal.SIGTERM), uptime=1.0, current=True, on_stop_signal=True
            ),
            INFO,
        ),
        (
            ChildExited(
                pid=7,
                reason=_killed(signal.SIGKILL).refined(ExitKind.OOM_KILLED),
                uptime=1.0,
                current=True,
            ),
            ERROR,
        ),
        (ChildExited(pid=7, reason=_killed(signal.SIGTERM), uptime=1.0, current=False), DEBUG),
        (
            OomKillAttributed(
                pid=7, oom_killed=False, signum=15, exit_code=None, kills_during_run=0
            ),
            DEBUG,  # "not an OOM kill" only where it answers a question: after a SIGKILL
        ),
        (
            OomKillAttributed(pid=7, oom_killed=True, signum=9, exit_code=None, kills_during_run=1),
            ERROR,
        ),
    ],
    ids=lambda value: value if isinstance(value, int) else type(value).__name__,
)
def test_each_kind_declares_its_level(fact: warden.lifecycle.Fact, level: int) -> None:
    assert fact.log_level == level


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Closing(GaveUp):
    """A kind that says how loud it is from its fields, as a closing line would."""

    for_people: ClassVar[bool] = True
    loud: int = INFO

    @property
    def log_level(self) -> int:
        return self.loud


@pytest.fixture
def fresh_logger() -> Iterator[logging.Logger]:
    """The ``warden`` logger without handlers, as a process starts; restored afterwards."""
    logger = logging.getLogger("warden")
    saved = logger.handlers[:], logger.level, logger.propagate
    logger.handlers[:] = []
    try:
        yield logger
    finally:
        for handler in logger.handlers:
            handler.close()
        logger.handlers[:], _, logger.propagate = saved
        logger.setLevel(saved[1])


def _publish_some(lc: warden.Lifecycle) -> None:
    lc.publish(ComponentStarted(component="sockets", result=Outcome.OK, took=0.001))
    lc.publish(StateChanged(state=State.READY))
    lc.publish(ChildExited(pid=7, reason=_exited(3), uptime=1.0, current=True))
    for loud in (INFO, WARNING, ERROR):
        lc.publish(
            _Closing(message=f"closing at {logging.getLevelName(loud)}", exit_code=3, loud=loud)
        )


def test_a_terminal_shows_info_and_up_and_names_warnings(
    fresh_logger: logging.Logger,
) -> None:
    main, other = os.openpty()  # a real terminal: isatty() is true for its far end
    with open(other, "w", closefd=True) as terminal, open(main, "rb", buffering=0) as reader:
        lc = warden.Lifecycle(handle_signals=False)
        log_events(lc, stream=terminal)
        _publish_some(lc)
        terminal.flush()
        data = b""
        while select.select([reader], [], [], 0)[0]:  # written already: read what is there
            data += reader.read(65536)
        shown = data.decode().splitlines()
    # "12:00:01.123 warden created   <message>": the message, after the time and the state
    messages = [line.split(" warden ", 1)[1].split(maxsplit=1)[1] for line in shown]
    assert messages == [  # the component's start is an internal step: not shown
        "state ready",
        "warning: child pid 7 in 1000.0 ms: exited(3)",
        "give_up failed: closing at INFO",  # its outcome says failed; its kind says INFO
        "warning: give_up failed: closing at WARNING",
        "error: give_up failed: closing at ERROR",
    ]


def test_json_keeps_every_fact_with_its_level(fresh_logger: logging.Logger) -> None:
    out = io.StringIO()  # not a terminal: JSON lines
    lc = warden.Lifecycle(handle_signals=False)
    log_events(lc, stream=out)
    logging.getLogger("warden.some.module").debug("a repeated complaint, kept quiet")
    _publish_some(lc)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["kind"], r["level"]) for r in records] == [
        ("start", "debug"),
        ("state", "info"),
        ("child.exited", "warning"),
        ("give_up", "info"),
        ("give_up", "warning"),
        ("give_up", "error"),
    ]
