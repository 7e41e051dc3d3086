"""The public surface: __all__ and the package agree, and layers only import downwards."""

from __future__ import annotations

import subprocess
import sys

import pytest

import warden


def test_all_names_exist_and_every_public_name_is_listed() -> None:
    # The package loads its names lazily (PEP 562): dir() is the promise, and each name in
    # __all__ must resolve.
    assert dir(warden) == sorted(warden.__all__)
    for name in warden.__all__:
        assert getattr(warden, name) is not None
    with pytest.raises(AttributeError, match="has no attribute 'Lifecylce'"):
        _ = warden.Lifecylce


def test_importing_warden_does_not_load_asyncio() -> None:
    # warden run depends on this to keep asyncio from loading ssl (see cli/__init__.py).
    code = "import sys, warden; print('asyncio' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False"


# Each layer may import only the layers below it (docs/design.md).
_TOP = ["warden.supervisor", "warden.integrations", "warden.cli"]
LAYERS = {
    "warden.systemd": ["warden.lifecycle", "warden.observe", *_TOP],
    "warden.lifecycle": ["warden.systemd", "warden.observe", *_TOP],
    "warden.observe": _TOP,
    "warden.supervisor": ["warden.integrations", "warden.cli"],
    "warden.integrations.uvicorn": ["warden.supervisor", "warden.cli"],
}


@pytest.mark.parametrize("module", sorted(LAYERS))
def test_layers_import_only_downwards(module: str) -> None:
    # A finder that refuses the upper layers, and a stub parent package so that
    # warden/__init__.py (which re-exports from several layers) does not run.
    code = f"""
import importlib, importlib.abc, importlib.util, sys, types
FORBIDDEN = {LAYERS[module]!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
            raise ImportError(f"layering: {module} imports {{name}}")
        return None
spec = importlib.util.find_spec("warden")
package = types.ModuleType("warden")
package.__path__ = list(spec.submodule_search_locations)
sys.modules["warden"] = package
sys.meta_path.insert(0, Block())
importlib.import_module({module!r})
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
