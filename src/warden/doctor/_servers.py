"""The program's server settings, where they are on its command line or in its environment.

Only what decides a stop and a keep-alive, with each server's defaults (its own, measured in
its source): uvicorn's graceful timeout is none (it waits for its connections for ever) and
its keep-alive 5 s (``--timeout-graceful-shutdown``, ``--timeout-keep-alive``, or
``UVICORN_*``); gunicorn's graceful timeout 30 s, worker timeout 30 s, keep-alive 2 s
(``--graceful-timeout``, ``-t``, ``--keep-alive``, also in ``GUNICORN_CMD_ARGS``); hypercorn's
graceful timeout 3 s and keep-alive 5 s (``--graceful-timeout``, ``--keep-alive``). A program
built on ``warden.Lifecycle`` bounds its own stop by ``WARDEN_SHUTDOWN_TIMEOUT`` (25 s).
"""

from __future__ import annotations

import dataclasses
import math
import os
import shlex
from collections.abc import Mapping, Sequence

from ._commands import program_words
from ._env import EnvVar


@dataclasses.dataclass(frozen=True, slots=True)
class Timeout:
    """A server's timeout: seconds (``math.inf``: waits for ever) and how it was set;
    ``unknown`` says why it cannot be known here (set from a ConfigMap...), and ``seconds`` is
    then the server's default, which no check may take for its value."""

    seconds: float
    label: str
    default: bool
    flag: str = ""  #: what sets it (``--graceful-timeout``, ``WARDEN_SHUTDOWN_TIMEOUT``)
    unknown: str = ""

    def said(self) -> str:
        if math.isinf(self.seconds):
            text = f"{self.label}: none, it waits for ever"
        else:
            text = f"{self.label} {self.seconds:g} s"
        return f"{text} (the default)" if self.default else text


@dataclasses.dataclass(frozen=True, slots=True)
class Server:
    """What the program is and the settings that matter at a stop.

    Attributes:
        name: ``uvicorn``, ``gunicorn``, ``hypercorn`` or ``warden.Lifecycle``.
        graceful: its own graceful timeout (None: not known).
        keepalive: how long it keeps an idle connection open (None: not known).
        config: gunicorn's ``-c``/``--config`` value, if any.
    """

    name: str
    graceful: Timeout | None
    keepalive: Timeout | None
    config: str | None = None


_UVICORN = {"--timeout-graceful-shutdown": "graceful", "--timeout-keep-alive": "keepalive"}
_GUNICORN = {
    "--graceful-timeout": "graceful",
    "--keep-alive": "keepalive",
    "-t": "timeout",
    "--timeout": "timeout",
    "-c": "config",
    "--config": "config",
}
_HYPERCORN = {
    "--graceful-timeout": "graceful",
    "--keep-alive": "keepalive",
    "-b": "bind",
    "--bind": "bind",
}
_DEFAULT_LIFECYCLE_DEADLINE = 25.0


def read_server(command: Sequence[str], env: Mapping[str, EnvVar]) -> Server | None:
    """The server ``command`` runs, with its settings; None for a program doctor does not know
    (and that does not say ``WARDEN_SHUTDOWN_TIMEOUT``)."""
    values = {k: v.value for k, v in env.items() if v.value is not None}
    words = program_words(command, values)
    name = os.path.basename(words[0]) if words else ""  # noqa: PTH119
    if name == "uvicorn":
        return _uvicorn(words[1:], env)
    if name == "gunicorn":
        return _gunicorn(words[1:], env)
    if name == "hypercorn":
        return _hypercorn(words[1:])
    deadline = env.get("WARDEN_SHUTDOWN_TIMEOUT")
    label = "WARDEN_SHUTDOWN_TIMEOUT (the program's deadline)"
    if deadline is not None and deadline.value is None:
        unknown = deadline.comes_from("WARDEN_SHUTDOWN_TIMEOUT")
        graceful = Timeout(_DEFAULT_LIFECYCLE_DEADLINE, label, True, "", unknown)
        return Server("warden.Lifecycle", graceful, None)
    if deadline is not None and deadline.value is not None:
        seconds = _seconds(deadline.value)
        if seconds is not None:
            graceful = Timeout(seconds, label, False, "WARDEN_SHUTDOWN_TIMEOUT")
            return Server("warden.Lifecycle", graceful, None)
    return None


def _flags(words: Sequence[str], known: Mapping[str, str]) -> dict[str, str]:
    """``--flag VALUE`` and ``--flag=VALUE`` (and ``-tVALUE``) of the flags in ``known``."""
    found: dict[str, str] = {}
    index = 0
    while index < len(words):
        word = words[index]
        flag, equals, value = word.partition("=")
        if flag in known and equals:
            found[known[flag]] = value
        elif word in known and index + 1 < len(words):
            found[known[word]] = words[index + 1]
            index += 1
        elif len(word) > 2 and word[:2] in known and not word.startswith("--"):
            found[known[word[:2]]] = word[2:]
        index += 1
    return found


def _seconds(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 else None


def _timeout(
    flags: Mapping[str, str], key: str, label: str, default: float, unknown: str = ""
) -> Timeout:
    seconds = _seconds(flags.get(key))
    flag = label.rpartition(" ")[2]
    if seconds is None:
        return Timeout(default, label, True, flag, "" if key in flags else unknown)
    return Timeout(seconds, label, False, flag)


def _uvicorn(words: Sequence[str], env: Mapping[str, EnvVar]) -> Server:
    flags = _flags(words, _UVICORN)
    unknown: dict[str, str] = {}
    for variable, key in (
        ("UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN", "graceful"),
        ("UVICORN_TIMEOUT_KEEP_ALIVE", "keepalive"),
    ):
        found = env.get(variable)
        if key in flags or found is None:
            continue
        if found.value is None:
            unknown[key] = found.comes_from(variable)
        else:
            flags[key] = found.value
    return Server(
        "uvicorn",
        _timeout(
            flags,
            "graceful",
            "uvicorn --timeout-graceful-shutdown",
            math.inf,
            unknown.get("graceful", ""),
        ),
        _timeout(
            flags, "keepalive", "uvicorn --timeout-keep-alive", 5.0, unknown.get("keepalive", "")
        ),
    )


def _gunicorn(words: Sequence[str], env: Mapping[str, EnvVar]) -> Server:
    from_env = env.get("GUNICORN_CMD_ARGS")
    extra: list[str] = []
    unknown = ""
    if from_env is not None and from_env.value is None:
        unknown = from_env.comes_from("GUNICORN_CMD_ARGS")
    elif from_env is not None and from_env.value:
        try:
            extra = shlex.split(from_env.value)
        except ValueError:
            extra = []
    flags = {**_flags(extra, _GUNICORN), **_flags(words, _GUNICORN)}  # the command line wins
    return Server(
        "gunicorn",
        _timeout(flags, "graceful", "gunicorn --graceful-timeout", 30.0, unknown),
        _timeout(flags, "keepalive", "gunicorn --keep-alive", 2.0, unknown),
        config=flags.get("config"),
    )


def _hypercorn(words: Sequence[str]) -> Server:
    flags = _flags(words, _HYPERCORN)
    return Server(
        "hypercorn",
        _timeout(flags, "graceful", "hypercorn --graceful-timeout", 3.0),
        _timeout(flags, "keepalive", "hypercorn --keep-alive", 5.0),
    )
