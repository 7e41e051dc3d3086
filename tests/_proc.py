"""Real child processes for tests: start, wait for a line, signal, always clean up."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


class Proc:
    """A child process whose stdout and stderr lines are collected as they arrive."""

    def __init__(
        self, argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        self.popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        self.pid = self.popen.pid
        self.out: list[str] = []
        self.err: list[str] = []
        self._lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._pump, args=(stream, name, sink), daemon=True)
            for stream, name, sink in (
                (self.popen.stdout, "out", self.out),
                (self.popen.stderr, "err", self.err),
            )
        ]
        for reader in self._readers:
            reader.start()

    def _pump(self, stream: object, name: str, sink: list[str]) -> None:
        assert stream is not None
        for line in stream:  # type: ignore[attr-defined]
            sink.append(line)
            self._lines.put((name, line))
        self._lines.put((name, None))

    def wait_line(self, pattern: str, timeout: float = 10.0, stream: str = "out") -> re.Match[str]:
        """Wait until a line of ``stream`` matches ``pattern``; fail after ``timeout``."""
        regex = re.compile(pattern)
        seen = self.out if stream == "out" else self.err
        for line in list(seen):
            if match := regex.search(line):
                return match
        deadline = time.monotonic() + timeout
        closed: set[str] = set()
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                name, item = self._lines.get(timeout=remaining)
            except queue.Empty:
                break
            if item is None:
                closed.add(name)
                if stream in closed:
                    break
                continue
            if name == stream and (match := regex.search(item)):
                return match
        raise AssertionError(
            f"no line matching {pattern!r} on std{stream} within {timeout}s;\n"
            f"stdout: {''.join(self.out)[-3000:]}\nstderr: {''.join(self.err)[-3000:]}"
        )

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def wait(self, timeout: float = 10.0) -> int:
        code = self.popen.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return code

    @property
    def stderr(self) -> str:
        return "".join(self.err)

    @property
    def stdout(self) -> str:
        return "".join(self.out)

    def kill(self) -> None:
        """Kill the process and its whole session (tests start each in its own)."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait(10)
        for stream in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


@contextlib.contextmanager
def spawning() -> Iterator[list[Proc]]:
    procs: list[Proc] = []
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()


def python(*args: str) -> list[str]:
    return [sys.executable, *args]
