"""The config store's errors: a bad file, and a missing optional dependency.

``ConfigError`` keeps the parts of its one-line message (file, line, field, reason) as
attributes, so a caller can show them without parsing the text.
"""

from __future__ import annotations

from pathlib import Path

from warden._exceptions import ConfigurationError, WardenError


class ConfigError(ConfigurationError):
    """A config file cannot be used: unreadable, unparsable or invalid.

    The message is one line: ``config /etc/app.toml: line 3, column 7: <reason>`` or
    ``config /etc/app.toml: field db.port: <reason>``.

    Attributes:
        path: the file.
        reason: what is wrong, without the location.
        line: the 1-based line, where known.
        column: the 1-based column, where known.
        field: the dotted field (``db.port``), where known.
    """

    def __init__(
        self,
        path: Path | str,
        reason: str,
        *,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.reason = " ".join(reason.split())  # one line, whatever the parser said
        self.line = line
        self.column = column
        self.field = field
        where = ""
        if line is not None:
            where = f"line {line}, column {column}: " if column is not None else f"line {line}: "
        if field is not None:
            where += f"field {field}: "
        super().__init__(f"config {self.path}: {where}{self.reason}")


class MissingExtraError(WardenError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, what: str, extra: str, module: str) -> None:
        super().__init__(
            f"{what} needs {module}, which is not installed: pip install 'warden[{extra}]'"
        )
        self.extra = extra
