"""Zero-downtime upgrade benchmark (issue 5): failed requests while the server is replaced.

    python bench/bench_upgrade.py                 # about 10 minutes; writes docs/benchmarks.md
    python bench/bench_upgrade.py --quick         # smoke run: 3 upgrades, prints only
    python bench/bench_upgrade.py --only gunicorn-hup,uvicorn-hup --logs /tmp/logs

Needs wrk (``apt-get install wrk``), gunicorn, uvicorn and supervisor
(``pip install -e '.[bench]'``).

A load generator (wrk, closed loop, the same settings for every configuration) runs at
saturation on loopback, once with keep-alive and once with ``Connection: close`` (a new
connection per request), against each configuration:

- warden holding the socket (``warden run --listen --ready notify --control SOCK
  --drain-timeout 10s``) in front of gunicorn (LISTEN_FDS, READY=1 of its own), uvicorn
  (``--fd 3``; the app sends READY=1) and the bundled ``examples/http_service.py``; one upgrade
  is ``warden upgrade --control SOCK --json``. warden + uvicorn is also upgraded by SIGHUP,
  and run with warden's protocol (``--http warden.integrations.uvicorn:H11Protocol``).
- the peers' own mechanisms: gunicorn SIGHUP; gunicorn SIGUSR2 then SIGTERM to the old master;
  ``uvicorn --workers 2`` and SIGHUP; ``supervisorctl restart`` of a uvicorn under supervisord.

Per configuration and connection mode: a fresh server on a fresh port, a warm-up, a steady
window, then one wrk window covering N upgrades done back to back (each finished before the
next starts); wrk is stopped with SIGINT right after the last one and prints its summary.

Every process started is killed by pid at the end of its run (descendants listed from /proc);
this process is a child subreaper, so orphans (gunicorn's re-executed master) come back to it
and are reaped here.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import json
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from _doc import DOC, markers, write_section
from _machine import machine, versions
from _net import answers, free_port
from _procs import children, descendants

from warden.cli import _control as control

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
APPS = BENCH / "apps"
EXAMPLE = ROOT / "examples" / "http_service.py"
PEERS = ("gunicorn", "uvicorn", "h11", "supervisor", "warden")
WRK = shutil.which("wrk") or "/usr/bin/wrk"
PY = sys.executable

#: The same wrk settings for every configuration: 1 thread, 32 connections, each sending its
#: next request the moment the answer arrives (closed loop), so the server never waits for work.
WRK_THREADS = 1
WRK_CONNECTIONS = 32
WRK_TIMEOUT = "5s"
MODES = ("keep-alive", "close")

START_TIMEOUT = 30.0
UPGRADE_TIMEOUT = 60.0
POLL = 0.005  #: /proc polling for the peers' upgrades
STATUS_POLL = 0.02  #: warden status polling for the SIGHUP-triggered upgrade
DRAIN_TIMEOUT = "10s"


# -- processes --------------------------------------------------------------------------------


def become_subreaper() -> None:
    """PR_SET_CHILD_SUBREAPER: orphans of our descendants are re-parented to us, not to init."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def state(pid: int) -> str:
    """The process state letter from /proc (``Z`` for a zombie), or ``""`` when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[0]


def alive(pid: int) -> bool:
    return state(pid) not in ("", "Z", "X")


def live_children(pid: int) -> set[int]:
    return {child for child in children(pid) if alive(child)}


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def spawned_workers(pid: int) -> set[int]:
    """The multiprocessing-spawned children of ``pid`` (not its resource tracker)."""
    return {child for child in live_children(pid) if "spawn_main" in cmdline(child)}


def signal_pid(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def reap_adopted() -> list[int]:
    """SIGKILL and reap whatever child this process still has (orphans it adopted)."""
    found = children(os.getpid())
    for pid in found:
        for each in [*descendants(pid), pid]:
            signal_pid(each, signal.SIGKILL)
    for pid in found:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    return found


def wait_for(condition: Callable[[], bool], what: str, timeout: float, step: float = POLL) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(step)


def new_connection_per_request(port: int, close: bool) -> bool:
    """Whether the server closes the connection after answering one ``GET /``.

    With ``close``, the request carries ``Connection: close`` as wrk's does in that mode.
    """
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    request += b"Connection: close\r\n\r\n" if close else b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
        conn.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return True
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        want = int(length.group(1)) if length else 0
        while len(body) < want:
            chunk = conn.recv(65536)
            if not chunk:
                return True
            body += chunk
        conn.settimeout(0.5)
        try:
            return conn.recv(1) == b""  # EOF: the server closed it
        except TimeoutError:
            return False  # still open: the connection is reused
        except ConnectionResetError:
            return True


# -- wrk --------------------------------------------------------------------------------------


@dataclass
class Wrk:
    """wrk's summary; latencies in seconds (None: wrk recorded none)."""

    requests: int = 0
    seconds: float = 0.0
    p50: float | None = None
    p99: float | None = None
    connect: int = 0
    read: int = 0
    write: int = 0
    timeout: int = 0
    non2xx: int = 0

    @property
    def failed(self) -> int:
        return self.connect + self.read + self.write + self.timeout + self.non2xx

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_wrk(text: str) -> Wrk:
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h),", text)
    if done is None:
        raise RuntimeError(f"no summary in wrk's output:\n{text}")
    result = Wrk(int(done.group(1)), float(done.group(2)) * _UNITS[done.group(3)])
    for q, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M):
        setattr(result, f"p{q}", float(value) * _UNITS[unit])
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    if errors is not None:
        result.connect, result.read, result.write, result.timeout = map(int, errors.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non2xx is not None:
        result.non2xx = int(non2xx.group(1))
    if result.requests == 0:
        result.p50 = result.p99 = None
    return result


def wrk_argv(port: int, mode: str, seconds: float) -> list[str]:
    argv = [WRK, f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds:g}s"]
    argv += ["--timeout", WRK_TIMEOUT, "--latency"]
    if mode == "close":
        argv += ["-H", "Connection: close"]
    return [*argv, f"http://127.0.0.1:{port or 'PORT'}/"]


def wrk_for(port: int, mode: str, seconds: float) -> Wrk:
    out = subprocess.run(
        wrk_argv(port, mode, seconds),
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    )
    return parse_wrk(out.stdout)


class Load:
    """wrk with a long ``-d``, stopped by SIGINT (on which it prints its summary)."""

    def __init__(self, port: int, mode: str) -> None:
        self.proc = subprocess.Popen(
            wrk_argv(port, mode, 24 * 3600),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def stop(self) -> Wrk:
        signal_pid(self.proc.pid, signal.SIGINT)
        out, _ = self.proc.communicate(timeout=30)
        return parse_wrk(out)

    def close(self) -> None:
        if self.proc.poll() is None:
            signal_pid(self.proc.pid, signal.SIGKILL)
            self.proc.communicate()


# -- configurations -----------------------------------------------------------------------------


@dataclass
class Upgrade:
    """One upgrade: ``duration`` as the configuration defines it; ``wall`` as timed here."""

    duration: float
    wall: float
    reported: float | None = None  #: warden's own ``duration`` of the upgrade
    ready_after: float | None = None  #: warden's report: new child started -> ready


class UpgradeFailed(Exception):
    pass


class Target:
    """A server and its upgrade mechanism; ``start`` once, then ``upgrade`` N times."""

    name: ClassVar[str]
    label: ClassVar[str]
    done_when: ClassVar[str]  #: what one upgrade is and when it counts as done (for the doc)

    def __init__(self, port: int, work: Path) -> None:
        self.port, self.work = port, work
        #: UNIX sockets go here: a short path, whatever ``--logs`` is (sun_path holds 107 bytes)
        self.sockets = Path(tempfile.mkdtemp(prefix="wbu-", dir="/tmp"))
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.adopted: set[int] = set()  #: pids of ours that are not Popen objects
        self.env = {**os.environ, "HOME": str(work), "PYTHONUNBUFFERED": "1"}
        for name in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
            self.env.pop(name, None)

    def spawn(self, argv: list[str], log: str) -> subprocess.Popen[bytes]:
        with open(self.work / log, "ab") as out:
            out.write(f"$ {shlex.join(argv)}\n".encode())
            out.flush()
            proc = subprocess.Popen(
                argv,
                env=self.env,
                cwd=self.work,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.procs[proc.pid] = proc
        return proc

    def exited(self, pid: int) -> bool:
        """True once ``pid`` has exited; reaps it if it is ours."""
        proc = self.procs.get(pid)
        if proc is not None:
            return proc.poll() is not None
        if alive(pid):
            return False
        if pid in self.adopted:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            self.adopted.discard(pid)
        return True

    def start(self) -> None:
        raise NotImplementedError

    def upgrade(self) -> Upgrade:
        raise NotImplementedError

    def wait_serving(self, proc: subprocess.Popen[bytes]) -> None:
        """Until ``GET /`` answers 200; fails at once if ``proc`` exits meanwhile."""

        def serving() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {proc.returncode} before it served; "
                    f"see {self.work}/*.log (--logs DIR keeps them)"
                )
            return answers(self.port)

        wait_for(serving, f"{self.name} on port {self.port}", START_TIMEOUT, 0.02)

    def run_upgrade_command(
        self, argv: list[str]
    ) -> tuple[subprocess.CompletedProcess[str], float]:
        """Run ``argv``; its result and its run time."""
        began = time.monotonic()
        try:
            out = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=UPGRADE_TIMEOUT,
                env=self.env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise UpgradeFailed(
                f"{' '.join(argv[2:4])} did not return in {UPGRADE_TIMEOUT:g}s"
            ) from None
        return out, time.monotonic() - began

    def close(self) -> None:
        """SIGTERM to each top process, 15 s to exit, then SIGKILL to every descendant."""
        tops = [pid for pid in [*self.procs, *self.adopted] if not self.exited(pid)]
        tree = {each for pid in tops for each in [pid, *descendants(pid)]}
        for pid in tops:
            signal_pid(pid, signal.SIGTERM)
        with contextlib.suppress(RuntimeError):
            wait_for(lambda: all(self.exited(pid) for pid in tops), "exit", 15, 0.02)
        for each in tree | {each for top in tops for each in descendants(top)}:
            if alive(each):
                signal_pid(each, signal.SIGKILL)
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        shutil.rmtree(self.sockets, ignore_errors=True)


def warden_argv(port: int, control: Path, command: list[str]) -> list[str]:
    return [
        *(PY, "-m", "warden", "run", "--listen", f"tcp://127.0.0.1:{port}"),
        *("--ready", "notify", "--control", str(control), "--drain-timeout", DRAIN_TIMEOUT),
        "--",
        *command,
    ]


def gunicorn_command(*extra: str) -> list[str]:
    return [
        *(PY, "-m", "gunicorn", "-w", "2", "--chdir", str(APPS), "--no-control-socket"),
        *("--log-level", "info", *extra, "upgrade_wsgi:app"),
    ]


def uvicorn_command(*extra: str) -> list[str]:
    return [
        *(PY, "-m", "uvicorn", "--app-dir", str(APPS), "--no-access-log", "--log-level", "info"),
        *(*extra, "upgrade_asgi:app"),
    ]


class WardenTarget(Target):
    """``warden run`` holding the socket; an upgrade is ``warden upgrade --json``."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self.control = self.sockets / "warden.ctl"
        argv = warden_argv(self.port, self.control, self.command())
        self.warden = self.spawn(argv, "server.log")
        self.wait_serving(self.warden)

    def upgrade(self) -> Upgrade:
        argv = [PY, "-m", "warden", "upgrade", "--control", str(self.control), "--json"]
        out, wall = self.run_upgrade_command(argv)
        try:
            reply = json.loads(out.stdout)
        except json.JSONDecodeError:
            reply = {}
        report = reply.get("upgrade") or {}
        if out.returncode != 0 or not reply.get("ok") or report.get("result") != "ok":
            raise UpgradeFailed(f"exit {out.returncode}: {out.stdout.strip()} {out.stderr.strip()}")
        duration = float(report["duration"])
        return Upgrade(duration, wall, duration, report.get("ready_after"))


class WardenGunicorn(WardenTarget):
    name = "warden-gunicorn"
    label = "warden + gunicorn (`warden upgrade`)"
    done_when = (
        "`warden upgrade --control SOCK --json`; duration: warden's own `duration` "
        "(trigger → new child ready, old child gone)"
    )

    def command(self) -> list[str]:
        return gunicorn_command()


class WardenUvicorn(WardenTarget):
    name = "warden-uvicorn"
    label = "warden + uvicorn (`warden upgrade`)"
    done_when = WardenGunicorn.done_when

    def command(self) -> list[str]:
        return uvicorn_command("--fd", "3")


class WardenUvicornGraceful(WardenTarget):
    name = "warden-uvicorn-graceful"
    label = "warden + uvicorn with `--http warden.integrations.uvicorn:H11Protocol`"
    done_when = WardenGunicorn.done_when

    def command(self) -> list[str]:
        return uvicorn_command("--fd", "3", "--http", "warden.integrations.uvicorn:H11Protocol")


class WardenExample(WardenTarget):
    name = "warden-example"
    label = "warden + examples/http_service.py (`warden upgrade`)"
    done_when = WardenGunicorn.done_when

    def command(self) -> list[str]:
        return [PY, str(EXAMPLE), "--data", str(self.work / "jobs.json")]


class WardenUvicornHup(WardenTarget):
    """SIGHUP to warden (``--on-hup upgrade``, the default); done when status counts it."""

    name = "warden-uvicorn-hup"
    label = "warden + uvicorn (SIGHUP to warden)"
    done_when = (
        "SIGHUP to warden; done when `status.upgrade.ok` of the control socket's status "
        f"reply has risen (polled every {STATUS_POLL * 1000:g} ms)"
    )

    def command(self) -> list[str]:
        return uvicorn_command("--fd", "3")

    def upgrades(self) -> dict[str, Any]:
        # warden's own client for its control socket (what `warden status --json` sends).
        reply = control.request(str(self.control), {"command": "status"}, timeout=5)
        status: dict[str, Any] = reply["status"]  # type: ignore[assignment]
        return dict(status["upgrade"])

    def upgrade(self) -> Upgrade:
        before = self.upgrades()
        ok, failed = int(before["ok"]), int(before.get("failed", 0))
        began = time.monotonic()
        signal_pid(self.warden.pid, signal.SIGHUP)
        deadline = began + UPGRADE_TIMEOUT
        while True:
            now = self.upgrades()
            now_ok, now_failed = int(now["ok"]), int(now.get("failed", 0))
            if now_ok > ok:
                wall = time.monotonic() - began
                last = now.get("last") or {}
                return Upgrade(wall, wall, last.get("duration"), last.get("ready_after"))
            if now_failed > failed:
                raise UpgradeFailed("warden counted a failed upgrade")
            if time.monotonic() > deadline:
                raise UpgradeFailed(f"not done after {UPGRADE_TIMEOUT:g}s")
            time.sleep(STATUS_POLL)


class GunicornHup(Target):
    name = "gunicorn-hup"
    label = "gunicorn SIGHUP"
    done_when = (
        "SIGHUP to the master; done when every worker of before has exited and 2 new ones exist"
    )

    def start(self) -> None:
        self.pidfile = self.work / "gunicorn.pid"
        argv = gunicorn_command("-b", f"127.0.0.1:{self.port}", "--pid", str(self.pidfile))
        proc = self.spawn(argv, "server.log")
        self.master = proc.pid
        self.wait_serving(proc)
        wait_for(lambda: len(live_children(self.master)) == 2, "2 workers", START_TIMEOUT)

    def upgrade(self) -> Upgrade:
        old = live_children(self.master)
        began = time.monotonic()
        signal_pid(self.master, signal.SIGHUP)

        def done() -> bool:
            now = live_children(self.master)
            return not now & old and len(now) >= 2

        wait_upgrade(done)
        wall = time.monotonic() - began
        return Upgrade(wall, wall)


def wait_upgrade(done: Callable[[], bool]) -> None:
    try:
        wait_for(done, "the upgrade", UPGRADE_TIMEOUT)
    except RuntimeError as exc:
        raise UpgradeFailed(str(exc)) from None


class GunicornUsr2(GunicornHup):
    """USR2: the master re-executes itself (its child); then TERM to the old master.

    gunicorn 27: the new master writes ``PIDFILE.2`` and runs as ``Master.2`` until it sees
    its parent gone; then it renames ``PIDFILE.2`` to ``PIDFILE`` and accepts USR2 again
    ("USR2 signal ignored. Parent exists." before that). The new master is the old one's
    child: when the old one exits it is orphaned, re-parented to this (subreaper) process.
    """

    name = "gunicorn-usr2"
    label = "gunicorn SIGUSR2 + SIGTERM to the old master"
    done_when = (
        "SIGUSR2 to the master; once the new master (`PIDFILE.2`) has 2 workers, SIGTERM to "
        "the old master; done when the old master has exited and the new one has promoted "
        "itself (`PIDFILE` holds its pid; it accepts the next SIGUSR2 only then)"
    )

    def read_pid(self, path: Path) -> int | None:
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            return None

    def upgrade(self) -> Upgrade:
        old = self.master
        second = self.pidfile.with_name(self.pidfile.name + ".2")
        began = time.monotonic()
        signal_pid(old, signal.SIGUSR2)
        wait_upgrade(lambda: (pid := self.read_pid(second)) is not None and alive(pid))
        new = self.read_pid(second)
        assert new is not None
        self.adopted.add(new)  # ours once the old master exits
        wait_upgrade(lambda: len(live_children(new)) >= 2)
        signal_pid(old, signal.SIGTERM)
        wait_upgrade(lambda: self.exited(old) and self.read_pid(self.pidfile) == new)
        self.master = new
        wall = time.monotonic() - began
        return Upgrade(wall, wall)


class UvicornHup(Target):
    name = "uvicorn-hup"
    label = "uvicorn `--workers 2` SIGHUP"
    done_when = (
        "SIGHUP to the parent; done when both workers of before have exited and 2 new ones "
        "exist (uvicorn replaces them one at a time, each new one first answering its "
        "parent's health check as started)"
    )

    def start(self) -> None:
        argv = uvicorn_command("--host", "127.0.0.1", "--port", str(self.port), "--workers", "2")
        proc = self.spawn(argv, "server.log")
        self.parent = proc.pid
        self.wait_serving(proc)
        wait_for(lambda: len(spawned_workers(self.parent)) == 2, "2 workers", START_TIMEOUT)

    def upgrade(self) -> Upgrade:
        old = spawned_workers(self.parent)
        began = time.monotonic()
        signal_pid(self.parent, signal.SIGHUP)

        def done() -> bool:
            now = spawned_workers(self.parent)
            return not now & old and len(now) >= 2

        wait_upgrade(done)
        wall = time.monotonic() - began
        return Upgrade(wall, wall)


SUPERVISORD_CONF = """\
[unix_http_server]
file={sockets}/supervisor.sock

[supervisord]
nodaemon=true
logfile={work}/supervisord.log
pidfile={work}/supervisord.pid
childlogdir={work}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{sockets}/supervisor.sock

[program:app]
command={command}
directory={work}
autostart=true
autorestart=false
startsecs=0
stopsignal=TERM
stopwaitsecs=10
stopasgroup=true
killasgroup=true
stdout_logfile={work}/server.log
redirect_stderr=true
"""


class Supervisord(Target):
    name = "supervisord"
    label = "supervisord + uvicorn (`supervisorctl restart`)"
    done_when = (
        "`supervisorctl restart app` (`startsecs=0`); done when it has returned and the port "
        "answers `GET /` with 200 again"
    )

    def start(self) -> None:
        command = uvicorn_command("--host", "127.0.0.1", "--port", str(self.port))
        self.conf = self.work / "supervisord.conf"
        self.conf.write_text(
            SUPERVISORD_CONF.format(
                work=self.work, sockets=self.sockets, command=shlex.join(command)
            )
        )
        argv = [PY, "-m", "supervisor.supervisord", "-n", "-c", str(self.conf)]
        self.wait_serving(self.spawn(argv, "supervisord.out"))

    def upgrade(self) -> Upgrade:
        argv = [PY, "-m", "supervisor.supervisorctl", "-c", str(self.conf), "restart", "app"]
        began = time.monotonic()
        out, _ = self.run_upgrade_command(argv)
        if out.returncode != 0 or "app: started" not in out.stdout:
            raise UpgradeFailed(f"exit {out.returncode}: {out.stdout.strip()} {out.stderr.strip()}")
        wait_upgrade(lambda: answers(self.port))
        wall = time.monotonic() - began
        return Upgrade(wall, wall)


TARGETS: tuple[type[Target], ...] = (
    WardenGunicorn,
    WardenUvicorn,
    WardenExample,
    WardenUvicornHup,
    WardenUvicornGraceful,
    GunicornHup,
    GunicornUsr2,
    UvicornHup,
    Supervisord,
)


# -- one run ------------------------------------------------------------------------------------


@dataclass
class Run:
    target: type[Target]
    mode: str
    planned: int
    upgrades: list[Upgrade] = field(default_factory=list)
    steady: Wrk | None = None
    during: Wrk | None = None
    new_connections: bool | None = None  #: the server closes after every response
    error: str | None = None


def one_run(
    cls: type[Target], mode: str, upgrades: int, steady: float, warmup: float, logs: Path
) -> Run:
    run = Run(cls, mode, upgrades)
    work = Path(tempfile.mkdtemp(prefix=f"{cls.name}-{mode}-", dir=logs))
    target = cls(free_port(), work)
    load: Load | None = None
    try:
        target.start()
        run.new_connections = new_connection_per_request(target.port, mode == "close")
        wrk_for(target.port, mode, warmup)
        run.steady = wrk_for(target.port, mode, steady)
        load = Load(target.port, mode)
        time.sleep(0.2)  # wrk's connections are up
        for n in range(upgrades):
            try:
                run.upgrades.append(target.upgrade())
            except UpgradeFailed as exc:
                run.error = f"upgrade {n + 1}: {exc}"
                break
        run.during = load.stop()
    except Exception as exc:
        run.error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    finally:
        if load is not None:
            load.close()
        target.close()
        leftovers = reap_adopted()
        if leftovers:
            print(f"  reaped leftover processes {leftovers}", file=sys.stderr)
    return run


# -- report -------------------------------------------------------------------------------------


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    value = seconds * 1000
    return f"{value:.3g} ms" if value < 10 else f"{value:,.0f} ms"


def secs(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def row(run: Run) -> str:
    steady, during = run.steady, run.during
    conn = {None: "?", True: "new per request", False: "reused"}[run.new_connections]
    cells = [run.target.label, f"{run.mode} ({conn})", f"{len(run.upgrades)}/{run.planned}"]
    if during is None:
        cells += ["—"] * 8
    else:
        cells += [
            f"{during.requests:,}",
            f"**{during.failed:,}**",
            " / ".join(
                f"{n:,}"
                for n in (during.connect, during.read, during.write, during.timeout, during.non2xx)
            ),
        ]
        cells.append(f"{ms(steady.p50)} / {ms(steady.p99)}" if steady else "—")
        cells.append(f"{ms(during.p50)} / {ms(during.p99)}")
        cells.append(f"{steady.rps:,.0f} / {during.rps:,.0f}" if steady else "—")
        durations = [u.duration for u in run.upgrades]
        cells.append(
            f"{secs(statistics.median(durations))} / {secs(max(durations))}" if durations else "—"
        )
        cells.append(f"{steady.failed:,}" if steady else "—")
    return "| " + " | ".join(cells) + " |"


def table(runs: Sequence[Run]) -> list[str]:
    lines = [
        "| configuration | connections | upgrades | requests during | failed | "
        "connect / read / write (refused) / timeout / non-2xx | steady p50 / p99 | "
        "during upgrades p50 / p99 | req/s steady / during | upgrade p50 / max | "
        "failed in steady window |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [row(run) for run in runs]
    return lines


def warden_timings(runs: Sequence[Run]) -> list[str]:
    lines = [
        "| configuration | connections | warden's `duration` p50 / max | "
        "`ready_after` p50 / max | timed here, p50 / max |",
        "|---|---|---|---|---|",
    ]
    for run in runs:
        if not issubclass(run.target, WardenTarget) or not run.upgrades:
            continue
        d = [u.reported for u in run.upgrades if u.reported is not None]
        r = [u.ready_after for u in run.upgrades if u.ready_after is not None]
        w = [u.wall for u in run.upgrades]
        lines.append(
            f"| {run.target.label} | {run.mode} | {spread(d)} | {spread(r)} | {spread(w)} |"
        )
    return lines


def spread(values: Sequence[float]) -> str:
    return f"{secs(statistics.median(values))} / {secs(max(values))}" if values else "—"


def readings(runs: Sequence[Run]) -> list[str]:
    found = []
    warden = [run for run in runs if issubclass(run.target, WardenTarget)]
    complete = [run for run in warden if run.during and len(run.upgrades) == run.planned]
    if warden:
        failed = sum(run.during.failed for run in complete if run.during)
        goal = "met" if failed == 0 and len(complete) == len(warden) else "not met"
        found.append(
            f"warden: {failed:,} failed requests over {len(complete)} of {len(warden)} "
            f"configuration-and-mode runs completed (goal: zero in every one — {goal})"
        )
    clean = [
        f"{run.target.label}, {run.mode}"
        for run in runs
        if run.during is not None and run.during.failed == 0 and not run.error
    ]
    if clean:
        found.append("zero failed in: " + "; ".join(clean))
    for run in runs:
        if run.error:
            found.append(f"{run.target.label}, {run.mode}: stopped early — {run.error}")
        elif run.during is not None and run.during.failed:
            w = run.during
            kinds = [
                f"{n:,} {kind}"
                for n, kind in (
                    (w.connect, "connect"),
                    (w.read, "read"),
                    (w.write, "write"),
                    (w.timeout, "timeout"),
                    (w.non2xx, "non-2xx"),
                )
                if n
            ]
            per = w.failed / max(1, len(run.upgrades))
            found.append(
                f"{run.target.label}, {run.mode}: {w.failed:,} failed ({', '.join(kinds)}; "
                f"{per:,.1f} per upgrade)"
            )
    return found


def report(
    runs: Sequence[Run],
    *,
    command: str,
    started: datetime.datetime,
    elapsed: float,
    upgrades: int,
    steady: float,
    warmup: float,
    loadavg: tuple[float, float],
) -> str:
    seen: dict[str, str] = {}
    for run in runs:
        seen.setdefault(run.target.label, run.target.done_when)
    lines = [
        "## Zero-downtime upgrade under load (issue 5)",
        "",
        f"`{command}` — {started:%Y-%m-%d %H:%M} UTC, {elapsed / 60:.1f} min; {machine()}; "
        f"{versions(PEERS, WRK)}; 1-min load average before / after the run: "
        f"{loadavg[0]:.2f} / {loadavg[1]:.2f}.",
        "",
        f"Load: `{shlex.join(['wrk', *wrk_argv(0, 'keep-alive', steady)[1:]])}` "
        f"(closed loop: each of the {WRK_CONNECTIONS} connections sends its next request the "
        "moment the answer arrives, so the server never waits for work), the same for every "
        "configuration; the `close` mode adds `-H 'Connection: close'`, and the server then "
        "closes after every answer, so wrk opens a new connection per request (checked per run "
        "with one probe request: the connections column). Each run: a fresh server on a fresh "
        f"port, a {warmup:g} s warm-up, a {steady:g} s steady window, then one wrk window "
        f"(`-d` long, stopped by SIGINT) covering {upgrades} upgrades back to back, each done "
        "before the next starts (wrk starts 0.2 s before the first). Failed = wrk's socket "
        "errors + non-2xx answers. read: the connection was reset or closed without an "
        "answer; timeout: no answer within "
        f"{WRK_TIMEOUT}; write: on loopback this is where refusals land — wrk's connect is "
        "non-blocking, so a refused connection fails its first `write()` with ECONNREFUSED "
        "(checked with strace) and wrk 4.1 counts a write error, never a connect error. wrk "
        "re-dials at once after an error, so a closed port counts one error per attempt, not "
        "per user request.",
        "",
        "Servers: gunicorn `-w 2` (sync workers; they close every connection, so gunicorn "
        "gets a new connection per request in both modes), uvicorn (h11, asyncio; one worker "
        "under warden and supervisord, `--workers 2` on its own), the app of "
        "`bench/apps/upgrade_wsgi.py` / `upgrade_asgi.py` (200 `hello`), and the bundled "
        "`examples/http_service.py` (`GET /`). warden: `warden run --listen "
        "tcp://127.0.0.1:PORT --ready notify --control SOCK --drain-timeout "
        f"{DRAIN_TIMEOUT} -- SERVER`; gunicorn sends READY=1 itself, the uvicorn app sends it "
        "from its lifespan startup, the example through the library.",
        "",
        "One upgrade, and when it counts as done (its duration):",
        "",
        *(f"- {label}: {text}." for label, text in seen.items()),
        "",
        *table(runs),
        "",
        "Latency columns are wrk's percentiles over each window; the during-upgrades window "
        "spans all upgrades and the time between them. Upgrade p50 / max: as defined above.",
        "",
    ]
    timings = warden_timings(runs)
    if len(timings) > 2:
        lines += [
            "warden's own report per upgrade (the `--json` reply of `warden upgrade`; for "
            "SIGHUP, `status.upgrade.last`): `duration` from the request to the old child "
            "gone, `ready_after` from the new child's start to its READY=1. Timed here: the "
            "`warden upgrade` command's run time (it adds the client's interpreter start), or "
            f"SIGHUP → the status poll that saw the count rise (every {STATUS_POLL * 1000:g} ms).",
            "",
            *timings,
            "",
        ]
    lines += notes(runs)
    lines += ["Reading: " + "; ".join(readings(runs)) + ".", ""]
    return "\n".join(lines)


def _failed(runs: Sequence[Run], targets: Sequence[type[Target]], kind: str) -> bool:
    return any(
        run.during is not None and getattr(run.during, kind) > 0
        for run in runs
        if run.target in targets
    )


def notes(runs: Sequence[Run]) -> list[str]:
    """What the failures are, for the causes known from the peers' source and from strace."""
    found = []
    ran = {run.target for run in runs}
    if GunicornUsr2 in ran:
        found.append(
            "The USR2 row's new master is the old master's child: when the old master exits, "
            "the new one is orphaned and re-parented to the nearest subreaper or to PID 1 "
            "(here this benchmark, which registers as subreaper to reap it). Under a "
            "supervisor that watches the pid it started (supervisord, systemd without "
            '`PIDFile=`), the service is then seen as exited — the known "USR2 breaks under '
            'supervisors" problem.'
        )
    uvicorns = (WardenUvicorn, WardenUvicornHup, UvicornHup, Supervisord)
    if _failed(runs, uvicorns, "read"):
        found.append(
            "uvicorn's read errors come from its own graceful shutdown (uvicorn 0.54 "
            "`Server.shutdown`): after closing its listener it calls `shutdown()` on every "
            "connection, and `H11Protocol.shutdown` closes at once each one with no request "
            "being handled (`cycle is None or cycle.response_complete`) — a keep-alive "
            "connection whose next request is already on its way, or a new connection whose "
            "request it has not parsed yet, is closed without an answer. Under warden the "
            "same happens in the old child once warden sends it SIGTERM; the listening "
            "socket itself stays open throughout (no refusals)."
        )
        graceful = [run for run in runs if run.target is WardenUvicornGraceful and run.during]
        if graceful and not _failed(runs, (WardenUvicornGraceful,), "read"):
            found.append(
                "The same uvicorn with `--http warden.integrations.uvicorn:H11Protocol` had none: "
                "its shutdown lets each connection end after its next response, which says "
                "`Connection: close`, and closes only a connection silent for 2 s."
            )
    slow = [
        run
        for run in runs
        if run.target is UvicornHup
        and run.mode == "keep-alive"
        and run.steady is not None
        and (run.steady.p50 or 0) > 0.02
    ]
    if slow:
        found.append(
            "`uvicorn --workers 2` with keep-alive answers in ~40 ms (Nagle): its parent binds "
            "`socket.socket(family=AF_INET)`, whose `proto` is 0, and asyncio sets TCP_NODELAY "
            "on accepted connections only when the listener's `proto == IPPROTO_TCP`; each "
            "response, written in two sends, then waits for the client's delayed ACK."
        )
    if _failed(runs, (WardenExample,), "read"):
        found.append(
            "`examples/http_service.py`'s read errors, traced with strace while this benchmark "
            "was written (both modes): after SIGTERM the old child keeps its listener open "
            "until its `http` component stops a few ms later, answering meanwhile with "
            "`Connection: close`; wrk re-dials at once (with keep-alive, all 32 connections "
            "within a millisecond), and the old child's last accept batch, taken from the "
            "shared backlog just before `server.close()`, is never read: those connections "
            "are closed when it exits."
        )
    if Supervisord in ran:
        found.append(
            "`supervisorctl restart` stops the program, whose listening socket closes with "
            "it, and then starts a new one: every connection attempt in between is refused."
        )
    return [line for text in found for line in (text, "")]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smoke run; prints, writes nothing")
    names = ",".join(t.name for t in TARGETS)
    parser.add_argument("--only", default=names, help=f"comma-separated subset of {names}")
    parser.add_argument("--modes", default=",".join(MODES), help="keep-alive,close or one")
    parser.add_argument("--upgrades", type=int, help="upgrades per run (default 50; quick 3)")
    parser.add_argument("--logs", type=Path, help="keep each run's server logs under this dir")
    args = parser.parse_args(argv)
    if not Path(WRK).exists():
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2
    chosen = args.only.split(",")
    unknown = set(chosen) - {t.name for t in TARGETS}
    modes = args.modes.split(",")
    if unknown or set(modes) - set(MODES):
        parser.error(f"unknown: {', '.join(sorted(unknown | (set(modes) - set(MODES))))}")
    targets = [t for t in TARGETS if t.name in chosen]
    upgrades = args.upgrades or (3 if args.quick else 50)
    steady, warmup = (2.0, 1.0) if args.quick else (5.0, 2.0)
    become_subreaper()
    load_before = os.getloadavg()[0]
    started = datetime.datetime.now(datetime.UTC)
    t0 = time.monotonic()
    runs = []
    with tempfile.TemporaryDirectory(prefix="warden-bench-upgrade-") as tmp:
        logs = args.logs or Path(tmp)
        logs.mkdir(parents=True, exist_ok=True)
        for target in targets:
            for mode in modes:
                print(f"{target.name} | {mode} ...", file=sys.stderr, flush=True)
                run = one_run(target, mode, upgrades, steady, warmup, logs)
                runs.append(run)
                print("  " + row(run), file=sys.stderr, flush=True)
                if run.error:
                    print(f"  error: {run.error}", file=sys.stderr, flush=True)
    shown = list(argv if argv is not None else sys.argv[1:])
    if "--logs" in shown:  # where the logs go changes no figure
        at = shown.index("--logs")
        del shown[at : at + 2]
    shown = [arg for arg in shown if not arg.startswith("--logs=")]
    command = shlex.join(["python", "bench/bench_upgrade.py", *shown])
    section = report(
        runs,
        command=command,
        started=started,
        elapsed=time.monotonic() - t0,
        upgrades=upgrades,
        steady=steady,
        warmup=warmup,
        loadavg=(load_before, os.getloadavg()[0]),
    )
    print(section)
    full = len(targets) == len(TARGETS) and len(modes) == len(MODES) and upgrades == 50
    if args.quick or not full:
        print("(not written to docs/benchmarks.md: a smoke run or a subset)", file=sys.stderr)
    else:
        begin, end = markers("upgrade")
        write_section("upgrade", f"{begin}\n{section}\n{end}\n")
        print(f"wrote {DOC.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
