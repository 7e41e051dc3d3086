"""Every exit code warden itself chooses, in one table (docs/design.md and docs/supervisor.md
show it).

Standard library only and nothing else imported, so the CLI client can use it without
loading asyncio. A program's own exit code is passed on as it is; these are the others.
"""

from __future__ import annotations

__all__ = [
    "EXIT_DEADLINE",
    "EXIT_FAILURE",
    "EXIT_NOT_EXECUTABLE",
    "EXIT_NOT_FOUND",
    "EXIT_NOT_READY",
    "EXIT_NO_WARDEN",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_SIGNAL_BASE",
    "EXIT_USAGE",
]

EXIT_OK = 0
"""Clean stop; a client command that was done."""
EXIT_FAILURE = 1
"""A component failed to start or to stop in time, or ``main`` raised; ``warden run`` gave up
on a crash loop of clean exits; the memory sentinel stopped the service (or the program, which
then exited 0) at ``critical``: no success, so a service manager restarts it."""
EXIT_REFUSED = 1
"""A client command (``warden status``, ``upgrade``...) the warden answered no to."""
EXIT_USAGE = 2
"""Bad command-line usage or a bad ``WARDEN_*`` value."""
EXIT_NO_WARDEN = 3
"""A client command that no warden answered."""
EXIT_NOT_READY = 4
"""``warden run``: the program never passed its ``--ready`` gate: not ready within
``--ready-timeout`` (warden stopped it, however it then exited), or it exited 0 before it was
ready. A program that fails on its own before it is ready keeps its own code."""
EXIT_DEADLINE = 124
"""The shutdown deadline passed and the process was forced out (like ``timeout(1)``)."""
EXIT_NOT_EXECUTABLE = 126
"""The command was found but cannot be executed (POSIX ``sh``, "Command Search and
Execution")."""
EXIT_NOT_FOUND = 127
"""The command was not found (as a shell reports it)."""
EXIT_SIGNAL_BASE = 128
"""128 + N: an immediate stop on a second signal N, or a child that died of signal N."""
