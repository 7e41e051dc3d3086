"""Exit codes of a service run under warden (the table is in docs/design.md and README.md)."""

from __future__ import annotations

EXIT_OK = 0
"""Clean stop."""
EXIT_FAILURE = 1
"""A component failed to start or to stop in time, or ``main`` raised."""
EXIT_USAGE = 2
"""Bad command-line usage."""
EXIT_DEADLINE = 124
"""The shutdown deadline passed and the process was forced out (like ``timeout(1)``)."""
EXIT_SIGNAL_BASE = 128
"""128 + N: an immediate stop on a second signal N, or a child that died of signal N."""
