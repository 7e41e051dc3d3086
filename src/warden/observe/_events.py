"""The observers' own facts on the timeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..lifecycle import Fact


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthServing(Fact):
    """The health server answers at ``url`` (the port chosen, where port 0 was asked for)."""

    kind: ClassVar[str] = "health.serving"
    url: str

    @property
    def name(self) -> str:
        return self.url

    @property
    def detail(self) -> str:
        return "serving /livez, /readyz and /metrics"
