"""The memory sentinel: see the OOM kill coming, act inside the process, name it afterwards.

* :func:`watch_memory` attaches a :class:`MemorySentinel` with default actions to a lifecycle.
* :class:`MemorySentinel` watches any memory cgroup (a child's too) and calls back per level.
* ``ChildCgroup``, ``RunAttribution`` and ``reader_for`` are the supervisor's building blocks
  (a limited cgroup of a child's own, "was this run OOM-killed?" from its counter, a cgroup's
  counters): importable for warden's own packages, not in ``__all__``, not a promise.

Layering: imports only the lifecycle (for facts and the stop) and warden's errors.

The names are loaded on first use (PEP 562), as ``warden``'s own: ``warden run`` needs the
cgroup discovery and the OOM attribution at every start, the sentinel only when asked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy

if TYPE_CHECKING:
    # Internal, for warden's other packages (warden run, warden doctor); not public API.
    from . import _attribution, _child_cgroup, _events, _readers, _sizes
    from ._attribution import RunAttribution as RunAttribution
    from ._cgroup import MemoryCgroup as MemoryCgroup
    from ._cgroup import find_memory_cgroup as find_memory_cgroup
    from ._child_cgroup import ChildCgroup as ChildCgroup
    from ._errors import MemoryCgroupError as MemoryCgroupError
    from ._errors import MemoryUnavailableError as MemoryUnavailableError
    from ._events import MemoryActionTaken as MemoryActionTaken
    from ._events import MemoryLevelChanged as MemoryLevelChanged
    from ._events import MemoryWatchDegraded as MemoryWatchDegraded
    from ._events import MemoryWatching as MemoryWatching
    from ._levels import Level as Level
    from ._levels import Thresholds as Thresholds
    from ._readers import Sample as Sample
    from ._readers import reader_for as reader_for
    from ._sentinel import Action as Action
    from ._sentinel import MemorySentinel as MemorySentinel
    from ._sentinel import MemoryStatus as MemoryStatus
    from ._shed import ShedLoadASGI as ShedLoadASGI
    from ._shed import ShedLoadWSGI as ShedLoadWSGI
    from ._watch import watch_memory as watch_memory

    _RunAttribution = _attribution.RunAttribution
    _ChildCgroup = _child_cgroup.ChildCgroup
    _MemoryRecycle = _events.MemoryRecycle
    _OomKillSurvived = _events.OomKillSurvived
    _MemoryReader = _readers.MemoryReader
    _reader_for = _readers.reader_for
    _limit_of = _readers.limit_of
    _parse_keyed = _readers.parse_keyed
    _parse_meminfo = _readers.parse_meminfo
    _MIN_LIMIT = _sizes.MIN_LIMIT

_LAZY = {
    "RunAttribution": "warden.memory._attribution",
    "MemoryCgroup": "warden.memory._cgroup",
    "find_memory_cgroup": "warden.memory._cgroup",
    "ChildCgroup": "warden.memory._child_cgroup",
    "MemoryCgroupError": "warden.memory._errors",
    "MemoryUnavailableError": "warden.memory._errors",
    "MemoryActionTaken": "warden.memory._events",
    "MemoryLevelChanged": "warden.memory._events",
    "MemoryWatchDegraded": "warden.memory._events",
    "MemoryWatching": "warden.memory._events",
    "Level": "warden.memory._levels",
    "Thresholds": "warden.memory._levels",
    "Sample": "warden.memory._readers",
    "reader_for": "warden.memory._readers",
    "Action": "warden.memory._sentinel",
    "MemorySentinel": "warden.memory._sentinel",
    "MemoryStatus": "warden.memory._sentinel",
    "ShedLoadASGI": "warden.memory._shed",
    "ShedLoadWSGI": "warden.memory._shed",
    "watch_memory": "warden.memory._watch",
    # Internal, for warden's other packages (warden run, warden doctor); not public API.
    "_RunAttribution": "warden.memory._attribution:RunAttribution",
    "_ChildCgroup": "warden.memory._child_cgroup:ChildCgroup",
    "_MemoryRecycle": "warden.memory._events:MemoryRecycle",
    "_OomKillSurvived": "warden.memory._events:OomKillSurvived",
    "_MemoryReader": "warden.memory._readers:MemoryReader",
    "_reader_for": "warden.memory._readers:reader_for",
    "_limit_of": "warden.memory._readers:limit_of",
    "_parse_keyed": "warden.memory._readers:parse_keyed",
    "_parse_meminfo": "warden.memory._readers:parse_meminfo",
    "_MIN_LIMIT": "warden.memory._sizes:MIN_LIMIT",
}

__getattr__ = lazy(__name__, _LAZY, globals())


__all__ = [
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
]
