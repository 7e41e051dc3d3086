"""One-way layering (docs/design.md): each layer imports only the layers below it.

Each layer's every module (private ones too) is imported in a fresh interpreter whose import
system refuses any part of warden the layer may not use, so a wrong-way import anywhere in
it fails here with the importer's name, whether or not a test happens to reach that module.
The root leaf modules (stdlib only) are open to every layer: they are how the CLI client
shares code with the supervisor without loading asyncio.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

#: Modules at the package root that every layer may import: stdlib only, no asyncio.
LEAVES = ("_exceptions", "_durations", "_exitcodes", "_unix", "_paths", "_version")

#: Each layer -> the other layers it may import (besides the leaves).
LAYERS: dict[str, tuple[str, ...]] = {
    "lifecycle": (),
    "systemd": (),
    "observe": ("lifecycle", "systemd"),
    "config": ("lifecycle",),
    "memory": ("lifecycle",),
    "integrations": ("lifecycle", "systemd", "observe"),
    "supervisor": ("lifecycle", "systemd", "observe", "config", "memory"),
    "cli": ("*",),
}

# Runs in the child interpreter. A stub `warden` package stands in for warden/__init__.py,
# which re-exports from several layers; a meta-path finder ahead of the normal ones refuses
# every `warden.X` whose X is not allowed, naming the module that asked for it.
_CHILD = """
import importlib, importlib.abc, importlib.util, json, pkgutil, sys, types

targets, allowed, label = json.loads(sys.argv[1])

def importer():
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name.startswith("warden") and "importlib" not in frame.f_code.co_filename:
            return name
        frame = frame.f_back
    return "?"

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        parts = name.split(".")
        if parts[0] != "warden" or len(parts) == 1 or "*" in allowed or parts[1] in allowed:
            return None
        raise ImportError(f"layering: {importer()} imports {name}, which {label} may not use")

def fail(name):
    raise  # walk_packages would skip a package whose import failed

spec = importlib.util.find_spec("warden")
package = types.ModuleType("warden")
package.__path__ = list(spec.submodule_search_locations)
sys.modules["warden"] = package
sys.meta_path.insert(0, Refuse())

imported = []
for target in targets:
    module = importlib.import_module(target)
    imported.append(target)
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), target + ".", onerror=fail):
        importlib.import_module(info.name)
        imported.append(info.name)
print(json.dumps({"imported": imported, "asyncio": "asyncio" in sys.modules}))
"""


def _run(targets: list[str], allowed: list[str], label: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps([targets, allowed, label])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _answer(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    last = result.stderr.strip().splitlines()[-1:]
    assert result.returncode == 0, last[0] if last else result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert isinstance(answer, dict)
    return answer


def _exists(layer: str) -> bool:
    spec = importlib.util.find_spec("warden")
    assert spec is not None and spec.submodule_search_locations is not None
    root = Path(next(iter(spec.submodule_search_locations)))
    return (root / layer / "__init__.py").exists() or (root / f"{layer}.py").exists()


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_a_layer_imports_only_the_layers_below_it(layer: str) -> None:
    if not _exists(layer):
        pytest.skip(f"warden.{layer} does not exist (yet): no layering to check")
    answer = _answer(_run([f"warden.{layer}"], [layer, *LAYERS[layer], *LEAVES], layer))
    imported = answer["imported"]
    assert isinstance(imported, list) and f"warden.{layer}" in imported


def test_the_leaf_modules_import_no_layer_and_no_asyncio() -> None:
    leaves = [f"warden.{leaf}" for leaf in LEAVES]
    answer = _answer(_run(leaves, list(LEAVES), "a leaf module"))
    assert answer["asyncio"] is False


def test_a_wrong_way_import_is_caught() -> None:
    # The check itself can fail: observe uses the lifecycle, refused here on purpose.
    result = _run(["warden.observe"], ["observe", "systemd", *LEAVES], "observe")
    assert result.returncode != 0
    assert "imports warden.lifecycle, which observe may not use" in result.stderr
