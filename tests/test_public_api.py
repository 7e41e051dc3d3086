"""The public surface: every public module says what it exports, and says all of it.

Every module whose dotted name has no part starting with ``_`` is walked (anyio's
``tests/test_all_attributes.py`` is the model). Each must have ``__all__``; every name in it
must resolve; and every public name the module exports by mypy's rules (defined there: ``def``,
``class``, an assignment; or re-exported: ``from x import Name as Name``) must be in it, or in
:data:`EXCLUDED` with the reason. A name imported for use (``from typing import Any``) is not
an export, as under ``mypy --strict`` (no implicit re-export).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
import textwrap
from collections.abc import Iterable

import pytest

import warden

#: (module, name) -> why a public-looking name is not in that module's ``__all__``.
EXCLUDED: dict[tuple[str, str], str] = {}


def _fail(name: str) -> None:
    # walk_packages imports each package to look inside; by default it skips one that fails.
    raise ImportError(f"cannot import {name} to walk it: {sys.exc_info()[1]!r}")


def public_modules() -> list[str]:
    """``warden`` and every module under it with no ``_`` part in its name."""
    names = ["warden"]
    for info in pkgutil.walk_packages(warden.__path__, "warden.", onerror=_fail):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def _bound(target: ast.expr) -> set[str]:
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, ast.Tuple | ast.List):
        return set().union(*(_bound(element) for element in target.elts))
    return set()


def exported_names(source: str) -> set[str]:
    """The public names a module's top level defines or explicitly re-exports."""
    names: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    names.update(_bound(target))
            elif isinstance(node, ast.AnnAssign | ast.AugAssign):
                names.update(_bound(node.target))
            elif isinstance(node, ast.Import | ast.ImportFrom):
                # PEP 484: `import a as a` and `from m import a as a` re-export `a`.
                names.update(alias.name for alias in node.names if alias.asname == alias.name)
            elif isinstance(node, ast.If | ast.Try):  # `if TYPE_CHECKING:`, try/except imports
                visit(node.body)
                visit(node.orelse)
                for handler in getattr(node, "handlers", ()):
                    visit(handler.body)
                visit(getattr(node, "finalbody", []))

    visit(ast.parse(source).body)
    return {name for name in names if not name.startswith("_")}


def unlisted(name: str, source: str, listed: Iterable[str]) -> list[str]:
    """Public names module ``name`` exports that its ``__all__`` leaves out (not excused)."""
    left_out = exported_names(source) - set(listed)
    return sorted(n for n in left_out if (name, n) not in EXCLUDED)


def test_the_walk_finds_every_layer() -> None:
    # A walk that finds nothing would pass every test below: make sure it sees the tree.
    modules = public_modules()
    for expected in ("warden", "warden.lifecycle", "warden.supervisor.process", "warden.cli"):
        assert expected in modules
    assert not any("._" in name for name in modules)


@pytest.mark.parametrize("name", public_modules())
def test_every_public_module_declares_all(name: str) -> None:
    module = importlib.import_module(name)
    assert isinstance(getattr(module, "__all__", None), list | tuple), f"{name} has no __all__"
    assert len(set(module.__all__)) == len(module.__all__), f"{name}.__all__ repeats a name"


@pytest.mark.parametrize("name", public_modules())
def test_every_name_in_all_resolves(name: str) -> None:
    module = importlib.import_module(name)
    missing = [n for n in getattr(module, "__all__", ()) if not hasattr(module, n)]
    assert missing == [], f"{name}.__all__ lists names it does not have: {missing}"


@pytest.mark.parametrize("name", public_modules())
def test_every_exported_name_is_in_all(name: str) -> None:
    module = importlib.import_module(name)
    if not hasattr(module, "__all__"):
        pytest.fail(f"{name} has no __all__")
    left_out = unlisted(name, inspect.getsource(module), module.__all__)
    assert left_out == [], f"{name} exports names its __all__ leaves out"


def test_the_check_finds_a_name_left_out() -> None:
    source = textwrap.dedent(
        """
        from typing import TYPE_CHECKING, Any
        from ._impl import Thing as Thing
        from ._impl import helper
        if TYPE_CHECKING:
            from ._lazy import Lazy as Lazy
        LIMIT = 5
        _PRIVATE = 1
        def run() -> None: ...
        class Widget: ...
        __all__ = ["Thing", "run"]
        """
    )
    assert exported_names(source) == {"Thing", "Lazy", "LIMIT", "run", "Widget"}
    assert unlisted("warden.fake", source, ["Thing", "run"]) == ["LIMIT", "Lazy", "Widget"]


def test_a_misspelt_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Lifecylce'"):
        _ = warden.Lifecylce


def test_importing_warden_does_not_load_asyncio() -> None:
    # warden run depends on this to keep asyncio from loading ssl (see cli/__init__.py).
    code = "import sys, warden; print('asyncio' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False"
