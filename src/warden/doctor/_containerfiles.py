"""Containerfiles and Dockerfiles: the final stage's ENTRYPOINT, CMD and ENV, with lines.

The Dockerfile reference's rules this follows: a line ending with the escape character
(``\\``, or the one a ``# escape=`` directive names) continues on the next; comment lines are
skipped, also inside a continuation. ``ENTRYPOINT`` and ``CMD`` are in *exec form* when their
argument is a JSON array of strings, else in *shell form*: run as ``/bin/sh -c "..."`` (or
the ``SHELL`` instruction's shell). With a shell-form ENTRYPOINT, CMD and the arguments of
``docker run`` are ignored. A ``FROM`` begins a new stage; a stage ``FROM`` an earlier one
inherits its ENTRYPOINT, CMD and ENV. ``ENV`` is ``KEY=value ...`` (quotes as in a shell) or
the legacy ``KEY value with spaces``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex

from ._inputs import InputError

_DIRECTIVE = re.compile(r"#\s*escape\s*=\s*(\S)\s*$", re.IGNORECASE)


@dataclasses.dataclass(frozen=True, slots=True)
class Command:
    """An ENTRYPOINT or CMD: its argv as run, whether it was written in shell form, its line."""

    argv: tuple[str, ...]
    shell_form: bool
    line: int


@dataclasses.dataclass(frozen=True, slots=True)
class Image:
    """What the final stage of a Containerfile runs.

    Attributes:
        file: the path as given.
        entrypoint, cmd: None when not set.
        env: name -> (value, line).
    """

    file: str
    entrypoint: Command | None
    cmd: Command | None
    env: dict[str, tuple[str, int]]

    def argv(self) -> tuple[str, ...]:
        """The command a container of this image runs: ENTRYPOINT + CMD (a shell-form
        ENTRYPOINT ignores CMD)."""
        if self.entrypoint is None:
            return () if self.cmd is None else self.cmd.argv
        if self.entrypoint.shell_form or self.cmd is None:
            return self.entrypoint.argv
        return self.entrypoint.argv + self.cmd.argv


@dataclasses.dataclass
class _Stage:
    name: str
    entrypoint: Command | None = None
    cmd: Command | None = None
    env: dict[str, tuple[str, int]] = dataclasses.field(default_factory=dict)
    shell: tuple[str, ...] = ("/bin/sh", "-c")


def read_containerfile(file: str, text: str) -> Image:
    """Parse ``text`` (the Containerfile ``file``); :class:`InputError` for a line it cannot
    read (an ENV without a value, a FROM without an image)."""
    stages: list[_Stage] = []
    for instruction, argument, line in _instructions(file, text):
        if instruction == "FROM":
            words = argument.split()
            if not words:
                raise InputError(file, "FROM without an image", line)
            base = next((s for s in reversed(stages) if s.name == words[0].lower()), None)
            name = words[2].lower() if len(words) >= 3 and words[1].upper() == "AS" else ""
            stage = dataclasses.replace(base, name=name, env=dict(base.env)) if base else None
            stages.append(stage or _Stage(name))
            continue
        if not stages:
            continue  # ARG before the first FROM
        stage = stages[-1]
        if instruction == "ENTRYPOINT":
            stage.entrypoint = _command(argument, line, stage.shell)
            stage.cmd = None  # setting ENTRYPOINT resets a CMD inherited from the base
        elif instruction == "CMD":
            stage.cmd = _command(argument, line, stage.shell)
        elif instruction == "ENV":
            stage.env.update(_env(file, argument, line))
        elif instruction == "SHELL":
            shell = _json_array(argument)
            if shell is None:
                raise InputError(file, 'SHELL takes a JSON array, e.g. ["/bin/bash", "-c"]', line)
            stage.shell = shell
    if not stages:
        raise InputError(file, "no FROM instruction: not a Containerfile")
    final = stages[-1]
    return Image(file, final.entrypoint, final.cmd, final.env)


def _instructions(file: str, text: str) -> list[tuple[str, str, int]]:
    lines = text.splitlines()
    escape = "\\"
    for raw in lines:  # parser directives come first, before any instruction or comment
        match = _DIRECTIVE.match(raw.strip())
        if match is None:
            break
        escape = match.group(1)
    found: list[tuple[str, str, int]] = []
    pending: tuple[str, int] | None = None
    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if stripped.startswith("#"):
            continue
        if pending is None and not stripped:
            continue
        text_so_far, start = pending if pending is not None else ("", number)
        if stripped.endswith(escape):
            pending = (f"{text_so_far} {stripped[:-1]}".strip(), start)
            continue
        pending = None
        whole = f"{text_so_far} {stripped}".strip()
        if not whole:
            continue
        instruction, _, argument = whole.partition(" ")
        found.append((instruction.upper(), argument.strip(), start))
    if pending is not None:
        instruction, _, argument = pending[0].partition(" ")
        found.append((instruction.upper(), argument.strip(), pending[1]))
    return found


def _json_array(argument: str) -> tuple[str, ...] | None:
    if not argument.startswith("["):
        return None
    try:
        value = json.loads(argument)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(word, str) for word in value):
        return tuple(value)
    return None


def _command(argument: str, line: int, shell: tuple[str, ...]) -> Command:
    exec_form = _json_array(argument)
    if exec_form is not None:
        return Command(exec_form, False, line)
    return Command((*shell, argument), True, line)


def _env(file: str, argument: str, line: int) -> dict[str, tuple[str, int]]:
    try:
        words = shlex.split(argument)
    except ValueError as exc:
        raise InputError(file, f"ENV {argument!r}: {exc}", line) from None
    if not words:
        raise InputError(file, "ENV without a variable", line)
    if "=" not in words[0]:  # the legacy form: ENV KEY value with spaces
        name, _, value = argument.partition(" ")
        return {name: (" ".join(shlex.split(value)), line)}
    env: dict[str, tuple[str, int]] = {}
    for word in words:
        name, equals, value = word.partition("=")
        if not equals or not name:
            raise InputError(file, f"ENV {word!r} is not NAME=value", line)
        env[name] = (value, line)
    return env
