"""Real v1 memory cgroups for the memory tests, each removed (its processes killed) after."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from warden.memory import ChildCgroup, MemoryCgroupError, MemoryUnavailableError, find_memory_cgroup

APPS = Path(__file__).resolve().parent / "apps"
MiB = 2**20

MakeCgroup = Callable[[int], ChildCgroup]


def _v1_parent() -> str | None:
    try:
        own = find_memory_cgroup()
    except MemoryUnavailableError as exc:
        return str(exc)
    if own.version != 1:
        return f"the memory cgroup is v{own.version}; these tests need the v1 controller"
    if not os.access(own.path, os.W_OK):
        return f"{own.path} is not writable"
    return None


@pytest.fixture
def memory_cgroup() -> Iterator[MakeCgroup]:
    """Make real v1 memory cgroups with a limit; all are removed after the test."""
    why = _v1_parent()
    if why is not None:
        pytest.skip(why)
    made: list[ChildCgroup] = []

    def make(limit: int) -> ChildCgroup:
        group = ChildCgroup.create(limit)
        made.append(group)
        return group

    yield make
    errors = []
    for group in made:
        try:
            group.remove()
        except MemoryCgroupError as exc:
            errors.append(str(exc))
    assert not errors, errors


def app(name: str, *args: str) -> list[str]:
    return [sys.executable, str(APPS / name), *args]
