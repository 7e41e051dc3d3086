"""The ``warden`` command: parses arguments and delegates; no behaviour of its own.

Each subcommand is a module with a ``main(argv) -> int`` (or a ``main_command(name, argv)``
shared by several commands), imported only when it is used, so
``warden run`` (a PID 1 that should stay small) loads nothing another subcommand needs. A new
subcommand is one line in :data:`_COMMANDS`.
"""

from __future__ import annotations

import importlib
import sys

from .._exitcodes import EXIT_OK, EXIT_USAGE
from .._version import __version__
from ._streams import say, show

__all__ = ["main"]

#: name -> (module, one-line summary). The module implements ``main(argv: list[str]) -> int``,
#: or ``main_command(name: str, argv: list[str]) -> int`` when it serves several commands.
_COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("warden.cli._run", "run a program under warden: PID 1 duties, stop ladder, restarts"),
    "status": ("warden.cli._control", "show what a running warden and its program are doing"),
    "upgrade": ("warden.cli._control", "replace the program without dropping a connection"),
    "reload": ("warden.cli._control", "do what SIGHUP does: upgrade, or forward it to the program"),
    "stop": ("warden.cli._control", "stop the program and its warden, as SIGTERM does"),
    "demo": ("warden.cli._demo", "see what warden is for: a bundled service through six promises"),
    "doctor": ("warden.cli._doctor", "check that a deployment's numbers add up; explain a death"),
}


def _usage() -> str:
    width = max(len(name) for name in _COMMANDS)
    lines = [
        "usage: warden COMMAND [OPTIONS] ...",
        "",
        "warden keeps a service alive and honest through its whole life.",
        "",
        "commands:",
        *(f"  {name:<{width}}  {summary}" for name, (_, summary) in _COMMANDS.items()),
        "",
        "Run 'warden COMMAND --help' for the options of a command.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``warden`` console script; returns the process exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args:
        say(_usage())
        return EXIT_USAGE
    name, rest = args[0], args[1:]
    if name in ("-h", "--help", "help"):
        show(_usage())
        return EXIT_OK
    if name == "--version":
        show(f"warden {__version__}\n")
        return EXIT_OK
    entry = _COMMANDS.get(name)
    if entry is None:
        known = ", ".join(_COMMANDS)
        say(
            f"warden: error: {name!r} is not a warden command; use one of: {known} "
            "(warden --help)\n"
        )
        return EXIT_USAGE
    if name == "run" and "asyncio" not in sys.modules:
        # warden run never speaks TLS, but asyncio imports ssl (libssl and libcrypto: 4.7 MiB
        # resident, measured) if it can; asyncio runs without it when the import fails. A
        # PID 1 that holds a container's sockets should stay small.
        sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]
    module = importlib.import_module(entry[0])
    if hasattr(module, "main_command"):
        code: int = module.main_command(name, rest)
    else:
        code = module.main(rest)
    return code
