"""What a command line runs: through a shell (``sh -c "... exec warden run ..."``), an init
(tini, dumb-init) or ``env``, down to ``warden run`` and the program after its ``--``.

A shell between the runtime and warden decides whether SIGTERM reaches warden: ``sh -c``
runs its script's commands as its children and does not pass SIGTERM on, unless the command
is ``exec``-ed (it then replaces the shell). Some shells exec a lone simple command on their
own (dash, bash), which is why a lone command without ``exec`` is a warning, not an error.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
from collections.abc import Mapping, Sequence

_SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "busybox"})
_INITS = frozenset({"tini", "tini-static", "dumb-init", "catatonit", "docker-init"})
_SEPARATORS = frozenset({";", "&&", "||", "|", "&", ";;"})
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclasses.dataclass(frozen=True, slots=True)
class Shell:
    """A shell between the runtime and the command.

    Attributes:
        shell_form: written in a Containerfile's shell form (not ``sh -c`` by hand).
        execs: the command that matters is ``exec``-ed (the shell is replaced by it).
        alone: it is the script's only command.
        script: the script.
    """

    shell_form: bool
    execs: bool
    alone: bool
    script: str


@dataclasses.dataclass(frozen=True, slots=True)
class Launch:
    """A command line, read down to what it runs.

    Attributes:
        argv: as written.
        shell: the shell in front, if any.
        init: an init in front of warden (``tini``), if any.
        warden: the arguments after ``warden run``; None when warden does not run.
        command: what runs in the end: the words after warden's ``--`` (its program), else the
            command itself (shell, init and ``env`` taken off).
        assignments: ``VAR=value`` given on the way (``env VAR=x``, ``sh -c "VAR=x exec ..."``).
    """

    argv: tuple[str, ...]
    shell: Shell | None
    init: str | None
    warden: tuple[str, ...] | None
    command: tuple[str, ...]
    assignments: dict[str, str]


def read_launch(
    argv: Sequence[str], *, shell_form: bool = False, env: Mapping[str, str] | None = None
) -> Launch:
    """Read ``argv`` down to warden and its program. ``env``: variables known where it runs,
    to expand ``$VAR`` in a shell script."""
    words = list(argv)
    shell: Shell | None = None
    init: str | None = None
    assignments: dict[str, str] = {}
    script = shell_script(words)
    if script is not None:
        segment, execs, alone = _main_segment(script, env or {})
        shell = Shell(shell_form, execs, alone, script)
        words = segment
    words = _unwrap(words, assignments)
    if words and os.path.basename(words[0]) in _INITS:  # noqa: PTH119
        init = os.path.basename(words[0])  # noqa: PTH119
        words = _unwrap(_after_init(words), assignments)
    warden = warden_arguments(words)
    if warden is not None:
        return Launch(tuple(argv), shell, init, tuple(warden), (), assignments)
    return Launch(tuple(argv), shell, init, None, tuple(words), assignments)


def shell_script(words: Sequence[str]) -> str | None:
    """The script of ``sh -c SCRIPT`` (``bash -ec SCRIPT``...), or None."""
    if not words or os.path.basename(words[0]) not in _SHELLS:  # noqa: PTH119
        return None
    rest = list(words[1:])
    if os.path.basename(words[0]) == "busybox":  # noqa: PTH119
        if not rest or rest[0] not in _SHELLS:
            return None
        rest = rest[1:]
    index = 0
    while index < len(rest):
        word = rest[index]
        if word in ("-o", "+o", "-O", "+O"):  # set -o pipefail: the option's name follows
            index += 2
            continue
        if not word.startswith(("-", "+")) or word == "--":
            return None
        if "c" in word[1:] and not word.startswith("--") and index + 1 < len(rest):
            return rest[index + 1]
        index += 1
    return None


def warden_arguments(words: Sequence[str]) -> list[str] | None:
    """The arguments after ``warden run`` (or ``python -m warden run``), or None."""
    if not words:
        return None
    base = os.path.basename(words[0])  # noqa: PTH119
    if base == "warden" and words[1:2] == ["run"]:
        return list(words[2:])
    if base.startswith("python") and list(words[1:4]) == ["-m", "warden", "run"]:
        return list(words[4:])
    return None


def program_words(words: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
    """The program itself in ``words``: a shell's main command, ``env`` and ``python -m``
    taken off (``python -m uvicorn app:app`` -> ``uvicorn app:app``)."""
    found = list(words)
    script = shell_script(found)
    if script is not None:
        found = _main_segment(script, env or {})[0]
    found = _unwrap(found, {})
    if len(found) >= 3 and os.path.basename(found[0]).startswith("python") and found[1] == "-m":  # noqa: PTH119
        found = found[2:]
    return found


def _unwrap(words: list[str], assignments: dict[str, str]) -> list[str]:
    """Take ``exec``, ``env [-i] [VAR=x]...`` and leading ``VAR=x`` off."""
    while words:
        base = os.path.basename(words[0])  # noqa: PTH119
        if base == "exec":
            words = words[1:]
        elif base == "env":
            words = words[1:]
            while words and (words[0].startswith("-") or _ASSIGNMENT.match(words[0])):
                if _ASSIGNMENT.match(words[0]):
                    name, _, value = words[0].partition("=")
                    assignments[name] = value
                words = words[1:]
        elif _ASSIGNMENT.match(words[0]):
            name, _, value = words[0].partition("=")
            assignments[name] = value
            words = words[1:]
        else:
            break
    return words


def _after_init(words: list[str]) -> list[str]:
    """An init's command: after its ``--``, or its first word that is not an option."""
    if "--" in words:
        return words[words.index("--") + 1 :]
    rest = words[1:]
    while rest and rest[0].startswith("-"):
        rest = rest[1:]
    return rest


def _main_segment(script: str, env: Mapping[str, str]) -> tuple[list[str], bool, bool]:
    """The command of ``script`` that matters (the one running warden, else the last), whether
    it is exec-ed, and whether it is the only one."""
    segments = _segments(script, env)
    if not segments:
        return [], False, True
    chosen = next((s for s in segments if warden_arguments(_unwrap(list(s), {}))), None)
    if chosen is None:
        chosen = segments[-1]
    words = list(chosen)
    while words and _ASSIGNMENT.match(words[0]):
        words = words[1:]
    execs = bool(words) and words[0] == "exec"
    return list(chosen), execs, len(segments) == 1


def _segments(script: str, env: Mapping[str, str]) -> list[list[str]]:
    def expand(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return env.get(name, match.group(0))

    lexer = shlex.shlex(
        _VARIABLE.sub(expand, script.replace("\n", " ; ")), posix=True, punctuation_chars=";&|"
    )
    lexer.whitespace_split = True
    segments: list[list[str]] = [[]]
    try:
        for token in lexer:
            if token in _SEPARATORS:
                segments.append([])
            else:
                segments[-1].append(token)
    except ValueError:
        return [script.split()]
    return [segment for segment in segments if segment]
