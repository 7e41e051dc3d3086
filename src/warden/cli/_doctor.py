"""``warden doctor``: the argument parser; the checks are ``warden.doctor``'s.

Exit codes: 0 clean or warnings only; 1 any finding is an error; 2 input it cannot read (one
line on stderr naming the file and line) or bad usage. The exit code is the verdict whatever
becomes of the output: stdout or stderr closed (``>&-``), full (``/dev/full``) or gone (a
reader that quit) loses the text, never changes the code (a CI job reads the code).
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from .._durations import parse_duration
from .._exceptions import ConfigurationError, UsageError
from .._exitcodes import EXIT_OK, EXIT_USAGE
from ._streams import say, show

_DESCRIPTION = """\
Check that a deployment's numbers add up: Kubernetes manifests, systemd units and
Containerfiles, read together, with warden's options read by warden run's own table.
--live checks this machine; --why explains a past death. Every check is explained in
docs/doctor.md.
"""

_EPILOG = """\
examples:
  warden doctor deploy/                      every manifest, unit and Containerfile in it
  helm template chart | warden doctor -      a rendered chart, from standard input
  warden doctor --json k8s/app.yaml          for CI: one JSON object
  warden doctor --live                       inside the container, or on the host
  warden doctor --why 137 --pid 4242         was pid 4242 OOM-killed, or killed from outside?

exit codes: 0 clean (or warnings only), 1 an error was found (--why: the death was a
failure, any status but 0), 2 input it cannot read.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see warden doctor --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="warden doctor",
        usage="warden doctor [--json] PATH... | --live\n"
        "       | --why [STATUS] [--pid PID] [--since DURATION] [--ago DURATION]",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files, directories, or -")
    parser.add_argument("--json", action="store_true", help="print one JSON object, for scripts")
    parser.add_argument("--live", action="store_true", help="check the machine this runs on")
    parser.add_argument(
        "--why",
        nargs="?",
        const="",
        metavar="STATUS",
        help="explain a death: its exit status (137, 143, 124...) as a shell shows it",
    )
    parser.add_argument("--pid", type=int, metavar="PID", help="--why: the process that died")
    parser.add_argument(
        "--since",
        metavar="DURATION",
        help="--why: look at the kernel's log of the last DURATION only (e.g. 10m, 2h)",
    )
    parser.add_argument(
        "--ago",
        metavar="DURATION",
        help="--why: it died DURATION ago (e.g. 90s; kubectl describe's Last State: "
        "Finished); another process's OOM kill counts only before that",
    )
    return parser


def main(argv: list[str]) -> int:
    """``warden doctor``; returns the exit code."""
    try:
        options = _parser().parse_args(argv)
        mode = _mode(options)
        since = ago = None
        if options.since is not None:
            since = parse_duration(options.since, what="--since", allow_zero=False)
        if options.ago is not None:
            ago = parse_duration(options.ago, what="--ago")
        status = _status(options.why)
    except (UsageError, ConfigurationError) as exc:
        say(f"warden doctor: error: {exc}\n")
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    from ..doctor import (
        InputError,
        check_files,
        check_live,
        explain_death,
        render_json,
        render_text,
    )

    try:
        if mode == "live":
            report = check_live()
        elif mode == "why":
            report = explain_death(status, pid=options.pid, since=since, ago=ago)
        else:
            report = check_files(options.paths, sys.stdin)
    except InputError as exc:
        say(f"warden doctor: {exc}\n")
        return EXIT_USAGE
    show(render_json(report) if options.json else render_text(report))
    return report.exit_code


def _mode(options: argparse.Namespace) -> str:
    modes = [
        name
        for name, on in (
            ("live", options.live),
            ("why", options.why is not None),
            ("files", bool(options.paths)),
        )
        if on
    ]
    if len(modes) > 1:
        raise UsageError(f"give one of PATH..., --live or --why, not {' and '.join(modes)}")
    if not modes:
        raise UsageError("give the files to check (PATH..., - for standard input), --live or --why")
    if (options.pid, options.since, options.ago) != (None, None, None) and modes != ["why"]:
        raise UsageError("--pid, --since and --ago go with --why")
    return modes[0]


def _status(text: str | None) -> int | None:
    if not text:
        return None
    if not text.isdigit() or int(text) > 255:
        raise UsageError(f"--why {text!r} is not an exit status; give a number from 0 to 255")
    return int(text)
