"""Declaring an option once: a field of the options value that says how it is given from outside.

One declaration per option, on its field (:func:`option`), carries everything about it: the
flag (``--stop-timeout``), its environment variable (derived: ``WARDEN_STOP_TIMEOUT``), the
converter, the default and the help. The CLI builds its parser from the declarations
(:func:`declared`), :func:`fill` turns what it parsed and ``WARDEN_*`` into field values, and
the options value runs the same converters on every field when it is built, so a bad value is
refused with the same rule whichever way it came in.

A converter takes the text of a flag or variable, or a Python value given to the options value
directly, and the name to blame (``--stop-timeout``, ``WARDEN_STOP_TIMEOUT``, ``stop_timeout``);
it returns the typed value or raises :class:`ConfigurationError`, one line naming the thing,
the value and the fix.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import re
import shlex
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

from .._durations import parse_duration
from .._exceptions import ConfigurationError, shown
from .._sizes import parse_size

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_T = TypeVar("_T")

Converter = Callable[[object, str], _T]

#: The key of an :class:`Option` in a dataclass field's metadata.
_KEY = "warden.option"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Option:
    """How one field of the options is given on the command line and in the environment.

    Attributes:
        flag: the long flag, ``--stop-timeout``; the variable is derived from it.
        metavar: what the flag takes, shown in ``--help`` (``DURATION``).
        help: the help line (or a function giving it, for a default known only at run time);
            the variable's name is appended.
        convert: text or value -> the field's value; raises :class:`ConfigurationError`.
        switch: a boolean ``--flag/--no-flag``; the variable takes 1 or 0.
        repeat: the flag may be given several times; the variable holds space-separated items.
        absent: the field values to use when neither the flag nor the variable is given, if
            they differ from the fields' defaults (the command line's own defaults).
    """

    flag: str
    metavar: str = ""
    help: str | Callable[[], str]
    convert: Callable[[object, str], object]
    switch: bool = False
    repeat: bool = False
    absent: Callable[[], Mapping[str, object]] | None = None

    @property
    def env(self) -> str:
        """The environment variable: ``--stop-timeout`` -> ``WARDEN_STOP_TIMEOUT``."""
        return "WARDEN_" + self.flag.removeprefix("--").upper().replace("-", "_")

    @property
    def help_text(self) -> str:
        """The help line, ending with the variable (and how it is written)."""
        text = self.help() if callable(self.help) else self.help
        form = "=1|0" if self.switch else ", space-separated" if self.repeat else ""
        return f"{text} [{self.env}{form}]"


def option(
    flag: str,
    *,
    convert: Converter[_T],
    default: object,
    help: str | Callable[[], str],
    metavar: str = "",
    switch: bool = False,
    repeat: bool = False,
    absent: Callable[[], Mapping[str, object]] | None = None,
) -> _T:
    """Declare a field of the options as an option (use it as the field's default).

    The field's type is the converter's; the default is converted (so checked) like any other
    value each time the options are built.

    Example::

        @dataclasses.dataclass(frozen=True)
        class Options:
            stop_timeout: float = option(
                "--stop-timeout",
                default=10.0,
                convert=duration,
                metavar="DURATION",
                help="from the stop signal to SIGKILL (default 10s)",
            )
    """
    declared = Option(
        flag=flag,
        metavar=metavar,
        help=help,
        convert=convert,
        switch=switch,
        repeat=repeat,
        absent=absent,
    )
    # The Field stands where the default goes; @dataclass takes it out of the class again.
    return cast("_T", dataclasses.field(default=default, metadata={_KEY: declared}))


def declared(cls: type[DataclassInstance]) -> tuple[tuple[str, Option], ...]:
    """``(field name, option)`` for each declared field of the dataclass ``cls``, in order."""
    return tuple((f.name, f.metadata[_KEY]) for f in dataclasses.fields(cls) if _KEY in f.metadata)


def fill(
    options: Sequence[tuple[str, Option]],
    given: Mapping[str, object],
    environ: Mapping[str, str],
    *,
    only: Collection[str] | None = None,
) -> dict[str, Any]:
    """The field values from the command line (``given``, by field name) and the environment.

    The flag wins over the variable; an option given neither way is left out (its field keeps
    its default) unless it declares what its absence means. ``only``: convert just these
    fields (``warden doctor`` reads a few options of a command meant for another machine,
    where a converter that looks at this one, such as ``--reload-on-change``'s, cannot).
    """
    values: dict[str, Any] = {}
    for name, declared_option in options:
        if only is not None and name not in only:
            continue
        flag_value = given.get(name)
        if flag_value is not None:
            values[name] = declared_option.convert(flag_value, declared_option.flag)
        elif declared_option.env in environ:
            text = environ[declared_option.env]
            raw: object = text.split() if declared_option.repeat else text
            values[name] = declared_option.convert(raw, declared_option.env)
        elif declared_option.absent is not None:
            values.update(declared_option.absent())
    return values


def add_arguments(parser: argparse.ArgumentParser, options: Sequence[tuple[str, Option]]) -> None:
    """One argument of ``parser`` per declared option (``dest`` is the field's name; a flag
    not given parses as None, so the variable or the default can stand in)."""
    for name, declared_option in options:
        if declared_option.switch:
            parser.add_argument(
                declared_option.flag,
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=declared_option.help_text,
            )
        else:
            parser.add_argument(
                declared_option.flag,
                dest=name,
                action="append" if declared_option.repeat else "store",
                metavar=declared_option.metavar,
                help=declared_option.help_text,
            )


def given_values(
    namespace: argparse.Namespace, options: Sequence[tuple[str, Option]]
) -> dict[str, object]:
    """What the command line gave, by field name (None for a flag not given)."""
    return {name: getattr(namespace, name) for name, _ in options}


class _Refusing(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigurationError(message)


def parse_command_line(
    options: Sequence[tuple[str, Option]], argv: Sequence[str]
) -> tuple[dict[str, object], list[str]]:
    """``(given, command)`` from the arguments after ``warden run``, converting nothing.

    The same parser ``warden run`` builds (:func:`add_arguments`), for a reader of a command
    line written elsewhere (``warden doctor`` reading a manifest): ``given`` as
    :func:`fill` takes it, ``command`` what follows ``--`` (or the first word that is not an
    option). Raises :class:`ConfigurationError` for arguments ``warden run`` would refuse.
    """
    parser = _Refusing(prog="warden run", add_help=False, allow_abbrev=False)
    add_arguments(parser, options)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    namespace = parser.parse_args(list(argv))
    command = list(namespace.command)
    if command[:1] == ["--"]:
        command = command[1:]
    return given_values(namespace, options), command


def convert_fields(value: object, options: Sequence[tuple[str, Option]]) -> None:
    """Run each declared field's converter on its own value, in place (a frozen dataclass too)."""
    for name, declared_option in options:
        object.__setattr__(value, name, declared_option.convert(getattr(value, name), name))


# -- converters ------------------------------------------------------------------------------


def optional(convert: Converter[_T]) -> Converter[_T | None]:
    """``convert``, letting ``None`` (the field's "not set") through."""

    def converter(value: object, what: str) -> _T | None:
        return None if value is None else convert(value, what)

    return converter


def duration(value: object, what: str) -> float:
    """Seconds, 0 or more: ``10``, ``500ms``, ``1.5 s``, ``2m``."""
    return parse_duration(value, what=what)


def positive_duration(value: object, what: str) -> float:
    """Seconds, more than 0."""
    return parse_duration(value, what=what, allow_zero=False)


def size(value: object, what: str) -> int:
    """Bytes, more than 0: ``1048576``, ``512M``, ``1G``."""
    return parse_size(value, what=what, allow_zero=False)


def boolean(value: object, what: str) -> bool:
    """``1``/``0``, ``true``/``false``, ``yes``/``no``, ``on``/``off`` (and ``""``: false)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigurationError(f"{what}={value!r} is not a boolean; use 1 or 0 (true/false)")


def fraction(value: object, what: str) -> float:
    """A fraction from 0 to 1: ``0.2`` or ``20%``."""
    number = float("nan")
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        with contextlib.suppress(ValueError):  # not a number: NaN fails the range check
            number = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    if not 0.0 <= number <= 1.0:
        raise ConfigurationError(
            f"{what}={value!r} is not a fraction from 0 to 1; write e.g. 0.2 or 20%"
        )
    return number


#: The most restarts a limit may name: a crash loop of a million restarts is no limit (weeks
#: of restarts at the default 30 s backoff); past it, say ``unlimited``.
MAX_RESTARTS = 1_000_000


def restarts(value: object, what: str) -> int | None:
    """A number of restarts, 0 to :data:`MAX_RESTARTS`; ``unlimited`` (or ``inf``, ``never``,
    None): no limit."""
    if value is None:
        return None
    count: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        count = value
    else:
        text = str(value).strip().lower()
        if text in ("unlimited", "inf", "never"):
            return None
        if re.fullmatch(r"[0-9]{1,20}", text):  # ASCII digits; int() would take "١٢" too
            count = int(text)
        elif re.fullmatch(r"[0-9]+", text):
            count = MAX_RESTARTS + 1  # thousands of digits: int() itself refuses them
    if count is None or count < 0:
        raise ConfigurationError(
            f"{what}={shown(value)} is not a number of restarts; give 0 or more, or 'unlimited'"
        )
    if count > MAX_RESTARTS:
        raise ConfigurationError(
            f"{what}={shown(value)} is more restarts than any limit means (at most "
            f"{MAX_RESTARTS:,}); give 'unlimited' for no limit"
        )
    return count


def command_line(value: object, what: str) -> tuple[str, ...]:
    """A command line, split like a shell does (``'./check.sh --quick'``); a tuple as it is."""
    if isinstance(value, tuple | list):
        return tuple(str(word) for word in value)
    text = str(value)
    try:
        words = tuple(shlex.split(text))
    except ValueError as exc:
        raise ConfigurationError(f"{what}={text!r} is not a command line: {exc}") from None
    if not words:
        raise ConfigurationError(f"{what} is empty; give a command, e.g. {what} './check.sh'")
    return words


def path(value: object, what: str) -> str:
    """A file path, not empty."""
    text = str(value).strip()
    if not text:
        raise ConfigurationError(f"{what} is empty; give a file path")
    return text


def paths(value: object, what: str) -> tuple[str, ...]:
    """File paths (a repeatable flag): each one :func:`path`."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Sequence):
        raise ConfigurationError(f"{what}={value!r} is not a list of file paths")
    return tuple(path(item, what) for item in items)
