"""What warden said, in its words for people: the lines the summary quotes from its facts.

warden's JSON log carries every fact with its kind, its name and its detail; its own log line
(``message``) starts with the kind's family and the name, which suits a log (``stop_ladder
SIGTERM: ...``, ``memory 30709 recycling: ...``) but not a summary for a person. Here each
fact a step quotes becomes a sentence from its detail and data: its closing line, the
upgrades' results, the memory levels, the recycle, a config change. Internal steps (the stop
ladder's rungs, components starting) are not quoted: ``None``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ._warden import Fact

__all__ = ["words"]


def _data(fact: Fact) -> dict[str, object]:
    found = fact.get("data")
    return found if isinstance(found, dict) else {}


def _seconds(value: object) -> str:
    if not isinstance(value, int | float):
        return "?"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _exit(fact: Fact, data: dict[str, object]) -> str:
    return f"warden exited {data.get('exit_code')}: {fact.get('detail')}"


def _upgrade(fact: Fact, data: dict[str, object]) -> str:
    return f"upgrade {data.get('result')} in {_seconds(data.get('took'))}: {data.get('reason')}"


def _level(fact: Fact, data: dict[str, object]) -> str:
    return f"memory {data.get('level')}: {fact.get('detail')}"


def _pid(fact: Fact, data: dict[str, object]) -> str:
    return f"pid {data.get('pid')} {fact.get('detail')}"


def _config(fact: Fact, data: dict[str, object]) -> str:
    return f"config {Path(str(fact.get('name'))).name}: {fact.get('detail')}"


def _detail(fact: Fact, data: dict[str, object]) -> str:
    return str(fact.get("detail"))


#: The facts a summary quotes, each as a sentence (the others are not quoted).
_SAY: dict[str, Callable[[Fact, dict[str, object]], str]] = {
    "exit": _exit,  # warden's closing line: why it exits
    "upgrade.finished": _upgrade,
    "memory.level": _level,
    "memory.recycle": _detail,  # "working set ... crossed --recycle-at warn; ...: replacing"
    "memory.stop": _pid,  # "pid 7 SIGTERM at critical (...): to exit cleanly before ..."
    "memory.oom_kill": _pid,  # quoted only when it was one (see words)
    "child.not_ready": _pid,  # "pid 7 not ready: exited(1)"
    "child.exited": _pid,  # "pid 7 exited(3)"
    "config.changed": _config,
}


def words(fact: Fact) -> str | None:
    """``fact`` as a sentence for a person; None for a fact a summary does not quote."""
    say = _SAY.get(str(fact.get("kind")))
    data = _data(fact)
    if say is None:
        return None
    if fact.get("kind") == "memory.oom_kill" and data.get("oom_killed") is not True:
        return None  # not an OOM kill: said where it answers a question, not here
    return say(fact, data)
