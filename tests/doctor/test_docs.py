"""docs/doctor.md has a section for every check id doctor can report: why, and the fix."""

from __future__ import annotations

import re
from pathlib import Path

from tests._proc import ROOT
from warden.doctor._checks import CHECKS

SRC = ROOT / "src" / "warden" / "doctor"


def _ids_said_in(path: Path) -> set[str]:
    """The ids a module gives its results: the first argument of ok/warning/error/Result."""
    text = path.read_text()
    return set(re.findall(r'(?:ok|warning|error|Result)\(\s*"([a-z0-9-]+)"', text)) | set(
        re.findall(r'\(\s*"([a-z-]+)",\s*"(?:ok|warning|error)"', text)
    )


def test_every_check_id_has_its_section() -> None:
    sections = set(
        re.findall(r"^### `([a-z0-9-]+)`$", (ROOT / "docs" / "doctor.md").read_text(), re.M)
    )
    ids = set(CHECKS) | _ids_said_in(SRC / "_live.py") | _ids_said_in(SRC / "_why.py")
    assert {"live-pid1", "oom-kill", "sigkill", "oom-kill-child"} <= ids
    assert ids <= sections, sorted(ids - sections)
    assert sections <= ids, sorted(sections - ids)  # no section for an id that is gone
