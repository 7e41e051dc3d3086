"""Subscribers to reloads: prepare (may veto), then the swap, then commit; each isolated."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_LOG = logging.getLogger("warden.config")

Hook = Callable[[Any, Any], object]


@dataclass(frozen=True, slots=True, eq=False)
class Subscriber:
    """``prepare(old, new)`` may veto by raising or returning ``False``; ``abandon(old, new)``
    is told when a later veto undid its prepare; ``commit(old, new)`` runs after the swap."""

    name: str
    commit: Hook | None
    prepare: Hook | None
    abandon: Hook | None
    #: Whether ``name`` was given (``name=``); else a veto names the prepare that vetoed.
    named: bool = False

    @property
    def vetoer(self) -> str:
        """Who a veto names: the name given, else the prepare hook itself."""
        return self.name if self.named else hook_name(self.prepare)


def prepare_all(subscribers: list[Subscriber], old: object, new: object) -> str | None:
    """Run every prepare in order; on a veto, abandon those that prepared and say why."""
    prepared: list[Subscriber] = []
    for sub in subscribers:
        if sub.prepare is None:
            continue
        try:
            verdict = sub.prepare(old, new)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
        else:
            if verdict is not False:
                prepared.append(sub)
                continue
            reason = "prepare returned False"
        for done in reversed(prepared):
            if done.abandon is not None:
                try:
                    done.abandon(old, new)
                except Exception:
                    _LOG.exception("config subscriber %s: abandon raised", done.name)
        return f"vetoed by {sub.vetoer}: {reason}"
    return None


def commit_all(subscribers: list[Subscriber], old: object, new: object) -> tuple[str, ...]:
    """Run every commit in order; one that raises is reported and the others still run."""
    errors = []
    for sub in subscribers:
        if sub.commit is None:
            continue
        try:
            sub.commit(old, new)
        except Exception as exc:
            errors.append(f"{sub.name}: {type(exc).__name__}: {exc}")
    return tuple(errors)


def hook_name(*hooks: Hook | None) -> str:
    for hook in hooks:
        if hook is not None:
            return getattr(hook, "__qualname__", None) or repr(hook)
    return "subscriber"
