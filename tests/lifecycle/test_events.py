"""The table of facts: every kind published anywhere in warden is declared once, typed."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import pkgutil
from pathlib import Path

import pytest

import warden
from warden.lifecycle import KINDS, Fact, Lifecycle, Outcome, State, StateChanged

SRC = Path(warden.__file__).parent


def _import_everything() -> None:
    """Import every module of warden, so every fact class is defined and in the table."""
    for info in pkgutil.walk_packages([str(SRC)], prefix="warden."):
        importlib.import_module(info.name)


def _published_classes() -> set[tuple[str, str]]:
    """(file, class name) for every ``publish(SomeFact(...))`` call in warden's source."""
    found: set[tuple[str, str]] = set()
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute | ast.Name)
                and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
                in ("publish", "_publish")
                and node.args
                and isinstance(node.args[0], ast.Call)
                and isinstance(node.args[0].func, ast.Name)
                and node.args[0].func.id[0].isupper()  # a class, not a variable holding one
            ):
                found.add((str(path.relative_to(SRC)), node.args[0].func.id))
    return found


def test_every_published_fact_is_a_declared_kind() -> None:
    _import_everything()
    declared = {cls.__name__ for cls in KINDS.values()}
    published = _published_classes()
    assert len(published) > 40, f"the scan found only {published}: it would prove nothing"
    missing = sorted(f"{file}: {name}" for file, name in published if name not in declared)
    assert missing == [], f"published but not declared as a kind: {missing}"


def test_every_kind_is_a_frozen_dataclass_with_typed_fields() -> None:
    _import_everything()
    for kind, cls in KINDS.items():
        assert cls.kind == kind
        assert dataclasses.is_dataclass(cls), cls
        params = cls.__dataclass_params__  # type: ignore[attr-defined]
        assert params.frozen, f"{cls.__name__} must be frozen"
        for field in dataclasses.fields(cls):
            assert field.type not in ("object", "Any"), f"{cls.__name__}.{field.name} is untyped"


def test_a_kind_cannot_be_declared_twice() -> None:
    with pytest.raises(TypeError, match="declared twice"):

        @dataclasses.dataclass(frozen=True)
        class Again(Fact):
            kind = "state"


def test_publish_takes_only_declared_facts() -> None:
    lc = Lifecycle(handle_signals=False)
    with pytest.raises(TypeError, match="declared kind"):
        lc.publish("state")  # type: ignore[arg-type]
    event = lc.publish(StateChanged(state=State.READY))
    assert event.kind == "state" and event.name == "ready"
    assert event.fact.data() == {"state": "ready", "took": None}
    assert Outcome("timeout") is Outcome.TIMEOUT
