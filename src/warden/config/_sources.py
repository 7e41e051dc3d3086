"""Reading a config file and the environment into one plain mapping.

A file is read through one descriptor (``O_NONBLOCK``, so a FIFO planted where the file
should be cannot hang a reload), checked to be a regular file under the size limit, decoded
as strict UTF-8 and parsed by its format: TOML (stdlib ``tomllib``), JSON, or YAML (the
``yaml`` extra). Every failure is a :class:`ConfigError` naming the file, the line where the
parser knows it, and the reason.

The environment overlay takes variables named ``<PREFIX>__<KEY>[__<KEY>...]``: with the
prefix ``APP``, ``APP__DB__HOST=db2`` sets ``db.host`` (keys lowercased). The environment
wins over the file. Values stay strings; the validator converts them (pydantic does; the
dataclass validator converts to ``int``, ``float`` and ``bool`` fields).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._yaml import RefusedYAMLError, safe_load
from ._errors import ConfigError, MissingExtraError

DEFAULT_MAX_BYTES = 4 * 1024 * 1024
"""4 MiB: four times a Kubernetes ConfigMap's 1 MiB cap; a config larger than that is a mistake."""

FORMATS = {".toml": "toml", ".json": "json", ".yaml": "yaml", ".yml": "yaml"}

_ERRNO_REASONS = {
    errno.ENOENT: "does not exist (deleted, or not created yet)",
    errno.EACCES: "permission denied; make it readable by uid {uid}",
    errno.EPERM: "permission denied; make it readable by uid {uid}",
    errno.ELOOP: "is a symlink loop (or too many levels of symlinks); point it at a file",
    errno.ENOTDIR: "a component of the path is not a directory",
    errno.EISDIR: "is a directory; give the path of the file inside it",
    errno.ENAMETOOLONG: "the path is too long",
}


def format_of(path: Path, fmt: str | None) -> str:
    """The format named by ``fmt``, else by the file's suffix."""
    if fmt is not None:
        if fmt not in ("toml", "json", "yaml"):
            raise ConfigError(path, f"format={fmt!r} is not known; use 'toml', 'json' or 'yaml'")
        return fmt
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        if path.is_dir():  # ConfigStore("."): the directory, not the file in it
            raise ConfigError(path, _ERRNO_REASONS[errno.EISDIR])
        raise ConfigError(
            path, f"suffix {path.suffix!r} names no format; pass format='toml', 'json' or 'yaml'"
        )
    return found


def read_file(path: Path, max_bytes: int) -> bytes:
    """The whole file, or a :class:`ConfigError` saying why not."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise ConfigError(path, _os_reason(exc)) from exc
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError(path, _ERRNO_REASONS[errno.EISDIR])
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(path, "is not a regular file (a FIFO, socket or device)")
        if info.st_size > max_bytes:
            raise ConfigError(path, _too_large(info.st_size, max_bytes))
        chunks = []
        size = 0
        while True:  # up to one byte past the limit: the file may grow while it is read
            chunk = os.read(fd, max_bytes + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise ConfigError(path, _too_large(size, max_bytes))
    except OSError as exc:
        raise ConfigError(path, _os_reason(exc)) from exc
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if not data.strip():
        # Zero bytes is what a reader sees between a writer's O_TRUNC and its first write.
        raise ConfigError(path, "is empty (a write in progress?); an empty config is refused")
    return data


def parse(data: bytes, path: Path, fmt: str) -> dict[str, Any]:
    """Decode and parse ``data``; the top level must be a table/object."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            path, f"invalid UTF-8 (byte 0x{data[exc.start]:02x})", line=line, column=column
        ) from exc
    text = text.removeprefix("\ufeff")
    if fmt == "toml":
        value = _parse_toml(text, path)
    elif fmt == "json":
        value = _parse_json(text, path)
    else:
        value = _parse_yaml(text, path)
    if not isinstance(value, dict):
        raise ConfigError(path, f"the top level is a {type(value).__name__}, not a table/mapping")
    return value


_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def _parse_toml(text: str, path: Path) -> Any:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        at = _TOML_AT.search(message)
        if at is None:  # "(at end of document)": the file stops where a value should be
            lines = text.count("\n") + (0 if text.endswith("\n") else 1)
            reason = message.replace("(at end of document)", "").strip()
            raise ConfigError(
                path, f"{reason} at the end of the file (truncated?)", line=lines
            ) from exc
        raise ConfigError(
            path, message[: at.start()], line=int(at.group(1)), column=int(at.group(2))
        ) from exc


def _parse_json(text: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(path, exc.msg, line=exc.lineno, column=exc.colno) from exc


def _parse_yaml(text: str, path: Path) -> Any:
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        raise MissingExtraError(f"the YAML config {path}", "yaml", "PyYAML") from None
    try:
        return safe_load(text)  # refuses alias bombs before anything is built
    except RefusedYAMLError as exc:
        raise ConfigError(path, str(exc), line=exc.line) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        reason = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        if mark is None:
            raise ConfigError(path, reason) from exc
        raise ConfigError(path, reason, line=mark.line + 1, column=mark.column + 1) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(path, f"invalid YAML: {exc}") from exc


def env_overlay(prefix: str | None, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables ``<prefix>__...``, by dotted key (``db.host``), sorted."""
    if not prefix:
        return {}
    start = prefix + "__"
    found = {}
    for name, value in environ.items():
        if name.startswith(start) and len(name) > len(start):
            keys = name[len(start) :].lower().split("__")
            if all(keys):
                found[".".join(keys)] = value
    return dict(sorted(found.items()))


def blame_environment(
    error: ConfigError, prefix: str | None, environ: Mapping[str, str]
) -> ConfigError:
    """``error`` naming the variable behind its field, when the environment set that field.

    The environment wins over the file, so a bad value may not be in the file at all: the
    reader is sent to the variable instead (its name only; the value may be a secret).
    """
    field = error.field
    if not prefix or field is None:
        return error
    start = prefix + "__"
    for name in sorted(environ):
        if not name.startswith(start) or len(name) == len(start):
            continue
        dotted = ".".join(name[len(start) :].lower().split("__"))
        if dotted == field or field.startswith(dotted + ".") or dotted.startswith(field + "."):
            reason = (
                f"{error.reason}; set by the environment variable {name}, which wins over the file"
            )
            blamed = ConfigError(error.path, reason, field=field)
            blamed.__cause__ = error.__cause__
            return blamed
    return error


def apply_overlay(data: dict[str, Any], overlay: Mapping[str, str], path: Path) -> dict[str, Any]:
    """``data`` with the overlay's values put in; the environment wins over the file."""
    if not overlay:
        return data
    merged = _copy_tables(data)
    for dotted, value in overlay.items():
        *parents, leaf = dotted.split(".")
        table = merged
        for i, key in enumerate(parents):
            table = table.setdefault(key, {})
            if not isinstance(table, dict):
                where = ".".join(parents[: i + 1])
                raise ConfigError(
                    path,
                    f"the environment sets {dotted}, but {where} is not a table in the file",
                    field=dotted,
                )
        table[leaf] = value
    return merged


def _copy_tables(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _copy_tables(v) if isinstance(v, dict) else v for k, v in data.items()}


def content_digest(data: bytes, overlay: Mapping[str, str]) -> str:
    """The snapshot's content hash: sha256 over the file and the overlay, hex."""
    digest = hashlib.sha256(data)
    if overlay:
        digest.update(b"\0" + json.dumps(overlay, sort_keys=True).encode())
    return digest.hexdigest()


def _os_reason(exc: OSError) -> str:
    reason = _ERRNO_REASONS.get(exc.errno or 0)
    if reason is None:
        return f"cannot be read: {exc.strerror or exc}"
    return reason.format(uid=os.geteuid())


def _too_large(size: int, limit: int) -> str:
    return (
        f"is {size} bytes, over the limit of {limit} bytes; "
        "shrink it or raise ConfigStore(max_bytes=...)"
    )
