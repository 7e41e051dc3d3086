"""Every counter ``warden run`` keeps, in one place.

Events say what happened once; a few things happen too often to be events (a flood of bad
sd_notify datagrams, orphans reaped by the thousand) or are only ever read as totals. Those
are counted here, in one :class:`Tally` the supervisor makes and hands to each part that
counts. ``warden status`` and ``/metrics`` read the same object, so the two never disagree.
Written on the event loop only; a scrape on the health thread reads whole ints and a copy of
the mapping, which is safe under the GIL.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

#: The results an upgrade can have, as ``warden status`` and ``warden_upgrades_total`` name them.
UPGRADE_RESULTS = ("ok", "failed", "rolled back")


@dataclass(slots=True)
class Tally:
    """The counters: each named once, each kept by one part."""

    #: sd_notify datagrams dropped, by reason (kept by the notify server).
    notify_drops: Counter[str] = field(default_factory=Counter)
    #: Control connections refused for their credentials (kept by the control server).
    control_refusals: int = 0
    #: Zombies reaped that nobody watched: the program's orphans (kept by the reaper).
    orphans_reaped: int = 0
    #: Restarts scheduled by the restart policy (kept by the supervisor's main).
    restarts: int = 0
    #: Starts that could not run the program for want of a resource, by errno name (EMFILE,
    #: EAGAIN...), each retried by the restart policy (kept by the supervisor).
    spawn_failures: Counter[str] = field(default_factory=Counter)
    #: Upgrades by result, one of :data:`UPGRADE_RESULTS` (kept by the upgrader).
    upgrades: Counter[str] = field(default_factory=Counter)
