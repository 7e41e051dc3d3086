"""Config hot reload: an immutable snapshot, swapped whole, from files watched for changes.

:class:`ConfigStore` holds the snapshot; :func:`watch_for_changes` is the debounced,
digest-checked file watch it uses, reusable on its own (``warden run --reload-on-change``).
Builds on the lifecycle only (its reload hook, its timeline). pydantic and PyYAML are
optional and imported only when a model or a YAML file needs them; the watch is inotify's
descriptor on the event loop (standard library only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy

if TYPE_CHECKING:
    from ._errors import ConfigError as ConfigError
    from ._errors import MissingExtraError as MissingExtraError
    from ._events import ConfigReloaded as ConfigReloaded
    from ._events import ConfigReloadFailed as ConfigReloadFailed
    from ._events import ConfigReloading as ConfigReloading
    from ._events import ConfigWatchDone as ConfigWatchDone
    from ._snapshot import ReloadResult as ReloadResult
    from ._snapshot import Snapshot as Snapshot
    from ._store import ConfigStore as ConfigStore
    from ._watch import file_digest
    from ._watch import watch_for_changes as watch_for_changes

    _file_digest = file_digest

# Loaded on first use (PEP 562): `warden run --reload-on-change` needs the watch alone
# (``warden.config._watch``), not the store, its parsers and their imports.
_LAZY = {
    "ConfigError": "warden.config._errors",
    "MissingExtraError": "warden.config._errors",
    "ConfigReloaded": "warden.config._events",
    "ConfigReloadFailed": "warden.config._events",
    "ConfigReloading": "warden.config._events",
    "ConfigWatchDone": "warden.config._events",
    "ReloadResult": "warden.config._snapshot",
    "Snapshot": "warden.config._snapshot",
    "ConfigStore": "warden.config._store",
    "watch_for_changes": "warden.config._watch",
    # Internal: for warden run --reload-on-change; not public API.
    "_file_digest": "warden.config._watch:file_digest",
}

__getattr__ = lazy(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
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
]
