"""``warden run [OPTIONS] -- CMD ARGS...``: the argument parser, then the supervisor.

Every option can also come from a ``WARDEN_*`` environment variable (a container image sets
its defaults there, the command line overrides them). Bad input gets one line naming the
option, the value and the fix, and exit code 2; a command that cannot be executed gets one
line and 126/127, like a shell.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import sys
from collections.abc import Mapping
from typing import NoReturn

from .._exceptions import ConfigurationError, UsageError, shown
from .._exitcodes import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from ..supervisor import _OPTIONS as OPTIONS
from ..supervisor import Supervisor, SupervisorOptions
from ..supervisor import _add_arguments as add_arguments
from ..supervisor import _given_values as given_values

__all__ = ["UsageError", "main", "parse"]

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

  warden run --listen tcp://0.0.0.0:8000 --ready http://127.0.0.1:8000/ -- gunicorn app:wsgi
      warden holds the port and hands it to the program as fd 3 (LISTEN_FDS; gunicorn takes
      it as is); ready only once the app answers there
  warden run --listen tcp://[::]:8000 --ready notify --watchdog 10s -- ./server
      the server sends READY=1 and WATCHDOG=1 to warden's NOTIFY_SOCKET, as under systemd
      (uvicorn --fd 3: READY=1 from the app's startup, see docs/integrations/uvicorn.md)
  warden run --listen tcp://0.0.0.0:8000 --ready http://127.0.0.1:8000/ \\
      --drain-timeout 30s -- gunicorn app:wsgi
      then `kill -HUP <warden>` or `warden upgrade`: the new release starts on the same
      socket, the old one drains once the new one is ready; a failed start changes nothing

stop ladder: stop signal -> --stop-timeout -> SIGKILL to the process group and to every
adopted orphan -> wait for all of them -> exit. A second SIGTERM/SIGINT skips to SIGKILL.

exit codes: the program's own exit code; 128+N when it died of signal N; 126 when the command
cannot be executed, 127 when it is not found; 2 for bad usage; 1 after giving up on a crash
loop of clean exits, or when the program was not started (a last line says why); 4 when it
never passed its --ready gate; 124 when the ladder itself could not finish in time.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints the whole usage and then the message; one line is easier to read in
        # a container log.
        raise UsageError(f"{message} (see warden run --help)")


def _formatter(prog: str) -> argparse.HelpFormatter:
    """argparse's formatter, told the terminal's width as argparse would find it.

    Left to itself, argparse asks ``shutil`` (on every ``add_argument``), and ``shutil`` loads
    zlib, bz2 and lzma: 0.7 MiB resident in a PID 1 that never compresses anything (measured).
    """
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    columns = columns or 80  # not a terminal, or one that says 0: shutil's fallback
    return argparse.RawDescriptionHelpFormatter(prog, width=columns - 2)


def _build_parser() -> argparse.ArgumentParser:
    """The parser, one argument per option the supervisor declares (its ``OPTIONS``)."""
    parser = _Parser(
        prog="warden run",
        usage="warden run [OPTIONS] -- COMMAND [ARGS...]",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=_formatter,
        allow_abbrev=False,
    )
    add_arguments(parser, OPTIONS)
    parser.add_argument("command", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
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
    given = given_values(namespace, OPTIONS)
    _refuse_misspelt_variables(environ)
    try:
        return SupervisorOptions.from_inputs(command, given, environ)
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None


#: ``WARDEN_*`` variables read elsewhere than ``warden run``'s options (the library's).
_OTHER_VARIABLES = frozenset({"WARDEN_SHUTDOWN_TIMEOUT"})

#: How alike a name must be to an option's variable to be its misspelling: a letter or an
#: underscore off scores above 0.95; another name that merely shares a prefix
#: (``WARDEN_READY_URL``, ``WARDEN_HEALTH_PORT``) below 0.86, and is left alone.
_MISSPELT = 0.9


def _refuse_misspelt_variables(environ: Mapping[str, str]) -> None:
    """A ``WARDEN_*`` variable that is an option's name misspelt would be ignored in
    silence (``WARDEN_STOPTIMEOUT=30``: the stop timeout stays 10 s, found out at the first
    SIGKILL): refused, naming the one meant. Other ``WARDEN_*`` names may be the program's."""
    known = {option.env for _, option in OPTIONS} | _OTHER_VARIABLES
    for name in sorted(environ):
        if not name.startswith("WARDEN_") or name in known:
            continue
        import difflib  # only for an unknown WARDEN_* name: not PID 1's resident memory

        meant = difflib.get_close_matches(name, known, n=1, cutoff=_MISSPELT)
        if meant:
            raise UsageError(
                f"{name}={shown(environ[name])} is not a warden variable, so it would be "
                f"ignored; did you mean {meant[0]}? rename it"
            )


def main(argv: list[str]) -> int:
    """``warden run``: returns the exit code of a usage error or --help; after a run it ends
    the process itself (see :func:`_exit_now`)."""
    _open_missing_std_fds()
    try:
        options = parse(argv, os.environ)
    except UsageError as exc:
        _say(f"warden run: error: {exc}\n")
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    from ..observe import log_events
    from ..supervisor import _ignore_unforwarded as ignore_unforwarded

    ignore_unforwarded()
    try:
        supervisor = Supervisor(options)
        # warden exits right after the run: a signal that came after the lifecycle restored
        # its handlers would otherwise meet its default action and replace the program's
        # exit code.
        supervisor.lifecycle.hold_signals_at_exit()
        log_events(supervisor.lifecycle)
        # Its last line says why it exits (the closing fact, logged like every other).
        code = supervisor.run()
    except OSError as exc:
        # Before anything was started (the lifecycle's own pipe, its signal intake): out of
        # descriptors (`ulimit -n 6`) or another resource. One line, not a traceback.
        _say(f"warden run: the program was not started: {_resource_error(exc)}\n")
        return _exit_now(EXIT_FAILURE)
    return _exit_now(code)


def _resource_error(exc: OSError) -> str:
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        return f"{exc.strerror} (the limit is {_nofile()}; raise it: ulimit -n 1024)"
    return str(exc)


def _nofile() -> int:
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _open_missing_std_fds() -> None:
    """Put ``/dev/null`` on a closed stdin, stdout or stderr (``2>&-``), as systemd does.

    Else the next file warden opens (the control socket) would get that number, its log
    lines would go into it, and the program would inherit it as its stderr. warden's own
    log then goes nowhere (``sys.stderr`` stays ``None``); the run itself is unchanged.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free number: fd itself
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            os.set_inheritable(fd, True)  # the program gets it too


def _say(text: str) -> None:
    """A line for the user on stderr, if there is one, never blocking on a stalled pipe.

    warden says one only when something went wrong, so where stderr is the journal's stream
    it carries journald's error priority (the stream's ``<3>`` level prefix): a stream line
    is info otherwise, and ``journalctl -p err`` would not show why warden exited.
    """
    if sys.stderr is None:
        return
    from ..observe import _write_bounded as write_bounded

    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        with contextlib.suppress(Exception):
            sys.stderr.write(text)
        return
    if "JOURNAL_STREAM" in os.environ:
        from ..observe import _journal_stream_matches

        if _journal_stream_matches(fd):
            text = "".join(f"<3>{line}\n" for line in text.splitlines())
    write_bounded(fd, text)


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
