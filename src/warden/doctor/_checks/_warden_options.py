"""``warden-options``: every option ``warden run`` is given must be one it accepts.

Read with ``warden run``'s own option table: a value it would refuse at start-up (a
duration it cannot read, an unknown flag) is found before the deployment, not in its log.
"""

from __future__ import annotations

from .._deployment import Deployment
from .._results import Result, error

ID = "warden-options"


def check(d: Deployment) -> list[Result]:
    if d.warden is None:
        return []
    return [
        error(ID, d.where, f"{label}: {message}", "fix the value as the message says")
        for label, message in d.warden.problems
    ]
