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
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .._exceptions import ConfigurationError
from ..supervisor import _KILL_MARGIN as KILL_MARGIN
from ..supervisor import _OPTIONS as OPTIONS
from ..supervisor import SupervisorOptions
from ..supervisor import _parse_command_line as parse_command_line
from ..supervisor import _paths as paths
from ._commands import Launch
from ._env import EnvVar
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
    "upgrade_confirm",
    "upgrade_confirm_url",
    "memory_limit",
    "memory_warn_signal",
    "recycle_at",
    "health",
)

_DEFAULTS: dict[str, Any] = {
    field.name: field.default for field in dataclasses.fields(SupervisorOptions)
}
_BY_NAME = dict(OPTIONS)
_REFERENCE = re.compile(
    r"\$(?:\(([A-Za-z_][A-Za-z0-9_]*)\)|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_]\w*))"
)


@dataclasses.dataclass(frozen=True, slots=True)
class Setting:
    """One option's value and where it was given.

    Attributes:
        value: the converted value (the field's default when not given, or not known).
        label: ``--stop-timeout 25s``, ``WARDEN_STOP_TIMEOUT=25s``, or the flag for a default.
        where: the line that gave it (the command's, or the variable's).
        default: not given anywhere.
        unknown: why its value cannot be known here (``WARDEN_STOP_TIMEOUT comes from
            ConfigMap app (key stop)``); empty when it is known. ``value`` is then the default,
            which no check may take for the value.
    """

    value: Any
    label: str
    where: Where
    default: bool
    unknown: str = ""

    def said(self) -> str:
        """``--stop-timeout 25s``, ``--stop-timeout 10s (the default)``."""
        return f"{self.label} (the default)" if self.default else self.label


@dataclasses.dataclass(frozen=True, slots=True)
class Expansion:
    """What expands the words given to warden where it runs, to tell a value set at run time
    from one warden gets as written.

    Attributes:
        unseen: the variables a reference left in the words stands for that are set where
            doctor cannot see (name -> where from); the others are set nowhere.
        syntax: the references that are expanded: ``k8s`` (``$(VAR)``), ``shell``
            (``$VAR``, ``${VAR}``: a shell, or systemd), ``none`` (an exec form: nothing).
        literal: what to say of a reference that is not expanded (warden gets it as written).
        elsewhere: why a ``shell`` reference to a variable not in ``unseen`` is unknown too
            (``{ref}`` is the reference); empty when such a reference is what warden gets.
    """

    unseen: Mapping[str, str] = dataclasses.field(default_factory=dict)
    syntax: str = "none"
    literal: str = ""
    elsewhere: str = "the shell expands {ref} from a variable doctor does not see"

    def why_unknown(self, text: str) -> str:
        """Why ``text`` is set at run time to a value doctor cannot see; empty when it is
        not (it is what warden gets)."""
        for match in _REFERENCE.finditer(text):
            paren, brace, bare = match.groups()
            if paren is not None and self.syntax not in ("k8s", "shell"):
                continue
            if paren is None and self.syntax != "shell":
                continue
            name = paren or brace or bare
            if name in self.unseen:
                return f"{match.group(0)} is {name}, which comes from {self.unseen[name]}"
            if self.syntax == "shell" and self.elsewhere:
                return self.elsewhere.format(ref=match.group(0))
        return ""


@dataclasses.dataclass(frozen=True, slots=True)
class WardenRun:
    """``warden run`` as a deployment starts it.

    Attributes:
        settings: field name -> :class:`Setting`, for every option in :data:`READ`.
        reload_on_change: the files of ``--reload-on-change``, as written.
        command: the program, after ``--``.
        problems: ``(label, message)`` of options ``warden run`` would refuse.
        reload_unknown: why the files of ``--reload-on-change`` cannot be known here (its
            variable comes from a ConfigMap...); empty when they are.
    """

    settings: dict[str, Setting]
    reload_on_change: tuple[str, ...]
    command: tuple[str, ...]
    problems: tuple[tuple[str, str], ...]
    reload_unknown: str = ""

    def __getitem__(self, name: str) -> Setting:
        return self.settings[name]

    def unknown(self, *names: str) -> list[str]:
        """Why the options ``names`` cannot be known here (none when all are)."""
        return [self.settings[name].unknown for name in names if self.settings[name].unknown]

    @property
    def deadline(self) -> float:
        """warden's whole stop: ``--stop-timeout`` + the SIGKILL rung and reaping."""
        return float(self.settings["stop_timeout"].value) + KILL_MARGIN

    def deadline_said(self) -> str:
        """``warden's deadline 30 s (WARDEN_STOP_TIMEOUT=25s + 5 s)``."""
        stop = self.settings["stop_timeout"].said()
        return f"warden's deadline {self.deadline:g} s ({stop} + {KILL_MARGIN:g} s)"


def read_launched(
    launch: Launch, env: Mapping[str, EnvVar], where: Where, expansion: Expansion
) -> tuple[WardenRun | None, Server | None]:
    """What ``launch`` runs: warden's options when it runs warden (its arguments expanded as
    ``expansion`` says), and the server in the end (warden's program, else the command)."""
    warden = None
    program = launch.command
    if launch.warden is not None:
        warden = read_warden(launch.warden, env, where, expansion)
        program = warden.command
    return warden, read_server(program, env)


def read_warden(
    arguments: Sequence[str],
    env: Mapping[str, EnvVar],
    where: Where,
    expansion: Expansion | None = None,
) -> WardenRun:
    """warden's options from the arguments after ``warden run`` and the environment.

    ``expansion`` says what expanded the arguments (a reference to a variable doctor cannot
    see makes the option unknown; one nothing expands is what warden gets, and refuses)."""
    expansion = expansion or Expansion()
    problems: list[tuple[str, str]] = []
    try:
        given, command = parse_command_line(OPTIONS, arguments)
    except ConfigurationError as exc:
        problems.append(("warden run", str(exc)))
        given, command = {}, []
    settings: dict[str, Setting] = {}
    for name in READ:
        option = _BY_NAME[name]
        raw = given.get(name)
        variable = env.get(option.env)
        if raw is not None:
            text = " ".join(raw) if isinstance(raw, list) else str(raw)
            label, at = f"{option.flag} {text}", where
        elif variable is not None and variable.value is not None:
            text = variable.value
            label, at = f"{option.env}={variable.value}", variable.where
            raw = variable.value.split() if option.repeat else variable.value
        else:
            unknown = "" if variable is None else variable.comes_from(option.env)
            settings[name] = _default(name, where, unknown)
            continue
        try:
            value = option.convert(raw, option.flag if at is where else option.env)
        except ConfigurationError as exc:
            unknown = expansion.why_unknown(text) if at is where else ""
            if unknown:
                settings[name] = _default(name, where, f"{label}: {unknown}")
            else:
                hint = f" ({expansion.literal})" if "$" in text and expansion.literal else ""
                problems.append((label, f"{exc}{hint}"))
                refused = f"{label} is refused by warden run (see warden-options)"
                settings[name] = _default(name, where, refused)
            continue
        settings[name] = Setting(value, label, at, False)
    problems += _together(settings)
    variable = env.get("WARDEN_RELOAD_ON_CHANGE")
    files = _reload_files(given.get("reload_on_change"), variable)
    reload_unknown = ""
    if given.get("reload_on_change") is None and variable is not None and variable.value is None:
        reload_unknown = variable.comes_from("WARDEN_RELOAD_ON_CHANGE")
    return WardenRun(settings, files, tuple(command), tuple(problems), reload_unknown)


def _together(settings: dict[str, Setting]) -> list[tuple[str, str]]:
    """What ``warden run`` refuses of options together (``SupervisorOptions.__post_init__``)."""
    url, window = settings["upgrade_confirm_url"], settings["upgrade_confirm"]
    if url.value is not None and not window.unknown and float(window.value) <= 0:
        return [
            (
                f"{url.label} with {window.said()}",
                f"--upgrade-confirm-url {url.value} is checked in the --upgrade-confirm window, "
                "which is 0; give the window a length (e.g. 5s) or drop the URL",
            )
        ]
    return []


def _default(name: str, where: Where, unknown: str = "") -> Setting:
    value = _DEFAULTS[name]
    flag = _BY_NAME[name].flag
    shown = f"{value:g}s" if isinstance(value, float) else str(value)
    return Setting(value, f"{flag} {shown}", where, True, unknown)


def _reload_files(given: object, variable: EnvVar | None) -> tuple[str, ...]:
    try:
        if given is not None:
            return paths(given, "--reload-on-change")
        if variable is not None and variable.value:
            return paths(variable.value.split(), "WARDEN_RELOAD_ON_CHANGE")
    except ConfigurationError:
        return ()
    return ()
