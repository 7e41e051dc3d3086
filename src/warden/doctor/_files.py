"""``warden doctor PATH...``: read the files, gather the deployments, run the checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO

from ._checks import run_checks
from ._gather import gather
from ._inputs import read_inputs
from ._results import Report


def check_files(paths: Sequence[str], stdin: IO[str] | IO[bytes] | None = None) -> Report:
    """The report on the files at ``paths`` (``-``: ``stdin``; a directory: its files).

    Raises:
        InputError: a file that cannot be read (exit 2; one line names the file and line).
    """
    sources = read_inputs(paths, stdin)
    deployments, notes = gather(sources)
    results = run_checks(deployments)
    count = len(sources)
    title = f"{count} file{'' if count == 1 else 's'}"
    return Report.of(results, notes, title)
