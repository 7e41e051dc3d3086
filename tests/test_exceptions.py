"""The tree of errors drawn in ``warden/_exceptions.py`` is the tree of classes warden defines.

Every module of warden is imported and every exception class defined in one is found; the
drawing must name each exactly once, under its nearest warden base, with its built-in bases
in parentheses. A class added, moved or renamed without the drawing fails here.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from types import ModuleType

import pytest

import warden
from warden import _exceptions

#: One line of the drawing: the tree's branches, a name, its built-in bases.
_LINE = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>\w+)(?:\((?P<bases>[\w, ]+)\))?(?:\s{2,}.*)?$")


def _modules() -> list[ModuleType]:
    found = [warden]
    for info in pkgutil.walk_packages(warden.__path__, "warden."):
        if info.name.rpartition(".")[2] == "__main__":
            continue  # running it is `warden` itself
        found.append(importlib.import_module(info.name))
    return found


def _classes(base: type[BaseException]) -> dict[str, type[BaseException]]:
    """Every class derived from ``base`` defined in a warden module, by name."""
    classes: dict[str, type[BaseException]] = {}
    for module in _modules():
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, base)
                and value.__module__ == module.__name__
            ):
                assert value.__name__ not in classes, f"two errors named {value.__name__}"
                classes[value.__name__] = value
    return classes


def _defined() -> dict[str, type[BaseException]]:
    """Every exception class (an error: derived from Exception) warden defines, by name."""
    return _classes(Exception)


def _drawn(doc: str) -> dict[str, tuple[str | None, tuple[str, ...]]]:
    """name -> (parent in the drawing, built-in bases written after it)."""
    lines = doc.split("::", 1)[1].strip("\n").splitlines()
    tree: dict[str, tuple[str | None, tuple[str, ...]]] = {}
    parents: list[str] = []
    for raw in lines:
        if not raw.strip():
            break  # the drawing ends at the first blank line
        match = _LINE.match(raw.strip(" ") if not parents else raw[4:])
        assert match is not None, f"not a line of the tree: {raw!r}"
        depth = len(match["indent"]) // 4
        del parents[depth:]
        name = match["name"]
        bases = tuple(b.strip() for b in (match["bases"] or "").split(",") if b.strip())
        assert name not in tree, f"{name} is drawn twice"
        tree[name] = (parents[-1] if parents else None, bases)
        parents.append(name)
    return tree


def _actual(cls: type[BaseException]) -> tuple[str | None, tuple[str, ...]]:
    warden_bases = [b for b in cls.__bases__ if b.__module__.startswith("warden")]
    builtin = tuple(b.__name__ for b in cls.__bases__ if not b.__module__.startswith("warden"))
    assert len(warden_bases) <= 1, f"{cls.__name__} has two warden bases"
    return (warden_bases[0].__name__ if warden_bases else None, builtin)


def test_the_drawing_is_the_tree_of_classes() -> None:
    assert _exceptions.__doc__ is not None
    drawn = _drawn(_exceptions.__doc__)
    defined = _defined()
    assert sorted(drawn) == sorted(defined)
    for name, cls in defined.items():
        assert drawn[name] == _actual(cls), name


def test_every_error_is_a_warden_error() -> None:
    for name, cls in _defined().items():
        assert issubclass(cls, warden.WardenError), name


def test_what_is_not_an_error_is_named_as_such() -> None:
    """A BaseException that is not an Exception passes every ``except Exception``: only the
    demo's two signals of its own may be one, and the module's text names them."""
    assert _exceptions.__doc__ is not None
    outside = {name for name in _classes(BaseException) if name not in _defined()}
    assert outside == {"Interrupted", "OutputClosed"}
    for name in outside:
        assert f"``{name}``" in _exceptions.__doc__, name


def test_a_class_the_drawing_leaves_out_is_found() -> None:
    # The check itself can fail: a drawing without one class, or with a wrong parent.
    assert _exceptions.__doc__ is not None
    doc = _exceptions.__doc__
    without = doc.replace(
        "    │   └── SignalHandlerError            signal handling asked for off the main thread\n",
        "",
    )
    assert without != doc
    assert "SignalHandlerError" not in _drawn(without)
    moved = doc.replace("    │   └── SignalHandlerError", "    ├── SignalHandlerError")
    assert _drawn(moved)["SignalHandlerError"] != _actual(_defined()["SignalHandlerError"])


@pytest.mark.parametrize("line", ["    ├── Broken((", "    ├── "])
def test_a_line_that_is_not_a_class_is_refused(line: str) -> None:
    with pytest.raises(AssertionError, match="not a line of the tree"):
        _drawn(f"x::\n\n    WardenError(Exception)\n{line}\n")
