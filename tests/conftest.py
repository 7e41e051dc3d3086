from __future__ import annotations

import asyncio
import inspect
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


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests on a fresh event loop (no plugin needed for that)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True
