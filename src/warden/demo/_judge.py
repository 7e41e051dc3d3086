"""The judge: what must hold of what each step measured, as checks with the measured value.

The scenario (:mod:`._scenario`) measures and fills one record per step; the rules live here,
one function per step, so what "held" means is written down once and readable as a list.
Every number a check compares comes from the record: the clients' counts, warden's facts,
the kernel's counter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._clients import Figures
from ._report import Check, StepReport, verdict_of

#: "within milliseconds": readiness false this soon after SIGTERM, at most.
READINESS_FALSE_WITHIN = 0.1

PROMISES = {
    "start": "ready behind its http gate, then serving",
    "config reload": "a ConfigMap-style ..data swap is applied, 0 failed; a broken config is "
    "refused in one line and the old value keeps serving",
    "upgrade": "release 2 replaces release 1 under load: responses switch to v2, 0 failed",
    "broken release": "release 3 fails after READY: rolled back with warden's reason, "
    "release 2 keeps serving, 0 failed",
    "memory": "a leak under load is caught before the OOM killer: recycled by a zero-downtime "
    "upgrade or stopped gracefully; oom_kill counter unchanged; 0 acknowledged writes lost",
    "graceful stop": "SIGTERM with slow requests in flight: readiness false within "
    "milliseconds, every request answered, components stopped in order, exit 0, every "
    "acknowledged write on disk",
}


def _failed(figures: Figures) -> Check:
    total = figures.served + figures.failed
    return Check("0 failed", figures.failed == 0, f"{figures.failed} of {total:,} failed")


def _s(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _mib(size: object) -> str:
    return f"{float(size) / 2**20:.1f} MiB" if isinstance(size, int | float) else "?"


# -- 1. start -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    gate: str | None  # child.ready's gate, None if never ready
    ready_after: float | None  # spawn -> gate passed (warden's child.ready)
    launch_to_ready: float | None  # the demo's launch -> warden's state ready
    first_release: int | None  # the release that answered the first request
    readyz: int | None  # warden's /readyz (--health) once ready
    figures: Figures
    error: str | None = None  # why it never got ready
    components: tuple[str, ...] | None = None  # the service's, in the order they started


def judge_start(m: Started) -> StepReport:
    checks = (
        Check(
            "ready behind its http gate",
            m.gate is not None and m.gate.startswith("http"),
            f"gate {m.gate}, passed {_s(m.ready_after)} after the spawn"
            if m.gate
            else (m.error or "never ready"),
        ),
        Check(
            "warden says ready",
            m.readyz == 200,
            f"warden's /readyz answered {m.readyz}",
        ),
        Check(
            "serving release 1",
            m.first_release == 1,
            f"first answer from release {m.first_release}",
        ),
        _failed(m.figures),
    )
    summary = (
        f"ready behind its http gate in {_s(m.launch_to_ready)}"
        if m.gate
        else f"not ready: {m.error}"
    )
    return _report(
        "start",
        summary,
        checks,
        m.figures,
        measured={
            "ready_after_s": m.ready_after,
            "launch_to_ready_s": m.launch_to_ready,
            "readyz": m.readyz,
            "components_started": None if m.components is None else list(m.components),
        },
    )


# -- 2. config reload --------------------------------------------------------------------


@dataclass(frozen=True)
class Reloaded:
    how: str  # how warden learnt of the change: "--reload-on-change" (inotify, no extra)
    old: str
    new: str
    applied_after: float | None  # the swap -> the service's config.reloaded
    revision: int | None
    new_served: int  # requests sent after it was applied, answered with the new value
    new_wrong: int  # ... answered with another value
    refused: str | None  # the service's config.reload_failed error, one line
    refused_after: float | None
    kept_served: int  # requests sent after the refusal, answered with the new value
    kept_wrong: int
    figures: Figures
    said: tuple[str, ...] = ()


def judge_config(m: Reloaded) -> StepReport:
    checks = (
        Check(
            "the new value is served after the ..data swap",
            m.applied_after is not None and m.new_served > 0 and m.new_wrong == 0,
            f"{m.new!r} in {m.new_served:,} answers after the reload, {m.new_wrong} other"
            if m.applied_after is not None
            else "the service never applied it",
        ),
        Check(
            "a broken config is refused in one line",
            m.refused is not None and "\n" not in m.refused,
            m.refused or "not refused",
        ),
        Check(
            "the old value keeps serving",
            m.refused is not None and m.kept_served > 0 and m.kept_wrong == 0,
            f"{m.new!r} in {m.kept_served:,} answers after the refusal, {m.kept_wrong} other",
        ),
        _failed(m.figures),
    )
    summary = (
        f"{m.new!r} live {_s(m.applied_after)} after the ..data swap; "
        f"a broken one refused, {m.new!r} kept"
    )
    return _report(
        "config reload",
        summary,
        checks,
        m.figures,
        said=m.said,
        measured={
            "how": m.how,
            "applied_after_s": m.applied_after,
            "revision": m.revision,
            "refused": m.refused,
            "refused_after_s": m.refused_after,
        },
    )


# -- 3. upgrade and 4. broken release -------------------------------------------------------


@dataclass(frozen=True)
class Upgraded:
    result: str | None  # upgrade.finished's result: ok, failed, rolled back
    reason: str | None  # its reason, warden's words
    took: float | None
    old_pid: int | None
    new_pid: int | None
    after_new: int  # requests sent after it finished, answered by the new release
    after_other: int  # ... by another release
    figures: Figures
    said: tuple[str, ...] = ()


def judge_upgrade(m: Upgraded) -> StepReport:
    checks = (
        Check("the upgrade succeeds", m.result == "ok", f"{m.result}: {m.reason}"),
        Check(
            "responses switch to release 2",
            m.after_new > 0 and m.after_other == 0,
            f"after it: {m.after_new:,} answers from release 2, {m.after_other} from others",
        ),
        _failed(m.figures),
    )
    summary = f"release 1 → 2 in {_s(m.took)} under load, {m.figures.failed} failed"
    return _report(
        "upgrade",
        summary,
        checks,
        m.figures,
        said=m.said,
        measured=_upgrade_measured(m),
    )


@dataclass(frozen=True)
class RolledBack:
    upgrade: Upgraded  # the attempt to deploy release 3
    by_release: dict[int, int]  # answers during the step, by release
    put_back: str | None = None  # what the demo did to serve release 2 again, if it had to


def judge_rollback(m: RolledBack) -> StepReport:
    u = m.upgrade
    from_3 = m.by_release.get(3, 0)
    checks = (
        Check(
            "rolled back, with warden's reason",
            u.result == "rolled back",
            f"{u.result}: {u.reason}",
        ),
        Check(
            "release 2 keeps serving",
            from_3 == 0 and m.by_release.get(2, 0) > 0,
            f"{m.by_release.get(2, 0):,} answers from release 2, {from_3} from release 3",
        ),
        _failed(u.figures),
    )
    if u.result == "rolled back":
        summary = f"release 3 rolled back in {_s(u.took)}; release 2 kept serving, "
        summary += f"{u.figures.failed} failed"
    else:
        summary = f"release 3 was not rolled back ({u.result}); {u.figures.failed} failed"
    said = u.said + ((m.put_back,) if m.put_back else ())
    return _report(
        "broken release",
        summary,
        checks,
        u.figures,
        said=said,
        measured={**_upgrade_measured(u), "put_back": m.put_back},
    )


def _upgrade_measured(m: Upgraded) -> dict[str, object]:
    return {
        "result": m.result,
        "reason": m.reason,
        "took_s": m.took,
        "old_pid": m.old_pid,
        "new_pid": m.new_pid,
    }


# -- 5. memory ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Level:
    """A memory.level fact of warden's sentinel."""

    level: str
    working_set: int
    limit: int
    time_to_limit: float | None

    def describe(self) -> str:
        ttl = "not growing" if self.time_to_limit is None else f"{self.time_to_limit:.1f} s"
        used = f"{self.working_set / 2**20:.0f} of {self.limit / 2**20:.0f} MiB"
        return f"{self.level} ({used}, {ttl} to the limit)"


_ORDER = {"ok": 0, "warn": 1, "high": 2, "critical": 3}


@dataclass(frozen=True)
class Leaked:
    limit: int
    leaking_pid: int | None
    jump: int  # bytes the service was told to leak at once
    rate: int  # then, bytes a second
    levels: tuple[Level, ...]  # from the leak on
    recycled: bool  # memory.recycle said so
    recycle_reason: str | None  # warden's memory.recycle detail
    upgrade: str | None  # the recycle's upgrade: result and reason
    ended: str | None  # the leaking release's end, warden's words (child.exited)
    oom_killed: bool
    oom_before: int | None
    oom_after: int | None
    cgroup: str
    writes: int  # acknowledged by the leaking release
    lost: int  # of those, not on disk once it ended
    figures: Figures
    said: tuple[str, ...] = ()
    error: str | None = None


def judge_memory(m: Leaked) -> StepReport:
    first_warning = next((lv for lv in m.levels if lv.level != "ok"), None)
    graceful = m.ended == "exited(0)" and not m.oom_killed
    how = "recycled by a zero-downtime upgrade" if m.recycled else "stopped gracefully"
    checks = (
        Check(
            "the sentinel warns before the limit",
            first_warning is not None,
            first_warning.describe() if first_warning else (m.error or "no level reached"),
        ),
        Check(
            "recycled or stopped gracefully before the OOM killer",
            graceful,
            f"{how}; the leaking release {m.ended or 'did not end'}"
            + (f" ({m.error})" if m.error else ""),
        ),
        Check(
            "oom_kill counter unchanged",
            m.oom_before is not None and m.oom_before == m.oom_after,
            f"{m.oom_before} before, {m.oom_after} after ({m.cgroup}/memory.oom_control)",
        ),
        Check("0 acknowledged writes lost", m.lost == 0, f"{m.lost} of {m.writes:,} lost"),
        _failed(m.figures),
    )
    if first_warning is not None and graceful:
        # Recycled where the recycle began (--recycle-at warn); stopped at the highest level.
        highest = max(m.levels, key=lambda lv: _ORDER.get(lv.level, 0))
        at = first_warning if m.recycled else highest
        done = "recycled" if m.recycled else "stopped gracefully"
        summary = f"{done} at {at.describe()}; "
        summary += f"oom_kill +{(m.oom_after or 0) - (m.oom_before or 0)}; {m.lost} writes lost"
    else:
        summary = f"the leak was not caught: {m.ended or m.error or 'no end seen'}"
    return _report(
        "memory",
        summary,
        checks,
        m.figures,
        said=m.said,
        measured={
            "limit": m.limit,
            "leak_jump": m.jump,
            "leak_bytes_per_s": m.rate,
            "levels": [
                {
                    "level": lv.level,
                    "working_set": lv.working_set,
                    "limit": lv.limit,
                    "time_to_limit_s": lv.time_to_limit,
                }
                for lv in m.levels
            ],
            "recycled": m.recycled,
            "ended": m.ended,
            "oom_kill_before": m.oom_before,
            "oom_kill_after": m.oom_after,
            "writes_acknowledged": m.writes,
            "writes_lost": m.lost,
        },
    )


# -- 6. graceful stop ----------------------------------------------------------------------


@dataclass(frozen=True)
class Stopped:
    sent: int  # slow requests sent before SIGTERM
    in_flight: int  # of those, in the service's hands at SIGTERM (its facts say so)
    answered: int  # of those sent, answered 200
    readiness_false_after: float | None  # SIGTERM -> warden's readiness false (its fact)
    readyz: tuple[int, int]  # warden's /readyz (--health) before SIGTERM, and after
    #: The components of the release serving at SIGTERM, in the order they stopped, and in
    #: the order they had started; each whole (None: not seen whole in time).
    stop_order: tuple[str, ...] | None
    start_order: tuple[str, ...] | None
    stops_ok: bool  # every stop ok
    exit_code: int | None
    took: float | None  # SIGTERM -> warden's exit
    writes: int  # acknowledged during the whole demo
    lost: int  # of those, not on disk at the end
    figures: Figures
    said: tuple[str, ...] = field(default=())


def judge_stop(m: Stopped) -> StepReport:
    expected = None if m.start_order is None else tuple(reversed(m.start_order))
    checks = (
        Check(
            "readiness false within milliseconds",
            m.readiness_false_after is not None
            and m.readiness_false_after <= READINESS_FALSE_WITHIN
            and m.readyz == (200, 503),
            f"{_s(m.readiness_false_after)} after SIGTERM; "
            f"warden's /readyz {m.readyz[0]} before, {m.readyz[1]} after",
        ),
        Check(
            "every in-flight request answered",
            m.sent > 0 and m.in_flight == m.sent and m.answered == m.sent,
            f"{m.answered} of {m.sent} answered; {m.in_flight} of them were in the service's "
            "hands at SIGTERM",
        ),
        Check(
            "components stopped in order",
            m.stop_order is not None and m.stop_order == expected and m.stops_ok,
            _orders(m.stop_order, m.start_order),
        ),
        Check("exit 0", m.exit_code == 0, f"warden exited {m.exit_code}"),
        Check(
            "every acknowledged write on disk",
            m.lost == 0 and m.writes > 0,
            f"{m.writes - m.lost:,} of {m.writes:,} on disk",
        ),
    )
    summary = (
        f"readiness false in {_s(m.readiness_false_after)}; "
        f"{m.answered} of {m.sent} in flight answered; exit {m.exit_code}"
    )
    return _report(
        "graceful stop",
        summary,
        checks,
        m.figures,
        said=m.said,
        measured={
            "readiness_false_after_s": m.readiness_false_after,
            "readyz_before_after": list(m.readyz),
            "sent": m.sent,
            "in_flight": m.in_flight,
            "answered": m.answered,
            "stop_order": None if m.stop_order is None else list(m.stop_order),
            "start_order": None if m.start_order is None else list(m.start_order),
            "exit_code": m.exit_code,
            "took_s": m.took,
            "writes_acknowledged": m.writes,
            "writes_lost": m.lost,
        },
    )


def _report(
    name: str,
    summary: str,
    checks: tuple[Check, ...],
    figures: Figures | None,
    *,
    said: tuple[str, ...] = (),
    measured: dict[str, object],
) -> StepReport:
    """The report of step ``name``: its promise, and the verdict its checks reach."""
    return StepReport(
        name,
        PROMISES[name],
        verdict_of(checks),
        summary,
        checks,
        figures,
        said=said,
        measured=measured,
    )


def _orders(stop: tuple[str, ...] | None, start: tuple[str, ...] | None) -> str:
    stopped = "no whole stop order seen" if stop is None else " → ".join(stop) or "none stopped"
    started = "no whole start order seen" if start is None else " → ".join(start)
    return f"{stopped} (started {started})"
