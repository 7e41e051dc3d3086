from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests._proc import Proc, spawning

Spawn = Callable[..., Proc]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start a real process (own session); every one is killed at the end of the test."""
    with spawning() as procs:

        def start(
            argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
        ) -> Proc:
            full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
            proc = Proc(argv, env=full_env, cwd=cwd)
            procs.append(proc)
            return proc

        yield start
