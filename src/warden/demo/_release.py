"""A release of the bundled service, as the demo deploys it and the service reads it.

A release is a directory ``releases/N`` with ``release.json``: its number, and for the
broken release its fault. ``current`` points at the release a new process starts; the
service reads it once, at its start, as a program reads its code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

#: The fault of the broken release: it passes its first readiness check, then answers 500.
FAULT_500 = "500-after-ready"

FILE = "release.json"


@dataclass(frozen=True)
class Release:
    """What ``current`` pointed at when a process started."""

    number: int
    fault: str | None = None

    @classmethod
    def read(cls, directory: Path) -> Release:
        data = json.loads((directory / FILE).read_text())
        return cls(number=int(data["release"]), fault=data.get("fault"))

    def write(self, directory: Path) -> None:
        (directory / FILE).write_text(json.dumps({"release": self.number, "fault": self.fault}))
