"""The race: readers check invariants on every read while 10,000 reloads happen.

Half the reloads read files renamed into place; the other half read files written in place
in four chunks, reloaded after every chunk: three of every four of those reloads see a torn
file (a prefix, or new bytes over old ones), and each must be refused with the old snapshot
kept. Readers on three threads and three asyncio tasks (on a loop of their own) check, on
every read, invariants that tie the fields together. The GIL switch interval is shortened so
that readers and the reloader interleave far more often than in a service.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from warden.config import ConfigStore

from ._files import write_atomic

V = TypeVar("V")

ATOMIC_FILES = 5000
IN_PLACE_FILES = 1250
CHUNKS = 4  # so 1250 * 4 = 5000 reloads of files written in place, 3750 of them torn


@dataclasses.dataclass(frozen=True, slots=True)
class Shape:
    seq: int
    a: int
    items: tuple[int, ...]
    b: int

    def __post_init__(self) -> None:
        if not whole(self):
            raise ValueError(f"torn: seq={self.seq} a={self.a} b={self.b} items={self.items}")


def touch(value: V) -> V:
    """A Python call between two reads: where CPython may switch to another thread."""
    return value


def whole(s: Shape) -> bool:
    """The invariants: b == 2a, a items, counting up from seq."""
    a = s.a
    b = touch(s.b)
    items = touch(s.items)
    seq = touch(s.seq)
    return b == 2 * a and items == tuple(range(seq, seq + a))


def render(seq: int) -> bytes:
    a = seq % 40 + 1
    items = ", ".join(str(seq + i) for i in range(a))
    return f"seq = {seq}\na = {a}\nitems = [{items}]\nb = {2 * a}\n".encode()


class Readers:
    """Reader threads and asyncio readers; each counts reads and torn reads."""

    def __init__(self, store: ConfigStore[Shape], threads: int = 3, tasks: int = 3) -> None:
        self.store = store
        self.done = threading.Event()
        self.reads = 0
        self.torn: list[str] = []
        self.revisions_seen: set[int] = set()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._thread_reader, name=f"reader-{i}") for i in range(threads)
        ]
        self._threads.append(threading.Thread(target=lambda: asyncio.run(self._tasks(tasks))))

    def __enter__(self) -> Readers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        for thread in self._threads:
            thread.join(30)

    def _account(self, reads: int, torn: list[str], revisions: set[int]) -> None:
        with self._lock:
            self.reads += reads
            self.torn.extend(torn)
            self.revisions_seen |= revisions

    def _check(self, torn: list[str], revisions: set[int]) -> None:
        snap = self.store.snapshot
        value = self.store.current
        if not whole(value) or not whole(snap.value):
            torn.append(repr(value))
        revisions.add(snap.revision)

    def _thread_reader(self) -> None:
        reads, torn, revisions = 0, list[str](), set[int]()
        while not self.done.is_set():
            self._check(torn, revisions)
            reads += 1
        self._account(reads, torn, revisions)

    async def _tasks(self, n: int) -> None:
        async def reader() -> None:
            reads, torn, revisions = 0, list[str](), set[int]()
            while not self.done.is_set():
                for _ in range(50):
                    self._check(torn, revisions)
                reads += 50
                await asyncio.sleep(0)
            self._account(reads, torn, revisions)

        await asyncio.gather(*(reader() for _ in range(n)))


@pytest.fixture
def busy_gil() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.00005)  # 50 us instead of 5 ms: a hundred times more interleaving
    yield
    sys.setswitchinterval(before)


@pytest.fixture
def fast_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on tmpfs when there is one: the race is about memory, not the disk."""
    if not Path("/dev/shm").is_dir():
        yield tmp_path
        return
    directory = Path(tempfile.mkdtemp(prefix="warden-race-", dir="/dev/shm"))
    yield directory
    shutil.rmtree(directory)


def write_in_chunks(path: Path, data: bytes, *, truncate_first: bool) -> Iterator[None]:
    """Write ``data`` over ``path`` in place in CHUNKS pieces, yielding after each but the last."""
    fd = os.open(path, os.O_WRONLY)
    try:
        if truncate_first:
            os.ftruncate(fd, 0)
        step = -(-len(data) // CHUNKS)
        for i in range(CHUNKS):
            os.pwrite(fd, data[i * step : (i + 1) * step], i * step)
            if i < CHUNKS - 1:
                yield
        os.ftruncate(fd, len(data))  # an overwriting writer cuts the old tail last
    finally:
        os.close(fd)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_no_torn_read_and_every_torn_file_refused(
    fast_dir: Path, busy_gil: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="warden.config")  # 3,750 refusals, as expected
    path = fast_dir / "race.toml"
    path.write_bytes(render(0))
    store = ConfigStore(path, schema=Shape)
    reloads = torn_files = refused = 0
    seq = 0
    with Readers(store) as readers:
        for i in range(ATOMIC_FILES):
            seq += 1
            write_atomic(path, render(seq).decode())
            result = store.reload()
            reloads += 1
            assert result.changed, result.error
            if i % 4 == 0:
                seq += 1
                before = store.current
                for _ in write_in_chunks(path, render(seq), truncate_first=i % 8 == 0):
                    result = store.reload()
                    reloads += 1
                    torn_files += 1
                    refused += not result.ok
                    assert store.current is before
                result = store.reload()
                reloads += 1
                assert result.changed, result.error
                assert store.current.seq == seq
    assert reloads == ATOMIC_FILES + IN_PLACE_FILES * CHUNKS == 10_000
    assert readers.torn == []
    assert refused == torn_files == IN_PLACE_FILES * (CHUNKS - 1)
    assert store.revision == 1 + ATOMIC_FILES + IN_PLACE_FILES
    # The readers really ran alongside: they saw many revisions, not just the first and last.
    assert readers.reads > 10_000
    assert len(readers.revisions_seen) > 100
