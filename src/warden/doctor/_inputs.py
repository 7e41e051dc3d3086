"""What ``warden doctor PATH...`` reads: files, directories (walked), and ``-`` (stdin).

Each file is a Kubernetes manifest (``.yaml``, ``.yml``, ``.json``), a systemd unit
(``.service``, ``.socket``) or a Containerfile/Dockerfile (by name: ``Containerfile``,
``Dockerfile``, ``Dockerfile.prod``, ``app.Containerfile``). Standard input and a file of
another name are recognised by their content: a ``[Section]`` header is a unit, a first
instruction ``FROM`` (or ``ARG``) a Containerfile, anything else YAML (``helm template |
warden doctor -``). A directory gives the files of those kinds in it, at any depth.

Only regular files are read (a symlink to one included): a FIFO, a socket or a device named
like an input is refused (opening a FIFO would wait for a writer for ever, a device would
never end). Standard input and every file are read up to 16 MiB: more is refused.

A systemd drop-in (``app.service.d/10-timeout.conf``; ``service.d/*.conf`` for every
service) is read with the unit it belongs to; a ``.conf`` elsewhere is no input.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from collections.abc import Iterable
from typing import IO, Literal

from .._exceptions import WardenError

Kind = Literal["manifest", "unit", "dropin", "containerfile"]

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
        self.reason = " ".join(reason.split())  # one line, whatever the cause's text was
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {self.reason}")


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
    if suffix == ".conf" and (dropin_of(name) is not None or text is not None):
        return "dropin"  # given by name, a .conf is a drop-in even outside its directory
    if _CONTAINERFILE.search(base):
        return "containerfile"
    return None if text is None else _sniff(text)


def dropin_of(name: str) -> str | None:
    """The unit a drop-in at ``name`` belongs to: ``app.service`` for
    ``app.service.d/10-timeout.conf``, ``service`` (every service) for ``service.d/x.conf``;
    None for a file that is not in a drop-in directory."""
    directory = os.path.basename(os.path.dirname(os.path.abspath(name)))  # noqa: PTH100, PTH119, PTH120
    if not directory.endswith(".d"):
        return None
    unit = directory[:-2]
    if unit in ("service", "socket") or unit.endswith((".service", ".socket")):
        return unit
    return None


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


def read_inputs(paths: Iterable[str], stdin: IO[str] | IO[bytes] | None = None) -> list[Source]:
    """Every input named by ``paths`` (``-``: ``stdin``), in order.

    Raises:
        InputError: a path that does not exist or cannot be read, or is not text.
    """
    sources: list[Source] = []
    for path in paths:
        if path == "-":
            text = _stdin_text(stdin)
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
            path = os.path.join(root, name)  # noqa: PTH118
            kind = kind_of(path)
            if kind is not None:
                found.append((path, kind))
    return found


def _walk_error(exc: OSError) -> None:
    raise InputError(str(exc.filename), f"cannot read it: {exc.strerror}")


def _read(path: str, kind: Kind) -> Source:
    return Source(path, _text(path), kind)


_NOT_REGULAR = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a directory"),
)


def _text(path: str) -> str:
    # O_NONBLOCK: opening a FIFO without a writer returns at once instead of waiting for one
    # (it is refused below); it changes nothing for a regular file.
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise InputError(path, f"cannot read it: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            what = next((said for test, said in _NOT_REGULAR if test(mode)), "not a file")
            raise InputError(path, f"not a regular file ({what}); give a file")
        try:
            data = file.read(_MAX_BYTES + 1)
        except OSError as exc:
            raise InputError(path, f"cannot read it: {exc.strerror}") from None
    return _decode(path, data)


def _stdin_text(stdin: IO[str] | IO[bytes] | None) -> str:
    """Standard input, up to the same cap as a file (``head -c 8G /dev/zero | warden doctor -``
    ends at 16 MiB, refused)."""
    if stdin is None:
        raise InputError(STDIN, "standard input is closed")
    raw = getattr(stdin, "buffer", stdin)
    try:
        data = raw.read(_MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(STDIN, f"cannot read it: {exc.strerror}") from None
    if isinstance(data, str):  # a text stream without a buffer (a test's StringIO)
        data = data.encode("utf-8", "surrogateescape")
    return _decode(STDIN, data)


def _decode(name: str, data: bytes) -> str:
    if len(data) > _MAX_BYTES:
        raise InputError(name, f"larger than {_MAX_BYTES // 2**20} MiB; give the files it holds")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(name, "not UTF-8 text", line) from None
