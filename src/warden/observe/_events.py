"""The observers' own facts on the timeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..lifecycle import Fact, Says


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthServing(Fact):
    """The health server answers at ``url`` (the port chosen, where port 0 was asked for)."""

    kind: ClassVar[str] = "health.serving"
    says: ClassVar[Says] = Says(name="{url}", detail="serving /livez, /readyz and /metrics")
    url: str
