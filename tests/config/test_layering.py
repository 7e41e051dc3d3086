"""warden.config builds on the lifecycle only (docs/design.md): no upward or sideways import."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = [
    "warden.supervisor",
    "warden.integrations",
    "warden.cli",
    "warden.observe",
    "warden.systemd",
    "warden.memory",
]


def test_config_imports_only_the_lifecycle() -> None:
    code = f"""
import importlib, importlib.abc, importlib.util, sys, types
FORBIDDEN = {FORBIDDEN!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
            raise ImportError(f"layering: warden.config imports {{name}}")
        return None
spec = importlib.util.find_spec("warden")
package = types.ModuleType("warden")
package.__path__ = list(spec.submodule_search_locations)
sys.modules["warden"] = package
sys.meta_path.insert(0, Block())
import warden.config
for module in ("_attach", "_thread", "_watch", "_validate", "_sources", "_store"):
    importlib.import_module("warden.config." + module)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
