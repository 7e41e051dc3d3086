"""Broken releases under load (issue 11): the fault matrix, in one run.

    python bench/bench_rollback.py                  # about 6 minutes; writes docs/benchmarks.md
    python bench/bench_rollback.py --only example --faults late,hang --logs /tmp/rb  # prints

Needs gunicorn, uvicorn and hypercorn (``pip install -e '.[bench]'``, plus hypercorn).

Each row is a fresh server on a fresh port serving release ``v1``, a closed-loop load of
:data:`CLIENTS` clients opening a new connection per request (``GET /``, ``Connection:
close``), and one upgrade to a release carrying one fault (the apps in ``bench/apps/
rollback_*.py`` read the release's name from a file, as a deploy rewrites the code on disk):

- ``import-error``: raises at import; ``exit0``: exits 0 at once; ``never-ready``: never
  finishes starting (hangs at import; for the ASGI app, in its lifespan startup);
- ``late``: crashes 1.5 s after it is ready (inside the window); ``err500``: answers every
  request with 500; ``hang``: stops answering 0.5 s after it is ready (blocks its event loop;
  gunicorn's sync workers block in every request);
- ``old-dies``: the new release is good, and the old one is SIGKILLed inside the window;
- ``good``: a good release (three upgrades in a row, for the upgrade time).

The servers under warden, each gated as docs/supervisor.md says (``--ready-timeout 3s
--drain-timeout 3s`` and the default ``--upgrade-confirm``), and gunicorn's own SIGHUP (no
warden) with the same broken releases. The load runs from the upgrade's trigger to
:data:`AFTER` seconds after it has finished (for gunicorn's HUP: :data:`HUP_WATCH` seconds).
Then: requests answered 200 and failed, the release answering in the last :data:`TAIL`
seconds, and whether warden (or gunicorn's master) still runs.

Every process started is killed by pid at the end of its row (descendants listed from /proc).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from _doc import DOC, markers, write_section
from _machine import machine, versions
from _net import free_port
from _procs import descendants

from warden.cli import _control as control

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
APPS = BENCH / "apps"
PY = sys.executable
PEERS = ("gunicorn", "uvicorn", "hypercorn", "warden")

FAULTS = ("import-error", "exit0", "never-ready", "late", "err500", "hang", "old-dies", "good")
BROKEN_HUP = ("import-error", "exit0", "never-ready", "late", "err500", "hang", "good")
CLIENTS = 4  #: closed-loop clients, a new connection per request
REQUEST_TIMEOUT = 3.0  #: a request unanswered this long is a failure ("timeout")
WARMUP = 0.5
AFTER = 1.5  #: load after the upgrade's reply
TAIL = 0.5  #: "version afterwards": what answered in the last TAIL seconds of the load
HUP_WATCH = 8.0  #: gunicorn's HUP has no "done": the load runs this long after it
GOOD_UPGRADES = 3
START_TIMEOUT = 30.0
WARDEN_OPTIONS = ("--ready-timeout", "3s", "--drain-timeout", "3s")
#: issue 5's figures (docs/benchmarks.md, upgrade section: warden's ``duration`` p50 in the
#: close mode, no window then): the good-release time before this issue.
BEFORE = {"gunicorn": 0.414, "uvicorn": 0.294, "example": 0.113}


# -- load ---------------------------------------------------------------------------------------


@dataclass
class Answer:
    at: float
    kind: str  #: "200", "500", ..., or "refused", "reset", "timeout", "closed", "error"
    name: str = ""  #: the release that answered (the body's first word)
    pid: str = ""  #: and the process (its second)


class Load:
    """:data:`CLIENTS` threads, each sending ``GET /`` over a new connection, back to back."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(CLIENTS)]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        request = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
        while not self._stop.is_set():
            self.answers.append(self._one(request))

    def _one(self, request: bytes) -> Answer:
        try:
            with socket.create_connection(("127.0.0.1", self.port), REQUEST_TIMEOUT) as sock:
                sock.sendall(request)
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
        except ConnectionRefusedError:
            return Answer(time.monotonic(), "refused")
        except ConnectionResetError:
            return Answer(time.monotonic(), "reset")
        except TimeoutError:
            return Answer(time.monotonic(), "timeout")
        except OSError:
            return Answer(time.monotonic(), "error")
        head, _, body = data.partition(b"\r\n\r\n")
        parts = head.split(b" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            return Answer(time.monotonic(), "closed")
        words = [w.decode() for w in body.split()[:2]] + ["", ""]
        return Answer(time.monotonic(), parts[1].decode(), words[0], words[1])

    def since(self, began: float) -> list[Answer]:
        return [a for a in list(self.answers) if a.at >= began]

    def wait(self, condition: Callable[[list[Answer]], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition(list(self.answers)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.01)  # polling the load's own record

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(REQUEST_TIMEOUT + 5)


# -- servers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    name: str
    label: str
    gate: str  #: as the doc says it
    command: Callable[[Path], list[str]]
    options: Callable[[int], list[str]]
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 1  #: v1 answers from this many pids before the upgrade (no --preload)


def _http_gate(port: int) -> list[str]:
    return ["--ready", f"http://127.0.0.1:{port}/"]


def gunicorn_command(work: Path, *extra: str) -> list[str]:
    """gunicorn ``-w 2`` (sync workers, no ``--preload``) serving the WSGI release."""
    return [
        *(PY, "-m", "gunicorn", "-w", "2", "--chdir", str(APPS), "--no-control-socket"),
        *(*extra, "rollback_wsgi:app"),
    ]


SERVERS = {
    "gunicorn": Server(
        "gunicorn",
        "gunicorn `-w 2` (sync)",
        "`--ready http://` (the probe socket)",
        gunicorn_command,
        _http_gate,
        workers=2,
    ),
    "uvicorn": Server(
        "uvicorn",
        "uvicorn `--fd 3`",
        "`--ready notify --watchdog 1s`",
        lambda work: [
            *(PY, "-m", "uvicorn", "--fd", "3", "--app-dir", str(APPS), "--no-access-log"),
            *("--http", "warden.integrations.uvicorn:H11Protocol", "rollback_asgi:app"),
        ],
        lambda port: ["--ready", "notify", "--watchdog", "1s"],
    ),
    "hypercorn": Server(
        "hypercorn",
        "hypercorn `--bind fd://3 --bind fd://4`",
        "`--ready http://` (the probe socket)",
        lambda work: [
            *(PY, "-m", "hypercorn", "--bind", "fd://3", "--bind", "fd://4"),
            "rollback_asgi:app",
        ],
        _http_gate,
        env={"ROLLBACK_MASTER": "parent", "PYTHONPATH": str(APPS)},
    ),
    "example": Server(
        "example",
        "examples/http_service.py",
        "`--ready http:// --watchdog 1s`",
        lambda work: [PY, str(APPS / "rollback_example.py"), str(work / "jobs.json")],
        lambda port: [*_http_gate(port), "--watchdog", "1s"],
    ),
}


class Processes:
    """The row's processes: spawned with a log each, killed with their descendants at close."""

    def __init__(self, work: Path, env: dict[str, str]) -> None:
        self.work = work
        self.env = env
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, argv: list[str], log: str) -> subprocess.Popen[bytes]:
        with open(self.work / log, "ab") as out:
            proc = subprocess.Popen(
                argv,
                env=self.env,
                cwd=self.work,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            tree = [proc.pid, *descendants(proc.pid)] if proc.poll() is None else []
            with contextlib.suppress(ProcessLookupError):
                if tree:
                    os.kill(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
            for pid in [*tree, *descendants(proc.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _env(work: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, "HOME": str(work), "PYTHONUNBUFFERED": "1", **extra}
    env["ROLLBACK_RELEASE"] = str(work / "release")
    for name in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC"):
        env.pop(name, None)
    return {k: v for k, v in env.items() if not k.startswith("WARDEN_")}


# -- one row ------------------------------------------------------------------------------------


@dataclass
class Row:
    server: str
    fault: str
    peer: str = "warden"  #: or "gunicorn HUP"
    result: str = ""  #: the upgrade's result (warden), or "—"
    detail: str = ""
    ok: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    afterwards: str = ""
    running: bool = False
    durations: list[float] = field(default_factory=list)  #: good rows: warden's duration
    ready_after: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def failures(self) -> int:
        return sum(self.failed.values())


def _tally(row: Row, answers: Sequence[Answer], end: float) -> None:
    row.ok = sum(1 for a in answers if a.kind == "200")
    row.failed = Counter(a.kind for a in answers if a.kind != "200")
    tail = Counter(
        (a.name if a.kind == "200" else f"{a.kind}{f' from {a.name}' if a.name else ''}")
        for a in answers
        if a.at >= end - TAIL
    )
    row.afterwards = ", ".join(name for name, _ in tail.most_common()) or "nothing"


def warden_row(server: Server, fault: str, logs: Path, window: str | None = None) -> Row:
    row = Row(server.name, fault)
    work = Path(tempfile.mkdtemp(prefix=f"{server.name}-{fault}-", dir=logs))
    (work / "release").write_text("v1")
    sockets = Path(tempfile.mkdtemp(prefix="wrb-", dir="/tmp"))  # sun_path is short
    ctl = str(sockets / "warden.ctl")
    procs = Processes(work, _env(work, server.env))
    load: Load | None = None
    port = free_port()
    argv = [
        *(PY, "-m", "warden", "run", "--listen", f"tcp://127.0.0.1:{port}", "--control", ctl),
        *server.options(port),
        *WARDEN_OPTIONS,
        *(("--upgrade-confirm", window) if window is not None else ()),
        "--",
        *server.command(work),
    ]
    try:
        warden = procs.spawn(argv, "warden.log")
        load = Load(port)
        load.wait(
            lambda answers: any(a.name == "v1" for a in answers), "v1 answering", START_TIMEOUT
        )
        if server.workers > 1:
            _wait_pids(load, server.workers)
        time.sleep(WARMUP)  # the load runs a while before the upgrade (not a synchronisation)
        began = time.monotonic()
        releases = [f"v{n + 2}" for n in range(GOOD_UPGRADES)] if fault == "good" else [fault]
        for release in releases:
            (work / "release").write_text("v2" if fault == "old-dies" else release)
            record = _upgrade(ctl, work, warden.pid, kill_old=fault == "old-dies")
            row.result, row.detail = str(record.get("result")), str(record.get("detail", ""))
            duration = record.get("duration")
            if row.result == "ok" and fault == "good" and isinstance(duration, float):
                row.durations.append(duration)
                ready = record.get("ready_after")
                if isinstance(ready, float):
                    row.ready_after.append(ready)
        time.sleep(AFTER)  # and runs on after it (not a synchronisation)
        end = time.monotonic()
        load.stop()
        _tally(row, load.since(began), end)
        row.running = warden.poll() is None
    except Exception as exc:
        row.error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    finally:
        if load is not None:
            load.stop()
        procs.close()
        shutil.rmtree(sockets, ignore_errors=True)
    return row


def _wait_pids(load: Load, count: int) -> None:
    """Until ``count`` processes of v1 have answered: every gunicorn worker has imported v1
    (no ``--preload``: a worker booting later imports whatever is deployed then)."""

    def enough(answers: list[Answer]) -> bool:
        return len({a.pid for a in answers if a.name == "v1"}) >= count

    load.wait(enough, f"{count} v1 workers answering", START_TIMEOUT)


def _program_pid(ctl: str) -> int:
    status = control.request(ctl, {"command": "status"}, 10)["status"]
    assert isinstance(status, dict)
    program = status["program"]
    assert isinstance(program, dict) and isinstance(program["pid"], int)
    return program["pid"]


def _upgrade(ctl: str, work: Path, warden: int, *, kill_old: bool) -> dict[str, object]:
    if not kill_old:
        reply = control.request(ctl, {"command": "upgrade"}, 60)
        record = reply.get("upgrade")
        return record if isinstance(record, dict) else {"result": f"refused: {reply}"}
    old = _program_pid(ctl)
    replies: list[dict[str, object]] = []
    asking = threading.Thread(
        target=lambda: replies.append(control.request(ctl, {"command": "upgrade"}, 60))
    )
    asking.start()
    log = work / "warden.log"
    deadline = time.monotonic() + START_TIMEOUT
    while '"outcome": "confirming"' not in log.read_text():
        if time.monotonic() > deadline:
            raise RuntimeError("the new release was never confirming")
        time.sleep(0.005)  # polling warden's log file
    os.kill(old, signal.SIGKILL)
    asking.join(60)
    record = replies[0].get("upgrade") if replies else None
    return record if isinstance(record, dict) else {"result": f"no reply: {replies}"}


def hup_row(fault: str, logs: Path) -> Row:
    """gunicorn's own upgrade: SIGHUP to its master, which starts new workers (importing the
    app from disk) and stops the old ones; no warden."""
    row = Row("gunicorn", fault, peer="gunicorn HUP", result="—")
    work = Path(tempfile.mkdtemp(prefix=f"hup-{fault}-", dir=logs))
    (work / "release").write_text("v1")
    procs = Processes(work, _env(work, {}))
    load: Load | None = None
    port = free_port()
    try:
        master = procs.spawn(gunicorn_command(work, "-b", f"127.0.0.1:{port}"), "gunicorn.log")
        load = Load(port)
        load.wait(
            lambda answers: any(a.name == "v1" for a in answers), "v1 answering", START_TIMEOUT
        )
        time.sleep(WARMUP)  # the load runs a while before the upgrade (not a synchronisation)
        began = time.monotonic()
        (work / "release").write_text("v2" if fault == "good" else fault)
        os.kill(master.pid, signal.SIGHUP)
        time.sleep(HUP_WATCH)  # gunicorn says nothing when it is done: the load runs this long
        end = time.monotonic()
        load.stop()
        _tally(row, load.since(began), end)
        row.running = master.poll() is None
    except Exception as exc:
        row.error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    finally:
        if load is not None:
            load.stop()
        procs.close()
    return row


# -- report -------------------------------------------------------------------------------------

#: Faults a server's gate and window cannot see (docs/supervisor.md says so): promoted as measured.
UNSEEN = {("uvicorn", "err500")}


def expected(row: Row) -> str:
    """What the goal is for a warden row: the old release keeps serving, or the new one."""
    if row.fault in ("good", "old-dies"):
        return "new"
    if (row.server, row.fault) in UNSEEN:
        return "unseen"
    return "old"


def met(row: Row) -> bool:
    goal = expected(row)
    if row.error or not row.running:
        return False
    if goal == "unseen":
        return True  # reported as measured
    if goal == "new":
        allowed = 2 * CLIENTS if row.fault == "old-dies" else 0  # SIGKILL: what it was answering
        return row.failures <= allowed and row.afterwards.split(", ")[0] != "v1"
    return row.failures == 0 and row.afterwards == "v1"


def _failed(row: Row) -> str:
    if not row.failures:
        return "**0**"
    kinds = ", ".join(f"{n:,} {kind}" for kind, n in row.failed.most_common())
    return f"**{row.failures:,}** ({kinds})"


def _short(detail: str, limit: int = 110) -> str:
    text = detail.replace("|", "/")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def matrix(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| server (gate) | fault | upgrade | requests ok | failed | answering afterwards "
        "| warden running | goal met | why (warden's words) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        server = SERVERS[row.server]
        if row.error:
            lines.append(
                f"| {server.label} ({server.gate}) | {row.fault} | error | — | — | — | — | no "
                f"| {_short(row.error)} |"
            )
            continue
        goal = {"unseen": "not seen (as documented)", "old": "", "new": ""}[expected(row)]
        lines.append(
            f"| {server.label} ({server.gate}) | {row.fault} | {row.result} | {row.ok:,} "
            f"| {_failed(row)} | {row.afterwards} | {'yes' if row.running else '**no**'} "
            f"| {goal or ('yes' if met(row) else '**no**')} | {_short(row.detail)} |"
        )
    return lines


def hup_table(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| gunicorn `-w 2` SIGHUP, no warden | requests ok | failed | answering afterwards "
        "| master running |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        if row.error:
            lines.append(f"| {row.fault} | error: {_short(row.error)} | | | |")
            continue
        lines.append(
            f"| {row.fault} | {row.ok:,} | {_failed(row)} | {row.afterwards} "
            f"| {'yes' if row.running else '**no**'} |"
        )
    return lines


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def timing_table(rows: Sequence[Row], nowindow: dict[str, Row]) -> list[str]:
    lines = [
        "| server | with the default window: `duration` p50 / max | `ready_after` p50 "
        "| `--upgrade-confirm 0`, same run: `duration` p50 / max | issue 5 (no window) p50 |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        if row.fault != "good" or not row.durations:
            continue
        zero = nowindow.get(row.server)
        zero_text = (
            f"{_ms(statistics.median(zero.durations))} / {_ms(max(zero.durations))}"
            if zero is not None and zero.durations
            else "—"
        )
        before = BEFORE.get(row.server)
        lines.append(
            f"| {SERVERS[row.server].label} | {_ms(statistics.median(row.durations))} / "
            f"{_ms(max(row.durations))} | "
            f"{_ms(statistics.median(row.ready_after)) if row.ready_after else '—'} | "
            f"{zero_text} | {_ms(before) if before else '—'} |"
        )
    return lines


def reading(rows: Sequence[Row], hup: Sequence[Row]) -> str:
    broken = [r for r in rows if expected(r) == "old"]
    good = [r for r in rows if expected(r) == "new"]
    unseen = [r for r in rows if expected(r) == "unseen"]
    missed = [r for r in [*broken, *good] if not met(r)]
    text = (
        f"Reading: {sum(met(r) for r in broken)} of {len(broken)} broken rows whose fault the "
        "gate and window can see kept the old release serving with 0 failed requests; "
        f"{sum(met(r) for r in good)} of {len(good)} rows promoting a good release (good, "
        f"old-dies) met their goal; warden still ran in {sum(r.running for r in rows)} of "
        f"{len(rows)} rows."
    )
    if missed:
        text += " Not met: " + "; ".join(
            f"{r.server} {r.fault} ({r.failures:,} failed, afterwards {r.afterwards}"
            f"{', warden gone' if not r.running else ''}{', ' + r.error if r.error else ''})"
            for r in missed
        )
        text += "."
    if unseen:
        text += " Not seen by the gate, as documented: " + "; ".join(
            f"{r.server} {r.fault} ({r.result}, {r.failures:,} failed, afterwards {r.afterwards})"
            for r in unseen
        )
        text += "."
    lost = [r for r in hup if r.fault != "good" and (r.failures or not r.running)]
    text += (
        f" gunicorn's own HUP: {len(lost)} of {sum(r.fault != 'good' for r in hup)} broken "
        "releases cost requests or the service: "
        + "; ".join(
            f"{r.fault} {r.failures:,} failed"
            f"{', master gone' if not r.running else ''}, afterwards {r.afterwards}"
            for r in lost
        )
        + "."
    )
    return text


def report(
    rows: Sequence[Row],
    hup: Sequence[Row],
    nowindow: dict[str, Row],
    command: str,
    started: datetime.datetime,
    minutes: float,
) -> str:
    begin, end = markers("rollback")
    when = started.strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        begin,
        "## Broken releases: the confirmation window and rollback (issue 11)",
        "",
        f"`{command}` — {when}, {minutes:.1f} min; {machine()}; {versions(PEERS)}.",
        "",
        f"Load: {CLIENTS} closed-loop clients in the benchmark's process, each sending `GET /` "
        "over a new connection (`Connection: close`) the moment the previous answer arrived; "
        f"a request unanswered within {REQUEST_TIMEOUT:g} s is a failure (timeout), as is a "
        "refused or reset connection and any status but 200. Counted from the upgrade's "
        f"trigger to {AFTER:g} s after its reply (gunicorn's HUP: {HUP_WATCH:g} s after the "
        f"signal); *answering afterwards*: what answered in the last {TAIL:g} s, most first.",
        "",
        "Each row: a fresh server on a fresh port serving `v1`, the load, one upgrade (`warden "
        "upgrade` on the control socket) to a release with one fault: `import-error` raises at "
        "import; `exit0` exits 0 at once (gunicorn: each worker, and the master respawns "
        "them); `never-ready` hangs at import (the ASGI app: in its lifespan startup; the "
        "example: in a component's start); `late` crashes 1.5 s after it is ready (gunicorn: "
        "its master is SIGKILLed 1.5 s after the workers import the app); `err500` answers "
        "500; `hang` stops answering 0.5 s after it is ready (the ASGI app and the example "
        "block their event loop; gunicorn's sync workers block in every request); "
        "`old-dies`: a good new release, and the old one is SIGKILLed as the window opens; "
        f"`good`: {GOOD_UPGRADES} good upgrades in a row. Apps: `bench/apps/rollback_wsgi.py`, "
        "`rollback_asgi.py` (READY=1 and WATCHDOG=1 through `warden.Notifier`), "
        "`rollback_example.py` (`examples/http_service.py` with the fault put in from "
        "outside). warden: `warden run --listen tcp://127.0.0.1:PORT GATE "
        f"{' '.join(WARDEN_OPTIONS)} -- SERVER`, the default `--upgrade-confirm` (5 s); "
        "uvicorn with `--http warden.integrations.uvicorn:H11Protocol`.",
        "",
        *matrix(rows),
        "",
        "`old-dies` costs what the SIGKILLed release was answering when it died, and what "
        "those clients' retries queued on its socket in the moment before warden steered new "
        "connections to the new release (reset when warden closes that socket): at most two "
        "per client. The uvicorn `err500` row is the documented limit of a server serving "
        "fd 3 only: nothing can probe the new release alone, so it is promoted after the "
        "window; its 500s reach clients only from then on.",
        "",
        "gunicorn's own upgrade, with the same broken releases: `gunicorn -w 2 -b "
        "127.0.0.1:PORT rollback_wsgi:app`, then SIGHUP to its master (it starts new workers, "
        "which import the app from disk, and stops the old ones).",
        "",
        *hup_table(hup),
        "",
        "A server that accepts and never answers costs one failure per client per "
        f"{REQUEST_TIMEOUT:g} s timeout: the failed count understates those outages; "
        "*answering afterwards* shows them.",
        "",
        "Good-release upgrade time: warden's own `duration` (trigger → new release confirmed "
        f"and the old one gone) and `ready_after`, over the `good` row's {GOOD_UPGRADES} "
        "upgrades; beside it the same upgrades with `--upgrade-confirm 0` in the same run, and "
        "issue 5's figure (before the window existed; the upgrade section above).",
        "",
        *timing_table(rows, nowindow),
        "",
        "The window costs its length on every good upgrade (5 s by default), and two "
        "releases' memory for that long. The default is 5 s because the faults it is there "
        "for show within a few seconds of READY=1 (a crash at start-up, a missed watchdog "
        "ping with a 1-2 s watchdog, two failed health checks), and a deploy that waits 5 s "
        "more is cheap next to an outage; `--upgrade-confirm 0` gives the old behaviour.",
        "",
        reading(rows, hup),
        "",
        end,
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(SERVERS), help="servers, comma-separated")
    parser.add_argument("--faults", default=",".join(FAULTS), help="faults, comma-separated")
    parser.add_argument("--no-hup", action="store_true", help="skip gunicorn's own HUP rows")
    parser.add_argument("--logs", type=Path, default=None, help="keep the rows' logs here")
    args = parser.parse_args(argv)
    servers = [s for s in args.only.split(",") if s]
    faults = [f for f in args.faults.split(",") if f]
    unknown = [s for s in servers if s not in SERVERS] + [f for f in faults if f not in FAULTS]
    if unknown:
        parser.error(f"unknown: {', '.join(unknown)}; servers {list(SERVERS)}, faults {FAULTS}")
    full = servers == list(SERVERS) and faults == list(FAULTS) and not args.no_hup
    logs = args.logs or Path(tempfile.mkdtemp(prefix="bench-rollback-"))
    logs.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.UTC)
    began = time.monotonic()
    rows: list[Row] = []
    nowindow: dict[str, Row] = {}
    for name in servers:
        for fault in faults:
            row = warden_row(SERVERS[name], fault, logs)
            print(
                f"{name:10} {fault:13} {row.result:12} ok {row.ok:6} failed {row.failures:6} "
                f"after: {row.afterwards:24} running {row.running} {row.error or ''}",
                flush=True,
            )
            rows.append(row)
        if "good" in faults:
            nowindow[name] = warden_row(SERVERS[name], "good", logs, window="0")
            print(f"{name:10} good, window 0: {nowindow[name].durations}", flush=True)
    hup: list[Row] = []
    if "gunicorn" in servers and not args.no_hup:
        for fault in [f for f in BROKEN_HUP if f in faults]:
            row = hup_row(fault, logs)
            print(
                f"HUP        {fault:13} ok {row.ok:6} failed {row.failures:6} "
                f"after: {row.afterwards:24} master {row.running} {row.error or ''}",
                flush=True,
            )
            hup.append(row)
    minutes = (time.monotonic() - began) / 60
    command = "python bench/bench_rollback.py"
    section = report(rows, hup, nowindow, command, started, minutes)
    if full:
        write_section("rollback", section)
        print(f"wrote {DOC}")
    else:
        print(section)
    if args.logs is None:
        shutil.rmtree(logs, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
