"""The scenario: a real ``warden run`` of the bundled service, walked through six steps.

Each step acts as a user or the platform would (a deploy, a ConfigMap update, ``warden
upgrade``, a leak, SIGTERM), under real traffic, then measures what happened from three
sources only: the clients' own counts, warden's facts (its JSON log) and the service's
(its stdout), and the kernel (the cgroup's ``oom_kill`` counter). The judge (:mod:`._judge`)
turns the measurements into verdicts. Every wait is for a fact, with a deadline; the only
pauses are the seconds of traffic each step lets run so that its figures mean something.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from . import _judge as judge
from ._cgroup import oom_kills, program_cgroup
from ._clients import Figures, Request, Traffic, acknowledged, figures, probe
from ._release import FAULT_500
from ._report import StepReport, not_run
from ._tether import Tie
from ._warden import Fact, FactStream, Match, WardenRun, clean_environment, kind
from ._words import words
from ._workspace import Workspace

#: The memory step: the program's cgroup limit, and release 2's leak: a jump, then a ramp.
#: Recycling at warn (80 %) starts a fresh copy in the same cgroup: its start-up (~15 MiB in
#: a few tenths of a second) is growth too, which warden's sentinel projects at up to ~60
#: MiB/s; with less than that left above the copy, the projected time to the limit falls
#: below its 1 s flush budget, and "critical" stops the old release before the new one is
#: ready. 20 % of 384 MiB leaves 77 MiB. The jump keeps the demo short: warn is then 2.5 s of
#: ramp away, and the recycle (start, gate, 1 s window) ends well before high (90 %).
MEMORY_LIMIT = 384 * 2**20
LEAK_JUMP = 272 * 2**20
LEAK_RATE = 8 * 2**20

#: Seconds of traffic a step lets run after what it waits for, so its figures mean something.
SETTLE = 0.5

#: Slow requests in flight at SIGTERM, and how long each takes.
SLOW_REQUESTS, SLOW_MS = 4, 1500

READY_TIMEOUT = 30.0  # seconds for warden and the service to become ready
FACT_TIMEOUT = 15.0  # seconds for a fact that follows an action at once
UPGRADE_TIMEOUT = 60.0  # seconds for an upgrade to finish
LEAK_TIMEOUT = 45.0  # seconds for the leak to be caught
STOP_TIMEOUT = 30.0  # seconds for warden to exit after SIGTERM

GREETINGS = ("hello", "bonjour")
#: A broken edit: the file cut short (the classic half-written config).
BROKEN_CONFIG = '{"greeting": "hola",\n'


class Progress(Protocol):
    """Where the steps say what they are doing (the live line)."""

    def begin(self, name: str, doing: str, traffic: Traffic | None) -> None: ...
    def doing(self, text: str) -> None: ...
    def end(self, report: StepReport) -> None: ...


@dataclass
class Stage:
    """What the steps share: the directory, the warden, the traffic, what this machine has."""

    space: Workspace
    runtime: Path  # the control socket and warden's notify sockets
    port: int
    health_port: int
    upgrade_confirm: float
    progress: Progress
    memory: str | None  # None: a memory cgroup can be made; else why not
    tie: Tie | None = None  # what ties warden to the demo (:mod:`._tether`)
    #: Around warden's launch: a signal then ends the steps once warden is known to the
    #: cleanup, not before.
    launching: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext
    warden: WardenRun | None = None
    traffic: Traffic | None = None
    command: tuple[str, ...] = field(default_factory=tuple)

    @property
    def w(self) -> WardenRun:
        assert self.warden is not None
        return self.warden

    @property
    def t(self) -> Traffic:
        assert self.traffic is not None
        return self.traffic

    def argv(self) -> list[str]:
        """``warden run``'s options and the program: everything the steps need."""
        address = f"127.0.0.1:{self.port}"
        argv = [
            "--listen",
            f"tcp://{address}",
            "--ready",
            f"http://{address}/readyz",
            "--ready-timeout",
            "20s",
            "--health",
            f"127.0.0.1:{self.health_port}",
            "--on-hup",
            "forward",  # a config change is a reload of the program, not an upgrade
            "--upgrade-confirm",
            f"{self.upgrade_confirm:g}s",
            "--stop-timeout",
            "10s",
            # A release that ends on its own (stopped at "critical" where no recycle could
            # start) is started again; the held socket keeps its connections meanwhile.
            "--restart",
            "always",
            "--backoff-initial",
            "0.2s",
            "--control",
            str(self.runtime / "control.sock"),
        ]
        argv += ["--reload-on-change", str(self.space.config)]  # inotify, no extra needed
        if self.memory is None:
            argv += ["--memory-limit", f"{MEMORY_LIMIT // 2**20}M", "--recycle-at", "warn"]
        service = [sys.executable, "-m", "warden.demo._service", str(self.space.root)]
        return [*argv, "--", *service]

    def gone(self) -> str | None:
        """Why the steps cannot go on: the service never served, or warden has exited."""
        if self.warden is None or self.traffic is None:
            return "the service never became ready (see the start step)"
        if not self.warden.running:
            return f"warden exited ({self.warden.proc.returncode}) before this step"
        return None


def steps() -> Iterator[tuple[str, Callable[[Stage], StepReport]]]:
    yield "start", start
    yield "config reload", config_reload
    yield "upgrade", upgrade
    yield "broken release", broken_release
    yield "memory", memory
    yield "graceful stop", graceful_stop


def _window(stage: Stage, began: float, end: float | None = None) -> tuple[list[Request], Figures]:
    end = time.monotonic() if end is None else end
    requests = stage.t.between(began, end)
    return requests, figures(requests, began, end)


def _at(fact: Fact | None) -> float | None:
    return None if fact is None else float(fact["monotonic"])


def _data(fact: Fact | None) -> dict[str, object]:
    found = None if fact is None else fact.get("data")
    return found if isinstance(found, dict) else {}


def _state(name: str) -> Match:
    return kind("state", state=name)


def _settle(seconds: float = SETTLE) -> None:
    time.sleep(seconds)  # traffic runs meanwhile: the step's figures


# -- 1. start -------------------------------------------------------------------------------


def start(stage: Stage) -> StepReport:
    stage.progress.begin("start", "warden run starts the service behind its http gate", None)
    stage.space.deploy(1)
    stage.space.configure(f'{{"greeting": "{GREETINGS[0]}"}}\n')
    env = clean_environment(os.environ, stage.runtime)
    argv = stage.argv()
    stage.command = ("warden", "run", *argv)
    launched = time.monotonic()
    with stage.launching():
        control = stage.runtime / "control.sock"
        stage.warden = WardenRun(argv, env, stage.space.logs, control, stage.tie)
    warden = stage.warden
    ready = warden.log.wait(_state("ready"), READY_TIMEOUT)
    child = warden.log.find(kind("child.ready"))
    error = None
    if ready is None:
        error = _last_words(warden)
        empty = figures([], launched, time.monotonic())
        return judge.judge_start(judge.Started(None, None, None, None, None, empty, error))
    pid = _int(_data(child).get("pid"))
    started = None
    if pid is not None:
        started = components(warden.service, pid, "start", "ready", FACT_TIMEOUT)
    readyz, _ = probe(stage.health_port, "/readyz")  # what a load balancer asks warden
    stage.traffic = Traffic(stage.port)
    began = time.monotonic()
    stage.t.start()
    stage.progress.begin("start", "ready: traffic begins", stage.traffic)
    _settle()
    requests, counted = _window(stage, began)
    first = next((r for r in requests if r.ok), None)
    return judge.judge_start(
        judge.Started(
            gate=str(_data(child).get("gate")) if child else None,
            ready_after=float(str(_data(child).get("took"))) if child else None,
            launch_to_ready=(_at(ready) or launched) - launched,
            first_release=first.release if first else None,
            readyz=readyz,
            figures=counted,
            components=started,
        )
    )


def _last_words(warden: WardenRun) -> str:
    """What warden said last, for a start that failed: its last warning, or its last line."""
    for fact in reversed(warden.log.facts):
        if fact.get("level") in ("warning", "error") or fact.get("kind") == "text":
            return str(fact.get("message") or fact.get("line"))
    code = warden.proc.poll()
    return f"warden exited {code}" if code is not None else "not ready in time"


# -- 2. config reload ------------------------------------------------------------------------


def config_reload(stage: Stage) -> StepReport:
    old, new = GREETINGS
    stage.progress.begin(
        "config reload", "the config is replaced as a ConfigMap update does (..data swap)", stage.t
    )
    service, log = stage.w.service, stage.w.log
    began = time.monotonic()
    mark, log_mark = service.mark(), log.mark()
    stage.space.configure(f'{{"greeting": "{new}"}}\n')
    swapped = time.monotonic()
    applied = service.wait(kind("config.reloaded", changed=True), FACT_TIMEOUT, mark)
    stage.progress.doing(f"{new!r} applied; now a broken config")
    _settle()
    mark = service.mark()
    stage.space.configure(BROKEN_CONFIG)
    broken_at = time.monotonic()
    refused = service.wait(kind("config.reload_failed"), FACT_TIMEOUT, mark)
    stage.progress.doing("broken config refused; the old value keeps serving")
    _settle()
    requests, counted = _window(stage, began)
    said = _said(log.all(kind("config.changed"), log_mark))
    if refused is not None:
        said.append(f"the service: {refused.get('detail')}")
    # The broken edit is reverted, as its author would: a release started later reads this
    # file at its start, and a broken one would (rightly) stop it becoming ready.
    mark = service.mark()
    stage.space.configure(f'{{"greeting": "{new}"}}\n')
    service.wait(kind("config.reloaded"), FACT_TIMEOUT, mark)
    applied_at, refused_at = _at(applied), _at(refused)
    reads = [r for r in requests if r.ok and r.op == "read"]
    after_apply = [r for r in reads if applied_at is not None and applied_at < r.sent < broken_at]
    after_refusal = [r for r in reads if refused_at is not None and r.sent > refused_at]
    return judge.judge_config(
        judge.Reloaded(
            how="--reload-on-change",
            old=old,
            new=new,
            applied_after=None if applied_at is None else applied_at - swapped,
            revision=_int(_data(applied).get("revision")),
            new_served=sum(1 for r in after_apply if r.greeting == new),
            new_wrong=sum(1 for r in after_apply if r.greeting != new),
            refused=str(_data(refused).get("error")) if refused else None,
            refused_after=None if refused_at is None else refused_at - broken_at,
            kept_served=sum(1 for r in after_refusal if r.greeting == new),
            kept_wrong=sum(1 for r in after_refusal if r.greeting != new),
            figures=counted,
            said=tuple(said),
        )
    )


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


# -- 3. upgrade and 4. broken release ------------------------------------------------------


def _upgrade(stage: Stage, release: int, began: float) -> judge.Upgraded:
    """Deploy ``release`` (already on disk) with ``warden upgrade``, under the traffic."""
    log = stage.w.log
    mark = log.mark()
    command = threading.Thread(target=stage.w.control, args=("upgrade",), daemon=True)
    command.start()  # as a deploy tool runs it; the live line follows warden's facts meanwhile
    finished = _follow(stage, mark, kind("upgrade.finished"), UPGRADE_TIMEOUT)
    command.join(FACT_TIMEOUT)
    done = _data(finished)
    _settle()
    finished_at = _at(finished)
    requests, counted = _window(stage, began)
    after = [r for r in requests if r.ok and finished_at is not None and r.sent > finished_at]
    said = _said(log.all(_upgrade_words, mark))
    return judge.Upgraded(
        result=str(done["result"]) if "result" in done else None,
        reason=str(done["reason"]) if "reason" in done else None,
        took=float(str(done["took"])) if "took" in done else None,
        old_pid=_int(done.get("old_pid")),
        new_pid=_int(done.get("new_pid")),
        after_new=sum(1 for r in after if r.release == release),
        after_other=sum(1 for r in after if r.release != release),
        figures=counted,
        said=tuple(said),
    )


def _upgrade_words(fact: Fact) -> bool:
    """The facts of an upgrade a person wants to read: how it ended, and why."""
    return fact.get("kind") in ("upgrade.finished", "child.not_ready") or (
        fact.get("kind") == "child.exited" and fact.get("level") == "warning"
    )


def upgrade(stage: Stage) -> StepReport:
    stage.progress.begin("upgrade", "release 2 written to disk; warden upgrade under load", stage.t)
    began = time.monotonic()
    stage.space.deploy(2)
    return judge.judge_upgrade(_upgrade(stage, 2, began))


def broken_release(stage: Stage) -> StepReport:
    stage.progress.begin(
        "broken release", "release 3 answers 500 once it is ready; warden upgrade", stage.t
    )
    began = time.monotonic()
    stage.space.deploy(3, fault=FAULT_500)
    attempt = _upgrade(stage, 3, began)
    # The deploy is reverted on disk either way: a later restart or recycle starts release 2.
    stage.space.deploy(2)
    put_back = None
    if attempt.result == "ok":  # release 3 serves: put release 2 back for the steps after
        stage.progress.doing("release 3 is serving: putting release 2 back")
        _, reply = stage.w.control("upgrade")
        outcome = reply.get("upgrade")
        result = outcome.get("result") if isinstance(outcome, dict) else reply.get("error")
        put_back = f"the demo put release 2 back with another warden upgrade: {result}"
    answered: dict[int, int] = {}  # by release, whatever the status, in the step's span
    for r in stage.t.between(attempt.figures.start, attempt.figures.end):
        if r.release is not None:
            answered[r.release] = answered.get(r.release, 0) + 1
    return judge.judge_rollback(judge.RolledBack(attempt, answered, put_back))


# -- 5. memory -------------------------------------------------------------------------------


def memory(stage: Stage) -> StepReport:
    name, promise = "memory", judge.PROMISES["memory"]
    if stage.memory is not None:
        return not_run(name, promise, f"no memory cgroup can be made here: {stage.memory}")
    jump, rate = LEAK_JUMP // 2**20, LEAK_RATE // 2**20
    leaking = f"release 2 starts leaking under load: {jump} MiB at once, then {rate} MiB/s"
    stage.progress.begin(name, leaking, stage.t)
    log = stage.w.log
    began = time.monotonic()
    mark = log.mark()
    _, body = stage.t.request("POST", f"/leak?now_mib={jump}&mib_per_s={rate}")
    pid = _int(body.get("pid"))
    if pid is None:
        return not_run(name, promise, f"the service did not start leaking: {body}")
    cgroup = program_cgroup(pid)
    if isinstance(cgroup, str):
        return not_run(name, promise, f"the program's memory cgroup cannot be read: {cgroup}")
    oom_before = oom_kills(cgroup)
    ended = _follow(stage, mark, kind("child.exited", pid=pid), LEAK_TIMEOUT)
    finished = None
    recycle = log.find(kind("memory.recycle"), mark)
    if _data(recycle).get("recycled") is True:
        finished = log.wait(kind("upgrade.finished"), FACT_TIMEOUT, mark)
    oom_after = oom_kills(cgroup)
    stage.progress.doing("the leaking release is gone; memory falls back")
    log.wait(kind("memory.level", level="ok"), 5.0, log.mark() if ended is None else mark)
    _settle()
    requests, counted = _window(stage, began)
    on_disk = stage.space.writes_on_disk()
    writes = [r for r in acknowledged(requests) if r.pid == pid]
    levels = [_level(f) for f in log.all(kind("memory.level"), mark)]
    exited = _data(ended)
    reason = exited.get("reason")
    ended_as = str(ended.get("detail")) if ended is not None else None
    said_kinds = ("memory.level", "memory.recycle", "memory.stop", "memory.oom_kill")
    said = _said(log.all(lambda f: f.get("kind") in said_kinds, mark))
    if finished is not None:  # the recycle's upgrade: it says how the leaking release ended
        said += _said([finished])
    elif ended is not None:
        said += _said([ended])
    return judge.judge_memory(
        judge.Leaked(
            limit=MEMORY_LIMIT,
            leaking_pid=pid,
            jump=LEAK_JUMP,
            rate=LEAK_RATE,
            levels=tuple(levels),
            recycled=_data(recycle).get("recycled") is True,
            recycle_reason=str(recycle.get("detail")) if recycle else None,
            upgrade=None if finished is None else str(finished.get("detail")),
            ended=ended_as,
            oom_killed=isinstance(reason, dict) and reason.get("kind") == "oom-killed",
            oom_before=oom_before,
            oom_after=oom_after,
            cgroup=str(cgroup.path),
            writes=len(writes),
            lost=sum(1 for r in writes if r.write_id not in on_disk),
            figures=counted,
            said=tuple(said),
            error=None if ended is not None else f"no end of pid {pid} within {LEAK_TIMEOUT:g} s",
        )
    )


def _follow(stage: Stage, mark: int, until: Match, timeout: float) -> Fact | None:
    """Follow warden's facts from ``mark`` until one matches ``until`` (returned; None when
    the time is up); the live line says what each means on the way."""
    log = stage.w.log
    deadline = time.monotonic() + timeout
    seen = mark
    while (left := deadline - time.monotonic()) > 0:
        fact = log.wait(lambda f: until(f) or _telling(f) is not None, left, seen)
        if fact is None:
            return None
        seen = log.facts.index(fact, seen) + 1
        told = _telling(fact)
        if told is not None:
            stage.progress.doing(told)
        if until(fact):
            return fact
    return None


#: What each of warden's facts a step follows means, in a few words for the live line.
_TELLING: dict[str, Callable[[Fact, dict[str, object]], str]] = {
    "child.started": lambda f, d: f"pid {d.get('pid')} starting",
    "child.ready": lambda f, d: f"pid {d.get('pid')} passed its gate in {d.get('took', 0):.2f} s",
    "upgrade.confirming": lambda f, d: (
        f"pid {d.get('new_pid')} serves beside the old one for {d.get('window')} s"
    ),
    "upgrade.promoted": lambda f, d: f"pid {d.get('new_pid')} promoted; the old release drains",
    "upgrade.finished": lambda f, d: f"upgrade {d.get('result')}",
    "memory.level": lambda f, d: f"sentinel: {_level(f).describe()}",
    "memory.recycle": lambda f, d: (
        "recycling: a fresh copy starts beside the leaking one"
        if d.get("recycled") is True
        else f"not recycled: {d.get('reason')}"
    ),
    "child.exited": lambda f, d: f"pid {d.get('pid')} {f.get('detail')}",
}


def _telling(fact: Fact) -> str | None:
    """What ``fact`` means for the live line; None when it is not news."""
    tell = _TELLING.get(str(fact.get("kind")))
    return None if tell is None else tell(fact, _data(fact))


def components(
    stream: FactStream, pid: int, what: str, until: str, timeout: float
) -> tuple[str, ...] | None:
    """The components of the service's process ``pid``, in the order its lifecycle said
    ``what`` of each (``start``, ``stop``), once it has said ``until`` (its state ``ready``,
    ``stopped``), waited for up to ``timeout``; None if it did not say so in time.

    The service's facts are read by a thread of their own: what has been read the moment
    warden says ready may lack the last of them. So the order is taken whole, up to the
    state that ends it, never as a snapshot.
    """
    end = stream.wait_at(
        lambda f: f.get("pid") == pid and f.get("kind") == "state" and f.get("name") == until,
        timeout,
    )
    if end is None:
        return None
    return tuple(str(f["name"]) for f in stream.all(kind(what), 0, end) if f.get("pid") == pid)


def _level(fact: Fact) -> judge.Level:
    data = _data(fact)
    ttl = data.get("time_to_limit")
    return judge.Level(
        level=str(data.get("level")),
        working_set=int(str(data.get("working_set", 0))),
        limit=int(str(data.get("limit", 0))),
        time_to_limit=float(str(ttl)) if ttl is not None else None,
    )


# -- 6. graceful stop ------------------------------------------------------------------------


def graceful_stop(stage: Stage) -> StepReport:
    stage.progress.begin(
        "graceful stop",
        f"{SLOW_REQUESTS} slow requests ({SLOW_MS / 1000:g} s) in flight, then SIGTERM",
        None,
    )
    warden = stage.w
    stage.t.stop()  # the steady load ends here: a load balancer stops sending
    mark, log_mark = warden.service.mark(), warden.log.mark()
    slow = stage.t.slow(SLOW_MS, SLOW_REQUESTS)
    began = time.monotonic()
    slow.start()
    in_hand: list[Fact] = []
    for _ in range(SLOW_REQUESTS):
        at = warden.service.wait_at(kind("demo.slow"), FACT_TIMEOUT, mark)
        if at is None:
            break
        in_hand.append(warden.service.facts[at])
        mark = at + 1
    stage.progress.doing(f"{len(in_hand)} slow requests in hand: SIGTERM to warden")
    ready_before, _ = probe(stage.health_port, "/readyz")
    log_at_signal = warden.log.mark()
    signalled = time.monotonic()
    warden.send(signal.SIGTERM)
    draining = warden.log.wait(_state("draining"), FACT_TIMEOUT, log_at_signal)
    ready_after, _ = probe(stage.health_port, "/readyz")  # the slow requests keep it up
    code = warden.wait(STOP_TIMEOUT)
    exited = time.monotonic()
    slow.join(SLOW_MS / 1000 + 10)
    # The release serving at SIGTERM: its stop order against its own start order, each
    # taken whole (up to its state "stopped", and "ready").
    pid = _int(in_hand[0].get("pid")) if in_hand else _serving(stage, slow.answers)
    stop_order = start_order = None
    stops_ok = False
    if pid is not None:
        stop_order = components(warden.service, pid, "stop", "stopped", FACT_TIMEOUT)
        start_order = components(warden.service, pid, "start", "ready", FACT_TIMEOUT)
        stops = warden.service.all(lambda f: f.get("kind") == "stop" and f.get("pid") == pid)
        stops_ok = bool(stops) and all(f.get("outcome") == "ok" for f in stops)
    draining_at = _at(draining)
    stage.t.record(slow.answers)
    every = list(stage.t.requests)
    on_disk = stage.space.writes_on_disk()
    writes = list(acknowledged(every))
    said = _said(warden.log.all(kind("exit"), log_mark))  # warden's closing line
    return judge.judge_stop(
        judge.Stopped(
            sent=SLOW_REQUESTS,
            in_flight=len(in_hand),
            answered=sum(1 for r in slow.answers if r.ok),
            readiness_false_after=None if draining_at is None else draining_at - signalled,
            readyz=(ready_before, ready_after),
            stop_order=stop_order,
            start_order=start_order,
            stops_ok=stops_ok,
            exit_code=code,
            took=exited - signalled,
            writes=len(writes),
            lost=sum(1 for r in writes if r.write_id not in on_disk),
            figures=figures(slow.answers, began, exited),
            said=tuple(said),
        )
    )


def _serving(stage: Stage, answers: list[Request]) -> int | None:
    """The pid that answered a slow request, else the last that answered any."""
    for r in [*answers, *reversed(stage.t.requests)]:
        if r.pid is not None:
            return r.pid
    return None


def _said(facts: list[Fact]) -> list[str]:
    """What warden said in ``facts``, in its words for people (:mod:`._words`)."""
    return [text for text in map(words, facts) if text is not None]
