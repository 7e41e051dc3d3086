"""Config hot reload: an immutable snapshot, swapped whole, from files watched for changes.

:class:`ConfigStore` holds the snapshot; :func:`watch_for_changes` is the debounced,
digest-checked file watch it uses, reusable on its own (``warden run --reload-on-change``).
Builds on the lifecycle only (its reload hook, its timeline). pydantic, PyYAML and
watchfiles are optional and imported only when a model, a YAML file or a watch needs them.
"""

from __future__ import annotations

from ._errors import ConfigError as ConfigError
from ._errors import MissingExtraError as MissingExtraError
from ._events import ConfigReloaded as ConfigReloaded
from ._events import ConfigReloadFailed as ConfigReloadFailed
from ._events import ConfigReloading as ConfigReloading
from ._events import ConfigWatchDone as ConfigWatchDone
from ._snapshot import ReloadResult as ReloadResult
from ._snapshot import Snapshot as Snapshot
from ._sources import DEFAULT_MAX_BYTES as DEFAULT_MAX_BYTES
from ._store import ConfigStore as ConfigStore
from ._watch import DEFAULT_DEBOUNCE as DEFAULT_DEBOUNCE
from ._watch import watch_for_changes as watch_for_changes

__all__ = [
    "DEFAULT_DEBOUNCE",
    "DEFAULT_MAX_BYTES",
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
