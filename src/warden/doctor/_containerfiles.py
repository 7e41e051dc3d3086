"""Containerfiles and Dockerfiles: the final stage's ENTRYPOINT, CMD and ENV, with lines.

The Dockerfile reference's rules this follows: a line ending with the escape character
(``\\``, or the one a ``# escape=`` directive names) continues on the next; comment lines are
skipped, also inside a continuation. ``ENTRYPOINT`` and ``CMD`` are in *exec form* when their
argument is a JSON array of strings, else in *shell form*: run as ``/bin/sh -c "..."`` (or
the ``SHELL`` instruction's shell). With a shell-form ENTRYPOINT, CMD and the arguments of
``docker run`` are ignored. A ``FROM`` begins a new stage; a stage ``FROM`` an earlier one
inherits its ENTRYPOINT, CMD and ENV. ``ENV`` is ``KEY=value ...`` (quotes as in a shell) or
the legacy ``KEY value with spaces``.

Variables in ``ENV`` and ``ARG`` values are substituted as the builder does: ``$NAME`` and
``${NAME}`` (``${NAME:-word}``, ``${NAME:+word}``) from the stage's earlier ``ENV`` (inherited
from a base stage too) and its ``ARG`` (``ARG NAME=default``; ``ARG NAME`` in a stage takes the
default of a global ``ARG`` before the first ``FROM``), never inside single quotes, and not
after the escape character. An ``ARG`` without a default is a ``--build-arg``: a value doctor
cannot know. A name declared nowhere is empty. ``ENTRYPOINT`` and ``CMD`` are not substituted
(an exec form is run as written; a shell form's shell expands its variables at run time).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re

from ._env import EnvVar
from ._inputs import InputError
from ._results import Where

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
        env: name -> the variable (its value None when an ``ARG`` without a default gives it).
    """

    file: str
    entrypoint: Command | None
    cmd: Command | None
    env: dict[str, EnvVar]

    @property
    def names(self) -> frozenset[str]:
        """The image names this file says it builds: ``web`` for ``web.Containerfile``,
        ``Containerfile.web``, ``Dockerfile.web`` or ``web/Containerfile``."""
        base = os.path.basename(self.file)  # noqa: PTH119
        found = {os.path.basename(os.path.dirname(os.path.abspath(self.file)))}  # noqa: PTH100, PTH119, PTH120
        for kind in ("Containerfile", "Dockerfile", "dockerfile"):
            if base.startswith(kind + "."):
                found.add(base[len(kind) + 1 :])
            if base.endswith("." + kind):
                found.add(base[: -len(kind) - 1])
        return frozenset(name.lower() for name in found if name)

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
    env: dict[str, EnvVar] = dataclasses.field(default_factory=dict)
    args: dict[str, EnvVar] = dataclasses.field(default_factory=dict)
    shell: tuple[str, ...] = ("/bin/sh", "-c")


def read_containerfile(file: str, text: str) -> Image:
    """Parse ``text`` (the Containerfile ``file``); :class:`InputError` for a line it cannot
    read (an ENV without a value, a FROM without an image)."""
    stages: list[_Stage] = []
    instructions, escape = _instructions(file, text)
    global_args: dict[str, EnvVar] = {}
    for instruction, argument, line in instructions:
        if instruction == "FROM":
            words = argument.split()
            if not words:
                raise InputError(file, "FROM without an image", line)
            base = next((s for s in reversed(stages) if s.name == words[0].lower()), None)
            name = words[2].lower() if len(words) >= 3 and words[1].upper() == "AS" else ""
            # A stage from an earlier one inherits its ENV, not its ARGs.
            stage = (
                dataclasses.replace(base, name=name, env=dict(base.env), args={}) if base else None
            )
            stages.append(stage or _Stage(name))
            continue
        if instruction == "ARG":
            scope = global_args if not stages else {**stages[-1].args, **stages[-1].env}
            declared = _arg(
                file,
                argument,
                line,
                scope,
                escape=escape,
                global_args=global_args if stages else {},
            )
            (global_args if not stages else stages[-1].args).update(declared)
            continue
        if not stages:
            continue  # only ARG may come before the first FROM
        stage = stages[-1]
        if instruction == "ENTRYPOINT":
            stage.entrypoint = _command(argument, line, stage.shell)
            stage.cmd = None  # setting ENTRYPOINT resets a CMD inherited from the base
        elif instruction == "CMD":
            stage.cmd = _command(argument, line, stage.shell)
        elif instruction == "ENV":
            stage.env.update(_env(file, argument, line, {**stage.args, **stage.env}, escape))
        elif instruction == "SHELL":
            shell = _json_array(argument)
            if shell is None:
                raise InputError(file, 'SHELL takes a JSON array, e.g. ["/bin/bash", "-c"]', line)
            stage.shell = shell
    if not stages:
        raise InputError(file, "no FROM instruction: not a Containerfile")
    final = stages[-1]
    return Image(file, final.entrypoint, final.cmd, final.env)


def _instructions(file: str, text: str) -> tuple[list[tuple[str, str, int]], str]:
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
    return found, escape


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


def _env(
    file: str, argument: str, line: int, scope: dict[str, EnvVar], escape: str
) -> dict[str, EnvVar]:
    where = Where(file, line)
    words = _words(file, argument, line, scope, escape)
    if not words:
        raise InputError(file, "ENV without a variable", line)
    if "=" not in words[0][0]:  # the legacy form: ENV KEY value with spaces
        name, _, rest = argument.partition(" ")
        parts = _words(file, rest, line, scope, escape)
        return {name: _variable(" ".join(w for w, _ in parts), parts, where)}
    env: dict[str, EnvVar] = {}
    for word, unknown in words:
        name, equals, value = word.partition("=")
        if not equals or not name:
            raise InputError(file, f"ENV {word!r} is not NAME=value", line)
        env[name] = _variable(value, [(word, unknown)], where)
    return env


def _arg(
    file: str,
    argument: str,
    line: int,
    scope: dict[str, EnvVar],
    *,
    escape: str,
    global_args: dict[str, EnvVar],
) -> dict[str, EnvVar]:
    """``ARG NAME`` or ``ARG NAME=default`` (several per line): a default is substituted; none
    is the global ARG's default, else a ``--build-arg`` doctor cannot know."""
    where = Where(file, line)
    declared: dict[str, EnvVar] = {}
    for word, unknown in _words(file, argument, line, scope, escape):
        name, equals, value = word.partition("=")
        if equals:
            declared[name] = _variable(value, [(word, unknown)], where)
        elif name in global_args:
            declared[name] = global_args[name]
        else:
            declared[name] = EnvVar(None, where, f"ARG {name} (no default: a --build-arg)")
    return declared


def _variable(value: str, words: list[tuple[str, str]], where: Where) -> EnvVar:
    unknown = next((reason for _, reason in words if reason), "")
    return EnvVar(None, where, unknown) if unknown else EnvVar(value, where)


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}")


def _words(
    file: str, text: str, line: int, scope: dict[str, EnvVar], escape: str
) -> list[tuple[str, str]]:
    """``text`` split as the builder splits an ENV or ARG line, quotes taken off, variables
    substituted: ``(word, why unknown)``, the reason empty when the word is known."""
    words: list[tuple[str, str]] = []
    word: list[str] = []
    unknown = ""
    started = False
    quote = ""
    index = 0
    while index < len(text):
        char = text[index]
        if char == escape and quote != "'" and index + 1 < len(text):
            word.append(text[index + 1])
            index, started = index + 2, True
            continue
        if quote and char == quote:
            quote, index = "", index + 1
            continue
        if not quote and char in "'\"":
            quote, index, started = char, index + 1, True
            continue
        if char == "$" and quote != "'":
            value, reason, index = _substitute(text, index, scope)
            word.append(value)
            unknown = unknown or reason
            started = True
            continue
        if not quote and char.isspace():
            if started:
                words.append(("".join(word), unknown))
            word, unknown, started = [], "", False
            index += 1
            continue
        word.append(char)
        index, started = index + 1, True
    if quote:
        raise InputError(file, f"{text!r}: no closing quotation", line)
    if started:
        words.append(("".join(word), unknown))
    return words


def _substitute(text: str, index: int, scope: dict[str, EnvVar]) -> tuple[str, str, int]:
    """The value of the reference at ``text[index]`` (a ``$``), why it is unknown (or ""),
    and where the text goes on."""
    braced = _BRACED.match(text, index + 1)
    bare = _NAME.match(text, index + 1)
    if braced is not None:
        name, modifier, word = braced.group(1), braced.group(2), braced.group(3) or ""
        end = braced.end()
    elif bare is not None:
        name, modifier, word, end = bare.group(0), None, "", bare.end()
    else:
        return "$", "", index + 1
    found = scope.get(name)
    if found is not None and found.value is None:  # a --build-arg: set or not, not known
        return "", found.origin, end
    value = found.value if found is not None else None
    if modifier == "-" and not value:
        return word, "", end
    if modifier == "+":
        return (word if value else ""), "", end
    return value or "", "", end
