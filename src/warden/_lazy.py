"""Names a package loads on first use (PEP 562), so ``warden run`` imports only what it needs.

A package lists ``name -> "module"`` (or ``"module:attribute"`` when the name differs, as for
the privately named exports other warden packages use) and sets::

    __getattr__ = lazy(__name__, _LAZY, globals())

Standard library only.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping


def lazy(
    package: str, names: Mapping[str, str], namespace: MutableMapping[str, object]
) -> Callable[[str], object]:
    """A module ``__getattr__`` that imports ``names[name]`` on first use and keeps it in
    ``namespace`` (the package's ``globals()``), so the next use is a plain lookup."""

    def __getattr__(name: str) -> object:
        where = names.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = where.partition(":")
        value = getattr(importlib.import_module(module), attribute or name)
        namespace[name] = value
        return value

    return __getattr__
