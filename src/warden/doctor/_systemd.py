"""A systemd service as a :class:`Deployment`: ``ExecStart=`` down to warden, its environment,
its stop numbers, and the sockets a ``.socket`` unit holds for it.

systemd's rules (systemd.service(5), systemd.kill(5), systemd.socket(5)): ``TimeoutStopSec=``
(or ``TimeoutSec=``, whichever comes last) is ``DefaultTimeoutStopSec=``, 90 s, when absent,
and 0 disables it as ``infinity`` does; ``KillMode=`` is ``control-group`` when absent;
``ExecStart=`` may start with the prefixes ``@ - : + !``; ``$VAR`` is split into words,
``${VAR}`` kept as one; a socket unit activates the service of its ``Service=``, or of its own
name.
"""

from __future__ import annotations

import math
import re
import shlex

from ._commands import read_launch
from ._deployment import Deployment, Held
from ._env import EnvVar
from ._inputs import InputError
from ._numbers import Number, NumberError, systemd_size, systemd_timespan
from ._results import Where
from ._units import Entry, UnitFile
from ._warden import Expansion, read_launched

DEFAULT_TIMEOUT_STOP = 90.0
_PREFIXES = "@-:+!"
_WORD_VARIABLE = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def service_deployments(units: list[UnitFile], notes: list[tuple[str, str]]) -> list[Deployment]:
    """One deployment per ``.service`` unit, with the sockets of the ``.socket`` units."""
    sockets = [unit for unit in units if unit.type == "socket"]
    return [_service(unit, sockets, notes) for unit in units if unit.type == "service"]


def _service(unit: UnitFile, sockets: list[UnitFile], notes: list[tuple[str, str]]) -> Deployment:
    subject = unit.name
    env = {
        k: EnvVar(v, Where(entry.file, entry.line, subject))
        for k, (v, entry) in unit.environment().items()
    }
    files = bool(unit.values("Service", "EnvironmentFile"))
    if files:
        notes.append(
            (unit.file, f"{subject}: EnvironmentFile= is not read; its variables are not checked")
        )
    start = unit.value("Service", "ExecStart")
    if start is None:
        where = Where(unit.file, None, subject)
    else:
        where = Where(start.file, start.line, subject)
    launch = warden = server = None
    if start is None:
        notes.append((unit.file, f"{subject} has no ExecStart=: nothing to check in what it runs"))
    else:
        argv = _exec_argv(start.file, start.value, start.line, env, keep_unset=files)
        known = {k: v.value for k, v in env.items() if v.value is not None}
        launch = read_launch(argv, env=known)
        env = {**env, **{k: EnvVar(v, where) for k, v in launch.assignments.items()}}
        expansion = Expansion(
            syntax="shell",
            elsewhere="systemd expands {ref} from EnvironmentFile=, which doctor does not read"
            if files
            else "",
        )
        warden, server = read_launched(launch, env, where, expansion)
    return Deployment(
        platform="systemd",
        where=where,
        launch=launch,
        env=env,
        warden=warden,
        server=server,
        timeout_stop=_timeout_stop(unit, subject),
        kill_mode=_kill_mode(unit, subject),
        memory_limit=_memory_max(unit, subject),
        held=_held(unit, sockets),
    )


def _exec_argv(
    file: str, value: str, line: int, env: dict[str, EnvVar], *, keep_unset: bool
) -> list[str]:
    """``ExecStart=``'s words as systemd passes them: ``$VAR`` split into words, ``${VAR}``
    one word, a variable set nowhere empty; with ``keep_unset`` (an ``EnvironmentFile=`` may
    set it) it stays as written, a value doctor does not know."""
    text = value.lstrip(_PREFIXES)
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise InputError(file, f"ExecStart={value!r}: {exc}", line) from None
    argv: list[str] = []

    def expand(match: re.Match[str]) -> str:
        found = env.get(match.group(1) or match.group(2))
        if found is None:
            return match.group(0) if keep_unset else ""
        return found.value or ""

    for word in words:
        whole = _WORD_VARIABLE.match(word)
        if whole is not None and (whole.group(1) in env or not keep_unset):
            found = env.get(whole.group(1))
            argv += (found.value or "").split() if found is not None else []  # $VAR: words
            continue
        argv.append(_VARIABLE.sub(expand, word))
    return argv


def _timeout_stop(unit: UnitFile, subject: str) -> Number:
    """``TimeoutStopSec=``, or ``TimeoutSec=`` (which sets the start and the stop timeouts):
    whichever of the two systemd reads last wins (drop-ins last); 0 disables the timeout, as
    ``infinity`` does (systemd's ``parse_sec_fix_0``)."""
    found: Entry | None = None
    for entry in unit.entries:
        if entry.section == "Service" and entry.key in ("TimeoutStopSec", "TimeoutSec"):
            found = entry if entry.value else found  # systemd ignores an empty one
    if found is None:
        return Number(DEFAULT_TIMEOUT_STOP, "TimeoutStopSec", Where(unit.file, None, subject), True)
    try:
        seconds = systemd_timespan(found.value)
    except NumberError as exc:
        raise InputError(found.file, f"{found.key}=: {exc}", found.line) from None
    return Number(seconds or math.inf, found.key, Where(found.file, found.line, subject))


def _kill_mode(unit: UnitFile, subject: str) -> tuple[str, Where]:
    entry = unit.value("Service", "KillMode")
    if entry is None:
        return "control-group", Where(unit.file, None, subject)
    return entry.value, Where(entry.file, entry.line, subject)


def _memory_max(unit: UnitFile, subject: str) -> Number | None:
    for key in ("MemoryMax", "MemoryLimit"):
        entry = unit.value("Service", key)
        if entry is not None:
            try:
                size = systemd_size(entry.value)
            except NumberError:
                return None  # a percentage: of a machine doctor does not see
            return Number(size, f"{key}={entry.value}", Where(entry.file, entry.line, subject))
    return None


def _held(service: UnitFile, sockets: list[UnitFile]) -> tuple[Held, ...]:
    stem = service.name.rpartition(".")[0]
    held: list[Held] = []
    for socket in sockets:
        target = socket.value("Socket", "Service")
        activates = (
            target.value if target is not None else socket.name.rpartition(".")[0] + ".service"
        )
        if activates not in (service.name, f"{stem}.service"):
            continue
        reuse = socket.value("Socket", "ReusePort")
        reuse_port = reuse is not None and reuse.value.lower() in ("yes", "true", "1", "on")
        held += [
            Held(entry.value, socket.name, reuse_port)
            for entry in socket.values("Socket", "ListenStream")
        ]
    return tuple(held)
