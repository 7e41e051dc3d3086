"""The public surface: every public module says what it exports, and says all of it.

Every module whose dotted name has no part starting with ``_`` is walked (anyio's
``tests/test_all_attributes.py`` is the model). Each must have ``__all__``, equal to its entry
in :data:`PUBLIC`: every public name is a promise, so a new one is added there on purpose (and
a module that appears or goes, too). Every name in ``__all__`` must resolve; and every public
name the module exports by mypy's rules (defined there: ``def``, ``class``, an assignment; or
re-exported: ``from x import Name as Name``) must be in it, or in :data:`INTERNAL` with the
reason: a building block another warden package imports from the package, not for users. A
name imported for use (``from typing import Any``) is not an export, as under ``mypy --strict``
(no implicit re-export).
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

#: What a user of the library writes against: each public module's ``__all__``, exactly.
PUBLIC: dict[str, set[str]] = {
    "warden": {
        "EXIT_DEADLINE",
        "ConfigStore",
        "ConfigurationError",
        "DependencyError",
        "Event",
        "Leak",
        "Lifecycle",
        "LifecycleError",
        "Notifier",
        "SignalHandlerError",
        "StartupError",
        "State",
        "Timeline",
        "WardenError",
        "__version__",
        "health_asgi",
        "health_wsgi",
        "listen_fds",
        "log_events",
        "notify_systemd",
        "serve_health",
        "watch_memory",
    },
    "warden.cli": {"main"},
    "warden.config": {
        "ConfigError",
        "ConfigReloadFailed",
        "ConfigReloaded",
        "ConfigReloading",
        "ConfigStore",
        "ConfigWatchDone",
        "MissingExtraError",
        "ReloadResult",
        "Snapshot",
        "watch_for_changes",
    },
    "warden.demo": {"run_demo"},
    "warden.doctor": {
        "InputError",
        "Report",
        "Result",
        "check_files",
        "check_live",
        "explain_death",
        "render_json",
        "render_text",
    },
    "warden.integrations": set(),
    "warden.integrations.aiohttp": {"IDLE_GRACE", "AiohttpServer"},
    "warden.integrations.grpc": {"AioGrpcServer", "Cut", "Draining", "GrpcServer", "WorkCut"},
    "warden.integrations.gunicorn": {
        "on_reload",
        "on_starting",
        "post_fork",
        "post_request",
        "post_worker_init",
        "pre_request",
        "worker_exit",
    },
    "warden.integrations.hypercorn": {"IDLE_GRACE", "HypercornServer"},
    "warden.integrations.uvicorn": {"IDLE_GRACE", "H11Protocol", "UvicornServer"},
    "warden.lifecycle": {
        # the service and its timeline
        "EXIT_DEADLINE",
        "Event",
        "Fact",
        "Leak",
        "Lifecycle",
        "Outcome",
        "State",
        "Timeline",
        # the clock its waits run on (a test gives a ManualClock)
        "Clock",
        "ManualClock",
        # its facts, which observers match on, and the bases a fact of yours may take (with
        # how it reads)
        "Says",
        "ComponentStarted",
        "ComponentStopped",
        "LeakFound",
        "LogsReopened",
        "MainFinished",
        "ReloadFinished",
        "ReloadSkipped",
        "Reloaded",
        "Reloading",
        "SignalHookFailed",
        "SignalReceived",
        "StateChanged",
        "StatusUpdate",
        "StopRequested",
        "TimeoutExtended",
    },
    "warden.memory": {
        "Action",
        "Level",
        "MemoryActionTaken",
        "MemoryCgroup",
        "MemoryCgroupError",
        "MemoryLevelChanged",
        "MemorySentinel",
        "MemoryStatus",
        "MemoryUnavailableError",
        "MemoryWatchDegraded",
        "MemoryWatching",
        "Sample",
        "ShedLoadASGI",
        "ShedLoadWSGI",
        "Thresholds",
        "find_memory_cgroup",
        "watch_memory",
    },
    "warden.observe": {
        "HumanFormatter",
        "JsonFormatter",
        "health_asgi",
        "health_wsgi",
        "log_events",
        "notify_systemd",
        "serve_health",
    },
    "warden.supervisor": {
        "ExitKind",
        "ExitReason",
        "RestartPolicy",
        "Supervisor",
        "SupervisorOptions",
    },
    "warden.supervisor.control": set(),
    "warden.supervisor.notify": set(),
    "warden.supervisor.process": set(),
    "warden.supervisor.release": set(),
    "warden.supervisor.sockets": set(),
    "warden.systemd": {"Notifier", "listen_fds", "ping_forever", "watchdog_interval"},
}

_SUPERVISOR = "the supervisor's building block"

#: (module, name) -> why a name the module re-exports is not in its ``__all__``: warden's own,
#: importable from the package by its other packages (``warden.X._y`` is private to ``X``).
INTERNAL: dict[tuple[str, str], str] = {
    ("warden.lifecycle", "KINDS"): "the table of declared facts /metrics checks its kinds in",
    ("warden.lifecycle", "Timer"): "what Clock.call_at returns, for the parts keeping one",
    ("warden.lifecycle", "signal_name"): "SIGTERM for 15, in every layer's facts",
    ("warden.memory", "ChildCgroup"): f"{_SUPERVISOR}: --memory-limit's cgroup",
    ("warden.memory", "RunAttribution"): f"{_SUPERVISOR}: was this run OOM-killed?",
    ("warden.memory", "reader_for"): f"{_SUPERVISOR}: a cgroup's counters",
    ("warden.systemd", "LISTEN_FDS_START"): "fd 3: where the supervisor hands sockets over",
    ("warden.systemd", "monotonic_usec"): "RELOADING=1's MONOTONIC_USEC, gunicorn's hook too",
}


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
    return sorted(n for n in left_out if (name, n) not in INTERNAL)


def test_the_walk_finds_every_layer() -> None:
    # A walk that finds nothing would pass every test below: make sure it sees the tree.
    modules = public_modules()
    for expected in ("warden", "warden.lifecycle", "warden.supervisor.process", "warden.cli"):
        assert expected in modules
    assert not any("._" in name for name in modules)


def test_the_public_modules_are_the_listed_ones() -> None:
    # A new public module (a file or package without a leading underscore) is a promise too.
    assert set(public_modules()) == set(PUBLIC)


@pytest.mark.parametrize("name", public_modules())
def test_every_public_module_exports_exactly_its_listed_names(name: str) -> None:
    module = importlib.import_module(name)
    listed = PUBLIC.get(name, set())
    exported = set(getattr(module, "__all__", ()))
    assert exported - listed == set(), f"{name}: new public names; add them to PUBLIC on purpose"
    assert listed - exported == set(), f"{name}: names gone from __all__; take them out of PUBLIC"


@pytest.mark.parametrize(("name", "attribute"), sorted(INTERNAL))
def test_internal_names_resolve_and_stay_out_of_all(name: str, attribute: str) -> None:
    module = importlib.import_module(name)
    assert hasattr(module, attribute), f"{name}.{attribute} is listed as INTERNAL but is gone"
    assert attribute not in module.__all__, f"{name}.{attribute} is public: drop it from INTERNAL"


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
