"""docs/benchmarks.md: each benchmark owns one section between its own markers."""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\n"
    "Figures written by the scripts in `bench/`; each section names the command, the date and "
    "the machine that produced it. Ratios are against a peer measured in the same run.\n"
)


def write_section(name: str, section: str, path: Path = DOC) -> None:
    """Put ``section`` between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->``.

    The other sections are kept as they are; a section seen for the first time is appended.
    ``section`` must start with the begin marker and end with the end marker.
    """
    begin, end = markers(name)
    text = path.read_text() if path.exists() else HEADER
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
