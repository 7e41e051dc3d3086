"""The memory sentinel: see the OOM kill coming, act inside the process, name it afterwards.

* :func:`watch_memory` attaches a :class:`MemorySentinel` with default actions to a lifecycle.
* :class:`MemorySentinel` watches any memory cgroup (a child's too) and calls back per level.
* :class:`ChildCgroup` and :class:`RunAttribution` are the supervisor's building blocks:
  a limited cgroup of a child's own, and "was this run OOM-killed?" from its counter.

Layering: imports only the lifecycle (for facts and the stop) and warden's errors.
"""

from __future__ import annotations

from ._attribution import RunAttribution as RunAttribution
from ._attribution import describe_timeline as describe_timeline
from ._cgroup import MemoryCgroup as MemoryCgroup
from ._cgroup import find_memory_cgroup as find_memory_cgroup
from ._child_cgroup import ChildCgroup as ChildCgroup
from ._errors import MemoryCgroupError as MemoryCgroupError
from ._errors import MemoryUnavailableError as MemoryUnavailableError
from ._events import MemoryActionTaken as MemoryActionTaken
from ._events import MemoryLevelChanged as MemoryLevelChanged
from ._events import MemoryWatchDegraded as MemoryWatchDegraded
from ._events import MemoryWatching as MemoryWatching
from ._events import OomKillAttributed as OomKillAttributed
from ._levels import Level as Level
from ._levels import Thresholds as Thresholds
from ._readers import Sample as Sample
from ._readers import reader_for as reader_for
from ._sentinel import Action as Action
from ._sentinel import MemorySentinel as MemorySentinel
from ._sentinel import MemoryStatus as MemoryStatus
from ._shed import ShedLoadASGI as ShedLoadASGI
from ._shed import ShedLoadWSGI as ShedLoadWSGI
from ._sizes import parse_size as parse_size
from ._watch import watch_memory as watch_memory

__all__ = [
    "Action",
    "ChildCgroup",
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
    "OomKillAttributed",
    "RunAttribution",
    "Sample",
    "ShedLoadASGI",
    "ShedLoadWSGI",
    "Thresholds",
    "describe_timeline",
    "find_memory_cgroup",
    "parse_size",
    "reader_for",
    "watch_memory",
]
