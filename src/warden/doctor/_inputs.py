"""What ``warden doctor PATH...`` reads: files, directories (walked), and ``-`` (stdin).

Each file is a Kubernetes manifest (``.yaml``, ``.yml``, ``.json``), a systemd unit
(``.service``, ``.socket``) or a Containerfile/Dockerfile (by name: ``Containerfile``,
``Dockerfile``, ``Dockerfile.prod``, ``app.Containerfile``). Standard input and a file of
another name are recognised by their content: a ``[Section]`` header is a unit, a first
instruction ``FROM`` (or ``ARG``) a Containerfile, anything else YAML (``helm template |
warden doctor -``). A directory gives the files of those kinds in it, at any depth.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable
from typing import IO, Literal

from .._exceptions import WardenError

Kind = Literal["manifest", "unit", "containerfile"]

#: How standard input is named in messages.
STDIN = "<stdin>"

_MAX_BYTES = 16 * 2**20  # a manifest larger than this is not one a person wrote
_CONTAINERFILE = re.compile(
    r"^(?:Containerfile|Dockerfile)(?:\..+)?$|\.(?:Containerfile|Dockerfile|dockerfile)$"
)


class InputError(WardenError):
    """Input doctor cannot read: one line naming the file (and line) and why (exit 2)."""

    def __init__(self, file: str, reason: str, line: int | None = None) -> None:
        self.file = file
        self.line = line
        self.reason = reason
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {reason}")


@dataclasses.dataclass(frozen=True, slots=True)
class Source:
    """One input: its name (as given, or ``<stdin>``), its text and what kind of file it is."""

    name: str
    text: str
    kind: Kind


def kind_of(name: str, text: str | None = None) -> Kind | None:
    """The kind of the file ``name`` (by its name, else by ``text``); None when neither says."""
    base = os.path.basename(name)  # noqa: PTH119
    suffix = os.path.splitext(base)[1].lower()  # noqa: PTH122
    if suffix in (".yaml", ".yml", ".json"):
        return "manifest"
    if suffix in (".service", ".socket"):
        return "unit"
    if _CONTAINERFILE.search(base):
        return "containerfile"
    return None if text is None else _sniff(text)


def _sniff(text: str) -> Kind:
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        if re.fullmatch(r"\[[A-Za-z][A-Za-z0-9-]*\]", stripped):
            return "unit"
        if re.match(r"(?i)(?:FROM|ARG)\s", stripped):
            return "containerfile"
        return "manifest"
    return "manifest"


def read_inputs(paths: Iterable[str], stdin: IO[str] | None = None) -> list[Source]:
    """Every input named by ``paths`` (``-``: ``stdin``), in order.

    Raises:
        InputError: a path that does not exist or cannot be read, or is not text.
    """
    sources: list[Source] = []
    for path in paths:
        if path == "-":
            if stdin is None:
                raise InputError(STDIN, "standard input is closed")
            text = stdin.read()
            sources.append(Source(STDIN, text, _sniff(text)))
        elif os.path.isdir(path):  # noqa: PTH112
            sources += [_read(found, kind) for found, kind in _walk(path)]
        else:
            text = _text(path)
            kind = kind_of(path, text)
            assert kind is not None  # with a text, the content decides
            sources.append(Source(path, text, kind))
    return sources


def _walk(directory: str) -> list[tuple[str, Kind]]:
    found: list[tuple[str, Kind]] = []
    for root, dirs, files in os.walk(directory, onerror=_walk_error):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            kind = kind_of(name)
            if kind is not None:
                found.append((os.path.join(root, name), kind))  # noqa: PTH118
    return found


def _walk_error(exc: OSError) -> None:
    raise InputError(str(exc.filename), f"cannot read it: {exc.strerror}")


def _read(path: str, kind: Kind) -> Source:
    return Source(path, _text(path), kind)


def _text(path: str) -> str:
    try:
        with open(path, "rb") as file:
            data = file.read(_MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(path, f"cannot read it: {exc.strerror}") from None
    if len(data) > _MAX_BYTES:
        raise InputError(path, f"larger than {_MAX_BYTES // 2**20} MiB; give the files it holds")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(path, "not UTF-8 text", line) from None
