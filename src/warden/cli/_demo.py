"""``warden demo [--json] [--keep DIR]``: parses, then runs the demo (``warden.demo``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from .._durations import parse_duration
from .._exceptions import ConfigurationError, UsageError
from .._exitcodes import EXIT_USAGE

__all__ = ["main"]

_DESCRIPTION = """\
Show what warden is for, on this machine, in under a minute: a bundled HTTP service runs
under a real `warden run` on loopback and goes through six steps, each a promise with its own
verdict: start behind a readiness gate, a config reload, a zero-downtime upgrade, a broken
release rolled back, a memory leak caught before the OOM killer, a graceful stop. Real
traffic throughout; every figure is measured.
"""

_EPILOG = """\
exit codes: 0 every promise that ran held; 1 one broke; 2 bad usage, or the demo could not
run here (one line says why, e.g. no room in $TMPDIR, and where to point it; every step is
shown as not run); 128+N interrupted by signal N (130 ^C, 143 SIGTERM, 129 SIGHUP, 131
SIGQUIT): warden and its service are stopped and the directories removed first; 141 its
output was closed (warden demo | head): the same cleanup, quietly.
A step this machine cannot run (no memory cgroup) says why and is shown as not run.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see warden demo --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="warden demo",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--keep",
        metavar="DIR",
        type=Path,
        help="keep every log there (warden's JSON log, the service's, each request, the "
        "summary); DIR must be new or empty",
    )
    parser.add_argument(
        "--upgrade-confirm",
        metavar="DURATION",
        default="1s",
        help="the confirmation window of the demo's warden (default 1s); 0 shows what a "
        "broken release does without one",
    )
    return parser


def main(argv: list[str]) -> int:
    """Parse ``argv`` and run the demo; the exit code."""
    try:
        options = _parser().parse_args(argv)
        window = parse_duration(options.upgrade_confirm, what="--upgrade-confirm")
    except (UsageError, ConfigurationError) as exc:
        sys.stderr.write(f"warden demo: error: {exc}\n")
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    from ..demo import run_demo

    return run_demo(json_output=options.json, keep=options.keep, upgrade_confirm=window)
