"""A real ``warden run`` as a process, and what it and its program say, as facts to wait on.

warden's stderr is its JSON log (stderr is a pipe, not a terminal), one fact per line; the
program's stdout is the bundled service's facts (its own JSON lines, with pid and release).
Both are written to the log directory as they arrive and kept in memory, so a step waits
for a fact with a deadline instead of sleeping. The control commands (``warden upgrade``,
``warden reload``) run as a user runs them: the ``warden`` command, in a process of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._tether import Tie

Fact = dict[str, Any]
Match = Callable[[Fact], bool]

#: Seconds the demo's cleanup lets warden stop gracefully before SIGKILL.
END_WAIT = 15.0


def kind(name: str, **data: object) -> Match:
    """A match for facts of ``name`` whose ``data`` has the given values."""

    def match(fact: Fact) -> bool:
        if fact.get("kind") != name:
            return False
        found = fact.get("data") or {}
        return all(found.get(key) == value for key, value in data.items())

    return match


class FactStream:
    """JSON lines from a pipe: each written to ``log`` as it arrives and kept, to wait on.

    A line that is not JSON is kept as ``{"kind": "text", "line": ...}``. The pipe is read to
    its end whatever becomes of the log (a full disk stops the log, never the reading: a
    writer blocked on a full pipe would be warden itself), and closed there.
    """

    def __init__(self, pipe: IO[bytes], log: Path) -> None:
        self.facts: list[Fact] = []
        self.log_error: str | None = None  # why the log stopped being written, if it did
        self._cond = threading.Condition()
        self._closed = False
        self._log: IO[bytes] | None = log.open("wb")
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe: IO[bytes]) -> None:
        try:
            for raw in pipe:
                self._write(raw)
                text = raw.decode("utf-8", "replace").rstrip("\n")
                try:
                    fact = json.loads(text)
                except ValueError:
                    fact = None
                if not isinstance(fact, dict):
                    fact = {"kind": "text", "line": text}
                with self._cond:
                    self.facts.append(fact)
                    self._cond.notify_all()
        finally:
            pipe.close()
            self._write(None)
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    def _write(self, raw: bytes | None) -> None:
        """Append ``raw`` to the log (None: close it); the first error ends the log."""
        log = self._log
        if log is None:
            return
        try:
            if raw is None:
                self._log = None
                log.close()
            else:
                log.write(raw)
                log.flush()
        except OSError as exc:
            self.log_error = f"{log.name}: {exc.strerror or exc}"
            self._log = None
            with contextlib.suppress(OSError):
                log.close()

    def mark(self) -> int:
        """Where the facts are now: wait for one from here on."""
        with self._cond:
            return len(self.facts)

    def find(self, match: Match, start: int = 0) -> Fact | None:
        with self._cond:
            return next((f for f in self.facts[start:] if match(f)), None)

    def all(self, match: Match, start: int = 0, end: int | None = None) -> list[Fact]:
        with self._cond:
            return [f for f in self.facts[start:end] if match(f)]

    def wait(self, match: Match, timeout: float, start: int = 0) -> Fact | None:
        """The first fact from ``start`` on that matches, waiting up to ``timeout``; None
        when the time is up or the stream ended without one."""
        at = self.wait_at(match, timeout, start)
        return None if at is None else self.facts[at]

    def wait_at(self, match: Match, timeout: float, start: int = 0) -> int | None:
        """Where the first fact from ``start`` on that matches is, as :meth:`wait`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = start
            while True:
                for at in range(seen, len(self.facts)):
                    if match(self.facts[at]):
                        return at
                seen = max(seen, len(self.facts))
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return None
                self._cond.wait(remaining)

    def close_wait(self, timeout: float) -> None:
        self._thread.join(timeout)


class WardenRun:
    """``python -m warden run ARGV`` in a session of its own; its log and its program's.

    Started through ``tie`` (:mod:`._tether`) when given: tied to the demo, so that it is
    stopped, and the demo's directories removed, even if the demo is killed.
    """

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        logs: Path,
        control: Path,
        tie: Tie | None = None,
    ):
        self.argv = [sys.executable, "-m", "warden", "run", *argv]
        self.control_path = control
        self.env = dict(env)
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv if tie is None else tie.wrap(self.argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
            start_new_session=True,  # a ^C at the demo's terminal is the demo's to handle
            pass_fds=() if tie is None else tie.fds,
        )
        if tie is not None:
            tie.launched()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.pid = self.proc.pid
        self.log = FactStream(self.proc.stderr, logs / "warden.log")
        self.service = FactStream(self.proc.stdout, logs / "service.log")

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def control(self, command: str, timeout: float = 60.0) -> tuple[int, Fact]:
        """Run ``warden COMMAND --json`` against this warden: its exit code and its reply."""
        args = [sys.executable, "-m", "warden", command, "--control", str(self.control_path)]
        args.append("--json")
        if command in ("upgrade", "reload"):
            args += ["--timeout", f"{timeout:g}s"]
        try:
            done = subprocess.run(
                args, capture_output=True, env=self.env, timeout=timeout + 10, check=False
            )
        except subprocess.TimeoutExpired:
            return 124, {"error": f"warden {command} did not answer within {timeout + 10:g}s"}
        try:
            reply = json.loads(done.stdout)
        except ValueError:
            reply = {"error": done.stderr.decode(errors="replace").strip()}
        return done.returncode, reply if isinstance(reply, dict) else {"reply": reply}

    def send(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    def wait(self, timeout: float) -> int | None:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self.log.close_wait(5)
        self.service.close_wait(5)
        return code

    def end(self, hurry: threading.Event | None = None) -> None:
        """Whatever state it is in: stopped (SIGTERM, then SIGKILL to it and everything it
        started after :data:`END_WAIT`, or at once when ``hurry`` is set: a second ^C),
        reaped, its pipes read to the end."""
        if self.running:
            self.send(signal.SIGTERM)
            hurry = hurry or threading.Event()
            deadline = time.monotonic() + END_WAIT
            while self.running and not hurry.is_set() and time.monotonic() < deadline:
                hurry.wait(0.05)  # warden's stop, or the user's second signal
            if self.running:
                for pid in [self.pid, *descendants(self.pid)]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close_wait(5)
        self.service.close_wait(5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` now, from /proc's parent links."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def clean_environment(environ: Mapping[str, str], runtime: Path) -> dict[str, str]:
    """The demo's warden's environment: none of the user's ``WARDEN_*`` settings, no systemd
    or socket activation above it (it is not a service of theirs), its runtime directory
    (notify sockets) of its own, and unbuffered Python output."""
    inherited = {
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
        "LISTEN_FDS",
        "LISTEN_PID",
        "LISTEN_FDNAMES",
        "JOURNAL_STREAM",
        "MEMORY_PRESSURE_WATCH",
        "MEMORY_PRESSURE_WRITE",
    }
    env = {
        key: value
        for key, value in environ.items()
        if not key.startswith("WARDEN_") and key not in inherited
    }
    env["XDG_RUNTIME_DIR"] = str(runtime)
    env["PYTHONUNBUFFERED"] = "1"
    return env
