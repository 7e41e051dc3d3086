"""One-way layering (docs/design.md): each layer imports only the layers below it, and
through its front door.

Three checks, for every layer:

* **At run time.** Each module of the layer (private ones too) is imported in a fresh
  interpreter whose import system refuses, to any module of that layer, the parts of warden it
  may not use; the error names the importer. So a wrong-way import anywhere in the layer
  fails, whether or not a test happens to reach that module.
* **In the source.** Every ``import`` statement of the layer, the lazy ones inside functions
  and those under ``if TYPE_CHECKING:`` included, names only allowed parts.
* **Through the front door.** A package speaks to the others through its ``__init__``: no
  import statement outside ``warden.X`` names a private module of it (``warden.X._y``, or
  ``from warden.X import _y`` where ``_y`` is a module). What another warden package needs
  and users should not is exported from ``warden.X`` under a private name.

The root leaf modules (stdlib only) are open to every layer: they are how the CLI client
shares code with the supervisor without loading asyncio.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

#: Modules at the package root that every layer may import: stdlib only, no asyncio.
LEAVES = (
    "_exceptions",
    "_durations",
    "_sizes",
    "_exitcodes",
    "_unix",
    "_paths",
    "_version",
    "_yaml",
    "_lazy",
)

#: Each layer -> the other layers it may import directly (besides the leaves).
LAYERS: dict[str, tuple[str, ...]] = {
    "lifecycle": (),
    "systemd": (),
    "observe": ("lifecycle", "systemd"),
    "config": ("lifecycle",),
    "memory": ("lifecycle",),
    "integrations": ("lifecycle", "systemd", "observe"),
    "supervisor": ("lifecycle", "systemd", "observe", "config", "memory"),
    "doctor": ("supervisor", "memory"),
    # The demo drives `warden run` as a process: it asks the kernel through the memory
    # library, and its bundled service (a process of its own) is built on the library.
    "demo": ("lifecycle", "systemd", "config", "memory"),
    "cli": ("supervisor", "observe", "doctor", "demo"),
}


def _root() -> Path:
    spec = importlib.util.find_spec("warden")
    assert spec is not None and spec.submodule_search_locations is not None
    return Path(next(iter(spec.submodule_search_locations)))


def _exists(layer: str) -> bool:
    return (_root() / layer / "__init__.py").exists()


def _allowed(layer: str) -> list[str]:
    return [layer, *LAYERS[layer], *LEAVES]


# Runs in the child interpreter. A stub `warden` package stands in for warden/__init__.py,
# which re-exports from several layers; a meta-path finder ahead of the normal ones refuses a
# `warden.X` whose X is not allowed when the module importing it belongs to the layer.
_CHILD = """
import importlib, importlib.abc, importlib.util, json, pkgutil, sys, types

targets, layer, allowed = json.loads(sys.argv[1])

def importer():
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name.startswith("warden.") and "importlib" not in frame.f_code.co_filename:
            return name
        frame = frame.f_back
    return ""

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        parts = name.split(".")
        if parts[0] != "warden" or len(parts) == 1 or parts[1] in allowed:
            return None
        by = importer()
        if layer is None or by.split(".")[1:2] == [layer]:
            raise ImportError(f"layering: {by or '?'} imports {name}, which {layer} may not use")
        return None

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


def _run(
    targets: list[str], layer: str | None, allowed: list[str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps([targets, layer, allowed])],
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


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    """``(line, absolute module)`` of every import statement in the file, relative resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            # `from .. import x` may name a module x: judge it as warden.x.
            found += [
                (node.lineno, f"{base}.{a.name}" if base == "warden" else base) for a in node.names
            ]
    return found


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_a_layer_imports_only_the_layers_below_it(layer: str) -> None:
    if not _exists(layer):
        pytest.skip(f"warden.{layer} does not exist (yet): no layering to check")
    answer = _answer(_run([f"warden.{layer}"], layer, _allowed(layer)))
    imported = answer["imported"]
    assert isinstance(imported, list) and f"warden.{layer}" in imported


def _wrong_imports(layer: str, allowed: set[str]) -> list[str]:
    wrong = []
    for path in sorted((_root() / layer).rglob("*.py")):
        relative = path.relative_to(_root().parent).with_suffix("")
        module = ".".join(relative.parts).removesuffix(".__init__")
        for line, target in _imports(path, module):
            parts = target.split(".")
            if parts[0] == "warden" and len(parts) > 1 and parts[1] not in allowed:
                wrong.append(f"{path.relative_to(_root().parent)}:{line} imports {target}")
    return wrong


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_no_import_statement_of_a_layer_points_up(layer: str) -> None:
    if not _exists(layer):
        pytest.skip(f"warden.{layer} does not exist (yet): no layering to check")
    allowed = set(_allowed(layer))
    assert _wrong_imports(layer, allowed) == [], f"{layer} may import only {sorted(allowed)}"


def test_the_leaf_modules_import_no_layer_and_no_asyncio() -> None:
    leaves = [f"warden.{leaf}" for leaf in LEAVES]
    answer = _answer(_run(leaves, None, list(LEAVES)))
    assert answer["asyncio"] is False


def test_a_wrong_way_import_is_caught() -> None:
    # The checks themselves can fail: observe uses the lifecycle, refused here on purpose.
    result = _run(["warden.observe"], "observe", ["observe", "systemd", *LEAVES])
    assert result.returncode != 0
    assert "imports warden.lifecycle, which observe may not use" in result.stderr
    wrong = _wrong_imports("observe", {"observe", "systemd", *LEAVES})
    assert any(line.endswith("imports warden.lifecycle") for line in wrong), wrong


def _private_modules_imported(module: str, path: Path, source: str) -> list[str]:
    """Each import in ``source`` (module ``module``, file ``path``) of a private module of a
    warden package other than its own: ``warden.X._y...`` imported from outside ``warden.X``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    wrong = []
    for node in ast.walk(ast.parse(source, str(path))):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            # `from warden.X import _y` names the module _y when there is one.
            targets = [
                f"{base}.{a.name}" if _is_module(f"{base}.{a.name}") else base for a in node.names
            ]
        for target in targets:
            parts = target.split(".")
            if parts[0] != "warden" or len(parts) < 3 or not _exists(parts[1]):
                continue
            owner = f"warden.{parts[1]}"
            private = any(part.startswith("_") for part in parts[2:])
            if private and module != owner and not module.startswith(owner + "."):
                wrong.append(f"{path.relative_to(_root().parent)}:{node.lineno} imports {target}")
    return wrong


def _is_module(dotted: str) -> bool:
    parts = dotted.split(".")
    if parts[0] != "warden":
        return False
    where = _root().joinpath(*parts[1:])
    return where.with_suffix(".py").exists() or (where / "__init__.py").exists()


def _module_of(path: Path) -> str:
    relative = path.relative_to(_root().parent).with_suffix("")
    return ".".join(relative.parts).removesuffix(".__init__")


def test_no_module_imports_a_private_module_of_another_package() -> None:
    wrong = []
    for path in sorted(_root().rglob("*.py")):
        wrong += _private_modules_imported(_module_of(path), path, path.read_text())
    assert wrong == [], "import these through the package's __init__"


def test_a_private_import_from_outside_is_caught() -> None:
    # The check itself can fail: the memory package's private levels module, from the
    # supervisor (the way the supervisor's options once took it), and from doctor by name.
    planted = "from ..memory._levels import Level\nfrom warden.memory import _sizes\n"
    path = _root() / "supervisor" / "_options.py"
    wrong = _private_modules_imported("warden.supervisor._options", path, planted)
    assert [line.rsplit(" ", 1)[1] for line in wrong] == [
        "warden.memory._levels",
        "warden.memory._sizes",
    ]
    # Inside the package, or a private name exported by its __init__, is fine.
    inside = _root() / "memory" / "_sentinel.py"
    assert _private_modules_imported("warden.memory._sentinel", inside, planted) == []
    exported = "from ..memory import _MIN_LIMIT\nfrom warden import _durations\n"
    assert _private_modules_imported("warden.supervisor._options", path, exported) == []
