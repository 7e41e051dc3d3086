"""warden's own options in a deployment, read with ``warden run``'s option table.

The flags, their ``WARDEN_*`` variables, the converters and the defaults are the table's
(``warden.supervisor._options``): the parser is the one ``warden run`` builds, and a value is
converted by the option's own converter, so doctor and ``warden run`` can never read a
command line differently. Only options whose converter looks at nothing but the text are
converted (the table's ``--reload-on-change`` converter checks this machine's files: doctor
reads the deployment for another machine, and takes those paths as written).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from .._exceptions import ConfigurationError
from ..supervisor import _KILL_MARGIN as KILL_MARGIN
from ..supervisor import _OPTIONS as OPTIONS
from ..supervisor import SupervisorOptions
from ..supervisor import _parse_command_line as parse_command_line
from ..supervisor import _paths as paths
from ._commands import Launch
from ._results import Where
from ._servers import Server, read_server

#: The options doctor reads; each one's converter reads only its text.
READ = (
    "stop_signal",
    "stop_timeout",
    "group",
    "restart",
    "listen",
    "ready",
    "ready_timeout",
    "watchdog",
    "on_hup",
    "drain_timeout",
    "memory_limit",
    "memory_warn_signal",
    "recycle_at",
    "health",
)

_DEFAULTS: dict[str, Any] = {
    field.name: field.default for field in dataclasses.fields(SupervisorOptions)
}
_BY_NAME = dict(OPTIONS)


@dataclasses.dataclass(frozen=True, slots=True)
class Setting:
    """One option's value and where it was given.

    Attributes:
        value: the converted value (the field's default when not given).
        label: ``--stop-timeout 25s``, ``WARDEN_STOP_TIMEOUT=25s``, or the flag for a default.
        where: the line that gave it (the command's, or the variable's).
        default: not given anywhere.
    """

    value: Any
    label: str
    where: Where
    default: bool

    def said(self) -> str:
        """``--stop-timeout 25s``, ``--stop-timeout 10s (the default)``."""
        return f"{self.label} (the default)" if self.default else self.label


@dataclasses.dataclass(frozen=True, slots=True)
class WardenRun:
    """``warden run`` as a deployment starts it.

    Attributes:
        settings: field name -> :class:`Setting`, for every option in :data:`READ`.
        reload_on_change: the files of ``--reload-on-change``, as written.
        command: the program, after ``--``.
        problems: ``(label, message)`` of options ``warden run`` would refuse.
        unknown: labels of options whose value is a variable doctor cannot see (``$X``).
    """

    settings: dict[str, Setting]
    reload_on_change: tuple[str, ...]
    command: tuple[str, ...]
    problems: tuple[tuple[str, str], ...]
    unknown: tuple[str, ...]

    def __getitem__(self, name: str) -> Setting:
        return self.settings[name]

    @property
    def deadline(self) -> float:
        """warden's whole stop: ``--stop-timeout`` + the SIGKILL rung and reaping."""
        return float(self.settings["stop_timeout"].value) + KILL_MARGIN

    def deadline_said(self) -> str:
        """``warden's deadline 30 s (WARDEN_STOP_TIMEOUT=25s + 5 s)``."""
        stop = self.settings["stop_timeout"].said()
        return f"warden's deadline {self.deadline:g} s ({stop} + {KILL_MARGIN:g} s)"


@dataclasses.dataclass(frozen=True, slots=True)
class EnvVar:
    """A variable of the environment warden runs in: its value (None: from a Secret, a
    ConfigMap or a field, unknown here) and where it is set."""

    value: str | None
    where: Where


def read_launched(
    launch: Launch, env: Mapping[str, EnvVar], where: Where
) -> tuple[WardenRun | None, Server | None]:
    """What ``launch`` runs: warden's options when it runs warden, and the server in the end
    (warden's program, else the command itself)."""
    warden = None
    program = launch.command
    if launch.warden is not None:
        warden = read_warden(launch.warden, env, where)
        program = warden.command
    return warden, read_server(program, {name: var.value for name, var in env.items()})


def read_warden(arguments: Sequence[str], env: Mapping[str, EnvVar], where: Where) -> WardenRun:
    """warden's options from the arguments after ``warden run`` and the environment."""
    problems: list[tuple[str, str]] = []
    try:
        given, command = parse_command_line(OPTIONS, arguments)
    except ConfigurationError as exc:
        problems.append(("warden run", str(exc)))
        given, command = {}, []
    settings: dict[str, Setting] = {}
    unknown: list[str] = []
    for name in READ:
        option = _BY_NAME[name]
        raw = given.get(name)
        variable = env.get(option.env)
        if raw is not None:
            text = " ".join(raw) if isinstance(raw, list) else str(raw)
            label, at = f"{option.flag} {text}", where
        elif variable is not None and variable.value is not None:
            label, at = f"{option.env}={variable.value}", variable.where
            raw = variable.value.split() if option.repeat else variable.value
        else:
            if variable is not None:  # set from elsewhere (a Secret...): not known here
                unknown.append(option.env)
            settings[name] = _default(name, where)
            continue
        try:
            value = option.convert(raw, option.flag if at is where else option.env)
        except ConfigurationError as exc:
            if "$" in label:
                unknown.append(label)
            else:
                problems.append((label, str(exc)))
            settings[name] = _default(name, where)
            continue
        settings[name] = Setting(value, label, at, False)
    files = _reload_files(given.get("reload_on_change"), env.get("WARDEN_RELOAD_ON_CHANGE"))
    return WardenRun(settings, files, tuple(command), tuple(problems), tuple(unknown))


def _default(name: str, where: Where) -> Setting:
    value = _DEFAULTS[name]
    flag = _BY_NAME[name].flag
    shown = f"{value:g}s" if isinstance(value, float) else str(value)
    return Setting(value, f"{flag} {shown}", where, True)


def _reload_files(given: object, variable: EnvVar | None) -> tuple[str, ...]:
    try:
        if given is not None:
            return paths(given, "--reload-on-change")
        if variable is not None and variable.value:
            return paths(variable.value.split(), "WARDEN_RELOAD_ON_CHANGE")
    except ConfigurationError:
        return ()
    return ()
