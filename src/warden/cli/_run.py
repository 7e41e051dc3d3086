"""``warden run [OPTIONS] -- CMD ARGS...``: the argument parser, then the supervisor.

Every option can also come from a ``WARDEN_*`` environment variable (a container image sets
its defaults there, the command line overrides them). Bad input gets one line naming the
option, the value and the fix, and exit code 2; a command that cannot be executed gets one
line and 126/127, like a shell.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NoReturn, TypeVar

from .._exceptions import ConfigurationError
from .._paths import default_control_path
from ..lifecycle import EXIT_OK, EXIT_USAGE, parse_duration
from ..supervisor import Backoff, RestartPolicy, Supervisor, SupervisorOptions, parse_signal
from ..supervisor._listenspec import ListenSpec, parse_listen
from ..supervisor._readiness import ReadySpec, parse_ready

_T = TypeVar("_T")

_DESCRIPTION = """\
Run a program under warden: PID 1 duties (every zombie reaped, signals forwarded, the exit
code passed on), a stop ladder with a deadline, and restarts with backoff.
"""

_EPILOG = """\
examples:
  warden run -- python -m http.server 8000
      PID 1 of a container: reaps zombies, forwards signals, exits with the program's code
  warden run --group --stop-timeout 20s -- gunicorn app:wsgi
      the stop signal goes to the whole process group; SIGKILL after 20 s
  warden run --stop-signal QUIT -- nginx -g 'daemon off;'
      nginx stops gracefully on SIGQUIT
  warden run --restart on-failure --max-restarts 3 -- ./worker
      restart a crashing worker with exponential backoff; give up after 3 quick failures
  WARDEN_RESTART=always WARDEN_STOP_TIMEOUT=5 warden run -- ./server
      every option can come from a WARDEN_* environment variable

  warden run --listen web=tcp://0.0.0.0:8000 --ready http://127.0.0.1:8000/readyz \\
      -- uvicorn --fd 3 app:app
      warden holds the port and hands it over (LISTEN_FDS); ready only when /readyz says so
  warden run --listen tcp://[::]:8000 --ready notify --watchdog 10s -- ./server
      the server sends READY=1 and WATCHDOG=1 to warden's NOTIFY_SOCKET, as under systemd
  warden run --listen tcp://0.0.0.0:8000 --ready notify --drain-timeout 30s \
      -- gunicorn app:wsgi
      then `kill -HUP <warden>` or `warden upgrade`: the new release starts on the same
      socket, the old one drains once the new one is ready; a failed start changes nothing

stop ladder: stop signal -> --stop-timeout -> SIGKILL to the process group and to every
adopted orphan -> wait for all of them -> exit. A second SIGTERM/SIGINT skips to SIGKILL.

exit codes: the program's own exit code; 128+N when it died of signal N; 126 when the command
cannot be executed, 127 when it is not found; 2 for bad usage; 1 after giving up on a crash
loop of clean exits; 124 when the ladder itself could not finish in time.
"""


@dataclass(frozen=True)
class _Option:
    flag: str
    env: str
    parse: Callable[[str, str], object]


class UsageError(Exception):
    """Bad command-line or environment input: one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints the whole usage and then the message; one line is easier to read in
        # a container log.
        raise UsageError(f"{message} (see warden run --help)")


def _duration(text: str, what: str) -> float:
    return parse_duration(text.strip(), what=what)


def _fraction(text: str, what: str) -> float:
    stripped = text.strip()
    try:
        value = float(stripped[:-1]) / 100 if stripped.endswith("%") else float(stripped)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise ConfigurationError(
            f"{what}={text!r} is not a fraction from 0 to 1; write e.g. 0.2 or 20%"
        )
    return value


def _count(text: str, what: str) -> int | None:
    stripped = text.strip().lower()
    if stripped in ("unlimited", "inf", "never"):
        return None
    if not stripped.isdigit():
        raise ConfigurationError(
            f"{what}={text!r} is not a number of restarts; give 0 or more, or 'unlimited'"
        )
    return int(stripped)


def _policy(text: str, what: str) -> RestartPolicy:
    try:
        return RestartPolicy(text.strip().lower())
    except ValueError:
        choices = ", ".join(p.value for p in RestartPolicy)
        raise ConfigurationError(
            f"{what}={text!r} is not a restart policy; use one of: {choices}"
        ) from None


def _boolean(text: str, what: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ConfigurationError(f"{what}={text!r} is not a boolean; use 1 or 0 (true/false)")


def _signal(text: str, what: str) -> object:
    return parse_signal(text, what=what)


def _ready(text: str, what: str) -> ReadySpec:
    return parse_ready(text.strip())


def _access(text: str, what: str) -> str:
    value = text.strip().lower()
    if value not in ("main", "all"):
        raise ConfigurationError(f"{what}={text!r} is not a notify access; use main or all")
    return value


def _positive_duration(text: str, what: str) -> float:
    return parse_duration(text.strip(), what=what, allow_zero=False)


def _on_hup(text: str, what: str) -> str:
    value = text.strip().lower()
    if value not in ("upgrade", "forward"):
        raise ConfigurationError(
            f"{what}={text!r} is not a SIGHUP action; use upgrade (a zero-downtime upgrade) "
            "or forward (SIGHUP to the program)"
        )
    return value


def _command(text: str, what: str) -> tuple[str, ...]:
    try:
        words = tuple(shlex.split(text))
    except ValueError as exc:
        raise ConfigurationError(f"{what}={text!r} is not a command line: {exc}") from None
    if not words:
        raise ConfigurationError(f"{what} is empty; give a command, e.g. {what} './check.sh'")
    return words


def _path(text: str, what: str) -> str:
    value = text.strip()
    if not value:
        raise ConfigurationError(f"{what} is empty; give a file path")
    return value


def _listens(texts: list[str]) -> tuple[ListenSpec, ...]:
    return tuple(parse_listen(text) for text in texts)


_OPTIONS = {
    "stop_signal": _Option("--stop-signal", "WARDEN_STOP_SIGNAL", _signal),
    "stop_timeout": _Option("--stop-timeout", "WARDEN_STOP_TIMEOUT", _duration),
    "group": _Option("--group", "WARDEN_GROUP", _boolean),
    "restart": _Option("--restart", "WARDEN_RESTART", _policy),
    "backoff_initial": _Option("--backoff-initial", "WARDEN_BACKOFF_INITIAL", _duration),
    "backoff_max": _Option("--backoff-max", "WARDEN_BACKOFF_MAX", _duration),
    "backoff_jitter": _Option("--backoff-jitter", "WARDEN_BACKOFF_JITTER", _fraction),
    "min_uptime": _Option("--min-uptime", "WARDEN_MIN_UPTIME", _duration),
    "max_restarts": _Option("--max-restarts", "WARDEN_MAX_RESTARTS", _count),
    "ready": _Option("--ready", "WARDEN_READY", _ready),
    "ready_timeout": _Option("--ready-timeout", "WARDEN_READY_TIMEOUT", _positive_duration),
    "notify_access": _Option("--notify-access", "WARDEN_NOTIFY_ACCESS", _access),
    "watchdog": _Option("--watchdog", "WARDEN_WATCHDOG", _positive_duration),
    "on_hup": _Option("--on-hup", "WARDEN_ON_HUP", _on_hup),
    "drain_timeout": _Option("--drain-timeout", "WARDEN_DRAIN_TIMEOUT", _duration),
    "upgrade_check": _Option("--upgrade-check", "WARDEN_UPGRADE_CHECK", _command),
    "control": _Option("--control", "WARDEN_CONTROL", _path),
    "pid_file": _Option("--pid-file", "WARDEN_PID_FILE", _path),
}


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="warden run",
        usage="warden run [OPTIONS] -- COMMAND [ARGS...]",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    add = parser.add_argument
    add(
        "--stop-signal",
        metavar="SIGNAL",
        help="first signal of the stop ladder (default TERM) [WARDEN_STOP_SIGNAL]",
    )
    add(
        "--stop-timeout",
        metavar="DURATION",
        help="from the stop signal to SIGKILL, e.g. 10, 500ms, 1m (default 10s) "
        "[WARDEN_STOP_TIMEOUT]",
    )
    add(
        "--group",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="forward signals, the stop signal included, to the program's whole process "
        "group (default --no-group: to the program only; SIGKILL always goes to the "
        "group) [WARDEN_GROUP=1|0]",
    )
    add(
        "--restart",
        metavar="POLICY",
        help="no | on-failure | always: start the program again when it ends on its own "
        "(default no) [WARDEN_RESTART]",
    )
    add(
        "--backoff-initial",
        metavar="DURATION",
        help="delay before the first restart of a crash loop; doubles each time "
        "(default 1s) [WARDEN_BACKOFF_INITIAL]",
    )
    add(
        "--backoff-max",
        metavar="DURATION",
        help="the longest delay between restarts (default 30s) [WARDEN_BACKOFF_MAX]",
    )
    add(
        "--backoff-jitter",
        metavar="FRACTION",
        help="random share taken off each delay, 0 to 1 (default 0.2) [WARDEN_BACKOFF_JITTER]",
    )
    add(
        "--min-uptime",
        metavar="DURATION",
        help="a run at least this long is healthy and resets the crash loop (default 10s) "
        "[WARDEN_MIN_UPTIME]",
    )
    add(
        "--max-restarts",
        metavar="N",
        help="restarts of a crash loop before giving up, or 'unlimited' (default 5) "
        "[WARDEN_MAX_RESTARTS]",
    )
    add(
        "--listen",
        action="append",
        metavar="[NAME=]ADDRESS",
        help="bind and hold a socket for the program, handed over as LISTEN_FDS (fd 3, 4, ...): "
        "tcp://0.0.0.0:8000, tcp://[::1]:8000, unix:/run/app.sock?mode=0660; repeatable "
        "[WARDEN_LISTEN, space-separated]",
    )
    add(
        "--ready",
        metavar="GATE",
        help="when the program is ready: notify (READY=1 to NOTIFY_SOCKET), "
        "http://HOST:PORT/PATH (200-399), tcp, tcp://HOST:PORT, exec:CMD, none "
        "(default none) [WARDEN_READY]",
    )
    add(
        "--ready-timeout",
        metavar="DURATION",
        help="a program not ready by then is killed: reason 'failed to become ready within' "
        "(default 30s) [WARDEN_READY_TIMEOUT]",
    )
    add(
        "--notify-access",
        metavar="WHO",
        help="main | all: whose sd_notify messages count (default main: the program's own) "
        "[WARDEN_NOTIFY_ACCESS]",
    )
    add(
        "--watchdog",
        metavar="DURATION",
        help="give the program WATCHDOG_USEC; a missed WATCHDOG=1 ping gets SIGABRT, then "
        "SIGKILL, reason 'watchdog timeout' [WARDEN_WATCHDOG]",
    )
    add(
        "--on-hup",
        metavar="ACTION",
        help="upgrade | forward: SIGHUP to warden (and `warden reload`) starts a "
        "zero-downtime upgrade, or is forwarded to the program (default: upgrade with a "
        "--ready gate, forward without one) [WARDEN_ON_HUP]",
    )
    add(
        "--drain-timeout",
        metavar="DURATION",
        help="during an upgrade, from the old release's stop signal to SIGKILL to its group "
        "(default: --stop-timeout) [WARDEN_DRAIN_TIMEOUT]",
    )
    add(
        "--upgrade-check",
        metavar="COMMAND",
        help="run before each upgrade, within --ready-timeout; a non-zero exit (or no exit in "
        "time) cancels it and the old release keeps serving [WARDEN_UPGRADE_CHECK]",
    )
    add(
        "--control",
        metavar="PATH",
        help="the control socket for warden status/upgrade/reload/stop, mode 0600, or none "
        f"(default {default_control_path()}) [WARDEN_CONTROL]",
    )
    add(
        "--pid-file",
        metavar="PATH",
        help="write warden's pid there (atomically); removed at exit [WARDEN_PID_FILE]",
    )
    add("command", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def parse(argv: list[str], environ: Mapping[str, str]) -> SupervisorOptions:
    """Turn ``warden run`` arguments and ``WARDEN_*`` variables into options.

    Raises :class:`UsageError` with a one-line message for any bad input.
    """
    namespace = _build_parser().parse_args(argv)
    command = list(namespace.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError(
            "no command to run; give it after '--', e.g. warden run -- python -m http.server"
        )
    values: dict[str, object] = {}
    try:
        for key, option in _OPTIONS.items():
            given = getattr(namespace, key)
            if isinstance(given, bool):
                values[key] = given
            elif given is not None:
                values[key] = option.parse(given, option.flag)
            elif option.env in environ:
                values[key] = option.parse(environ[option.env], option.env)
        defaults = Backoff()
        backoff = Backoff(
            initial=_get(values, "backoff_initial", float, defaults.initial),
            maximum=_get(values, "backoff_max", float, defaults.maximum),
            jitter=_get(values, "backoff_jitter", float, defaults.jitter),
        )
        listen_texts = namespace.listen or environ.get("WARDEN_LISTEN", "").split()
        listen = _listens(listen_texts)
        base = SupervisorOptions(command=tuple(command))
        control = values.get("control")
        return SupervisorOptions(
            command=tuple(command),
            stop_signal=_get(values, "stop_signal", type(base.stop_signal), base.stop_signal),
            stop_timeout=_get(values, "stop_timeout", float, base.stop_timeout),
            group=_get(values, "group", bool, base.group),
            restart=_get(values, "restart", RestartPolicy, base.restart),
            backoff=backoff,
            min_uptime=_get(values, "min_uptime", float, base.min_uptime),
            max_restarts=values.get("max_restarts", base.max_restarts),  # type: ignore[arg-type]
            listen=listen,
            ready=_get(values, "ready", ReadySpec, base.ready),
            ready_timeout=_get(values, "ready_timeout", float, base.ready_timeout),
            notify_access=values.get("notify_access", base.notify_access),  # type: ignore[arg-type]
            watchdog=values.get("watchdog", base.watchdog),  # type: ignore[arg-type]
            on_hup=values.get("on_hup", base.on_hup),  # type: ignore[arg-type]
            drain_timeout=values.get("drain_timeout"),  # type: ignore[arg-type]
            upgrade_check=_get(values, "upgrade_check", tuple, ()),
            control=(
                default_control_path()
                if control is None
                else None
                if control == "none"
                else str(control)
            ),
            control_optional=control is None,
            pid_file=values.get("pid_file"),  # type: ignore[arg-type]
        )
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None


def _get(values: Mapping[str, object], key: str, kind: type[_T], default: _T) -> _T:
    value = values.get(key, default)
    assert isinstance(value, kind)
    return value


def main(argv: list[str]) -> int:
    """``warden run``: returns the exit code of a usage error or --help; after a run it ends
    the process itself (see :func:`_exit_now`)."""
    try:
        options = parse(argv, os.environ)
    except UsageError as exc:
        sys.stderr.write(f"warden run: error: {exc}\n")
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    from ..observe import log_events

    supervisor = Supervisor(options)
    log_events(supervisor.lifecycle)
    code = supervisor.run()
    if supervisor.final_message:
        sys.stderr.write(f"warden run: {supervisor.final_message}\n")
    return _exit_now(code)


def _exit_now(code: int) -> NoReturn:
    """Leave without the interpreter's teardown.

    Every child is reaped and every socket closed by now, so there is nothing left to
    finalise, and the teardown (module and object finalisation) was most of the time between
    the program's exit and warden's (about 20 ms measured): a PID 1 should leave at once.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
