"""systemd unit files (``.service``, ``.socket``) as systemd reads them, with line numbers.

systemd.syntax(7): ``[Section]`` headers, ``Key=Value`` lines, ``#`` and ``;`` comments, a
trailing backslash continues a line (comment lines inside are skipped). A key given again
adds to a list setting (``Environment=``, ``ExecStart=``, ``ListenStream=``) and replaces a
single one; an empty assignment resets the list. ``Environment=`` holds space-separated
``VAR=value`` words, each may be double- or single-quoted.

Drop-ins (systemd.unit(5)): the ``.conf`` files of ``app.service.d/`` (and of ``service.d/``,
for every service) are read after the unit, in the order of their file names, as if appended
to it: a later assignment wins, an empty one resets a list.
"""

from __future__ import annotations

import dataclasses
import os
import shlex

from ._inputs import InputError


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One ``Key=Value`` line: its section, key, value, line, and the file it is in (the
    unit's, or a drop-in's)."""

    section: str
    key: str
    value: str
    line: int
    file: str


@dataclasses.dataclass(frozen=True, slots=True)
class UnitFile:
    """A parsed unit file.

    Attributes:
        file: the path as given.
        name: the unit's name (``app.service``).
        entries: every assignment, in order.
    """

    file: str
    name: str
    entries: tuple[Entry, ...]

    @property
    def type(self) -> str:
        """``service`` or ``socket``: the suffix, else (standard input) the section it has."""
        suffix = self.name.rpartition(".")[2]
        if suffix in ("service", "socket"):
            return suffix
        sections = {entry.section for entry in self.entries}
        return "socket" if "Socket" in sections and "Service" not in sections else "service"

    def values(self, section: str, key: str) -> list[Entry]:
        """Every assignment of a list setting since its last reset (an empty one)."""
        found: list[Entry] = []
        for entry in self.entries:
            if entry.section == section and entry.key == key:
                found = [] if not entry.value else [*found, entry]
        return found

    def value(self, section: str, key: str) -> Entry | None:
        """The last assignment of a single setting (None: not set, or reset)."""
        found = self.values(section, key)
        return found[-1] if found else None

    def environment(self) -> dict[str, tuple[str, Entry]]:
        """``Environment=`` of ``[Service]``: name -> (value, the line that set it)."""
        env: dict[str, tuple[str, Entry]] = {}
        for entry in self.values("Service", "Environment"):
            try:
                words = shlex.split(entry.value)
            except ValueError as exc:
                raise InputError(
                    entry.file, f"Environment={entry.value!r}: {exc}", entry.line
                ) from None
            for word in words:
                name, equals, value = word.partition("=")
                if equals and name:
                    env[name] = (value, entry)
        return env

    def with_dropins(self, dropins: list[UnitFile]) -> UnitFile:
        """This unit with ``dropins`` applied: read after it, in the order of their names."""
        ordered = sorted(dropins, key=lambda dropin: os.path.basename(dropin.file))  # noqa: PTH119
        entries = self.entries + tuple(e for dropin in ordered for e in dropin.entries)
        return dataclasses.replace(self, entries=entries)


def read_unit(file: str, text: str) -> UnitFile:
    """Parse ``text`` (the unit file ``file``). Raises :class:`InputError` on a line that is
    neither a section, an assignment nor a comment."""
    entries: list[Entry] = []
    section = ""
    pending: tuple[str, int] | None = None  # a continued line: its text so far, its start
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if pending is not None and line.startswith(("#", ";")):
            continue
        if pending is not None:
            line = pending[0] + " " + line
            start = pending[1]
        else:
            start = number
        if line.endswith("\\"):
            pending = (line[:-1].rstrip(), start)
            continue
        pending = None
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise InputError(file, f"{line!r} is not a [Section] header", start)
            section = line[1:-1]
            continue
        key, equals, value = line.partition("=")
        if not equals or not key.strip():
            raise InputError(file, f"{line!r} is not a Key=Value line", start)
        if not section:
            raise InputError(file, f"{key.strip()}= comes before any [Section] header", start)
        entries.append(Entry(section, key.strip(), value.strip(), start, file))
    if pending is not None:
        entries_line = pending[1]
        raise InputError(file, "the file ends in a continued line (a trailing \\)", entries_line)
    return UnitFile(file, os.path.basename(file), tuple(entries))  # noqa: PTH119
