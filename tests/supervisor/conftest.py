"""Running ``warden run`` as a real process, and waiting on what it and its program say.

No sleeping as synchronisation: every wait is for a line, a file or a process state, with a
deadline. Every process a test starts is recorded and killed by pid at teardown.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.supervisor._socket_peers import Children

if TYPE_CHECKING:
    from tests.supervisor._systemd_peers import Manager

DEADLINE = 20.0


class Lines:
    """Collects the lines of a stream on a thread; waits for one with a deadline."""

    def __init__(self, stream: object) -> None:
        self.other: Lines | None = None  # the other stream, shown when a wait fails
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        assert hasattr(stream, "readline")
        for line in iter(stream.readline, ""):
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = DEADLINE, *, start: int = 0) -> re.Match[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    match = regex.search(line)
                    if match:
                        return match
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    raise AssertionError(
                        f"no line matching {pattern!r} within {timeout}s; got:\n"
                        + "\n".join(line[:300] for line in self.lines[-40:])
                        + "\n-- other stream --\n"
                        + (self.other.text()[-3000:] if self.other else "")
                    )
                self._cond.wait(remaining)

    def count(self, pattern: str) -> int:
        regex = re.compile(pattern)
        with self._cond:
            return sum(1 for line in self.lines if regex.search(line))

    def close_wait(self, timeout: float = DEADLINE) -> None:
        self._thread.join(timeout)

    @property
    def reading(self) -> bool:
        return self._thread.is_alive()

    def text(self) -> str:
        with self._cond:
            return "\n".join(self.lines)


#: ``warden run``, as a user types it.
WARDEN_RUN = (sys.executable, "-m", "warden", "run")

#: ``warden run`` on a clock the test jumps (``_jumped.py``): its first argument is the fd.
JUMPED_RUN = (sys.executable, str(Path(__file__).with_name("_jumped.py")))
JUMPED = "test clock jump"  # what _jumped.py says after each jump: "JUMPED N: TIME"


class Warden:
    """A ``warden run`` process with its stdout (the program's) and stderr (warden's log)."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str] | None,
        prefix: list[str],
        *,
        run: tuple[str, ...] = WARDEN_RUN,
        pass_fds: tuple[int, ...] = (),
    ) -> None:
        self.proc = subprocess.Popen(
            [*prefix, *run, *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
            pass_fds=pass_fds,
        )
        self.pid = self.proc.pid
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.out = Lines(self.proc.stdout)
        self.err = Lines(self.proc.stderr)
        self.out.other, self.err.other = self.err, self.out

    def kill(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def wait(self, timeout: float = DEADLINE) -> int:
        code = self.proc.wait(timeout)
        self.out.close_wait()
        self.err.close_wait()
        return code

    def events(self, kind: str) -> list[dict[str, object]]:
        """warden's log is JSON lines when stderr is not a terminal."""
        found = []
        for line in list(self.err.lines):
            if line.startswith("{"):
                data = json.loads(line)
                if data.get("event") == kind:
                    found.append(data)
        return found


class JumpedWarden(Warden):
    """``warden run`` whose clock moves only when :meth:`jump` says (``_jumped.py``)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self._jumped = 0
        read, self._jumps = os.pipe()
        try:
            super().__init__([str(read), *argv], env, [], run=JUMPED_RUN, pass_fds=(read,))
        finally:
            os.close(read)

    def jump(self, seconds: float) -> float:
        """Move warden's clock ``seconds`` forward: what falls due fires, in order. Returns
        the clock's new time once warden has made the jump."""
        self._jumped += 1
        os.write(self._jumps, f"{seconds!r}\n".encode())
        return float(self.err.wait_for(f"^{JUMPED} {self._jumped}: (\\S+)$").group(1))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._jumps)


class Processes:
    """Starts wardens and remembers every pid to kill at teardown."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.wardens: list[Warden] = []
        self.pids: set[int] = set()
        #: The control socket of the wardens this test starts (one at a time).
        self.control = tmp_path / "control.sock"
        #: Their runtime directory (notify sockets): the test's own, so a warden the test
        #: kills with SIGKILL leaves nothing behind in the machine's /run.
        self.runtime = tmp_path / "run"
        self.runtime.mkdir(mode=0o700, exist_ok=True)

    def warden(
        self,
        *argv: str,
        env: dict[str, str] | None = None,
        prefix: list[str] | None = None,
    ) -> Warden:
        warden = Warden(list(argv), self._env(env), prefix or [])
        self.wardens.append(warden)
        return warden

    def jumped(self, *argv: str, env: dict[str, str] | None = None) -> JumpedWarden:
        """``warden run`` on a clock that stands still until the test jumps it."""
        warden = JumpedWarden(list(argv), self._env(env))
        self.wardens.append(warden)
        return warden

    def _env(self, env: dict[str, str] | None) -> dict[str, str]:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
        full_env["PYTHONUNBUFFERED"] = "1"
        # A control socket of the test's own: the default path is shared by the machine.
        full_env["WARDEN_CONTROL"] = str(self.control)
        full_env["XDG_RUNTIME_DIR"] = str(self.runtime)
        full_env.update(env or {})
        return full_env

    def script(self, name: str, body: str) -> str:
        """Write a Python script to tmp_path; returns its path."""
        path = self.tmp_path / name
        path.write_text(f"#!{sys.executable}\n{body}")
        path.chmod(0o755)
        return str(path)

    def track(self, *pids: int) -> None:
        self.pids.update(pids)

    def cleanup(self) -> None:
        """Kill every warden and everything below it, by pid, then close the pipes.

        A warden killed with SIGKILL cannot stop its program, so its descendants are listed
        first and killed with it. The pipes are closed only once their reader threads saw
        EOF: closing a stream another thread is reading blocks on the stream's lock.
        """
        for warden in self.wardens:
            if warden.proc.poll() is None:
                doomed = [warden.pid, *descendants(warden.pid)]
                for pid in doomed:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                warden.proc.wait(10)
        for pid in self.pids:
            # Only if the pid still runs one of this test's scripts: a pid warden reaped may
            # already belong to someone else.
            with contextlib.suppress(OSError):
                if str(self.tmp_path).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
        for warden in self.wardens:
            if isinstance(warden, JumpedWarden):
                warden.close()
            for lines, stream in (
                (warden.out, warden.proc.stdout),
                (warden.err, warden.proc.stderr),
            ):
                lines.close_wait(5)
                if stream is not None and not lines.reading:
                    stream.close()


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children_of(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    processes = Processes(tmp_path)
    try:
        yield processes
    finally:
        processes.cleanup()


def proc_state(pid: int) -> str | None:
    """The one-letter state of ``pid`` from /proc (``Z`` for a zombie), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                found.extend(
                    int(p) for p in Path(f"/proc/{pid}/task/{task}/children").read_text().split()
                )
    return found


def wait_until(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    """Poll a kernel state (there is no event for "this pid is gone") with a deadline."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


@pytest.fixture
def children() -> Iterator[Children]:
    """Children spawned directly by a test (no warden reaper); killed and reaped at the end."""
    made = Children()
    try:
        yield made
    finally:
        made.cleanup()


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[Manager]:
    """A notify socket standing for systemd above warden."""
    from tests.supervisor._systemd_peers import Manager  # it imports this module

    made = Manager(tmp_path / "up.sock")
    try:
        yield made
    finally:
        made.close()
