"""``warden doctor --why [STATUS] [--pid PID] [--since DURATION]``: why a process died.

From what the machine still knows: the exit status (137 is 128 + SIGKILL, 143 is 128 +
SIGTERM, 124 warden's deadline, 4 never ready...), the kernel's log (its OOM kills, with the
kernel's own lines) and the memory cgroup's ``oom_kill`` counter. It tells apart:

* an OOM kill of the process itself (``oom-kill``): the kernel's ``Killed process PID``;
* an OOM kill of another process in the container (``oom-kill-child``), which Kubernetes
  may report as the container's ``OOMKilled`` (kubernetes/kubernetes #104454, #78973), or
  not at all;
* a SIGKILL from outside (``sigkill``): ``kill -9``, or a manager whose grace period ran out;
* a SIGTERM the program did not handle (``sigterm-unhandled``): it died of the signal's
  default action instead of stopping on its own;
* warden's own deadline (``deadline``, 124), a readiness gate never passed (``not-ready``, 4),
  a command that could not run (``exec``, 126 and 127), another signal or code.
"""

from __future__ import annotations

import math
import signal
import time
from pathlib import Path

from ..memory import MemoryUnavailableError, find_memory_cgroup
from ..memory import _parse_keyed as parse_keyed
from ._kernel_log import KernelLine, OomKill, oom_kills, read_kernel_log
from ._results import Report, Result, Where, error, ok, warning

_CODES = {
    0: ("exit-code", "ok", "exited 0: a clean stop"),
    1: (
        "exit-code",
        "warning",
        "exited 1: the program's own failure, or warden's (it gave up on "
        "a crash loop, or could not start the program: its last line says which)",
    ),
    2: ("exit-code", "warning", "exited 2: a usage error (a bad option or WARDEN_* value)"),
    4: (
        "not-ready",
        "error",
        "exited 4: the program never passed warden's --ready gate within "
        "--ready-timeout (warden stopped it), or exited 0 before it was ready",
    ),
    124: (
        "deadline",
        "error",
        "exited 124: a shutdown deadline passed and the process forced "
        "its own exit (warden run: --stop-timeout + 5 s; a warden.Lifecycle program: its "
        "shutdown_timeout); something could not be stopped in time, and stderr has the "
        "report of what was still running",
    ),
    126: (
        "exec",
        "error",
        "exited 126: the command was found but cannot be executed (not "
        "executable, a bad interpreter)",
    ),
    127: ("exec", "error", "exited 127: the command was not found"),
}
_FIXES = {
    "not-ready": "make the program ready sooner, or raise --ready-timeout; check its gate",
    "deadline": "read the report on stderr: the component or process still running; give it "
    "a shorter stop of its own, or raise --stop-timeout",
    "exec": "fix the command (its path, chmod +x, its #! line)",
    "exit-code": "read the program's own log",
}


def explain_death(
    status: int | None = None,
    *,
    pid: int | None = None,
    since: float | None = None,
    kernel: tuple[list[KernelLine], str] | None = None,
    scope: str | None = None,
    now: float | None = None,
) -> Report:
    """Why a process ended with ``status`` (an exit code as a shell shows it, 128 + N for
    signal N), from the kernel's log since ``since`` seconds ago (default: since boot).

    ``pid``: the process that died, as the kernel numbers it (warden's log names it); it
    tells an OOM kill of this process from one of another. ``scope``: the memory cgroup whose
    OOM kills count (default: the one this runs in, so a container sees its own and a host
    all); an OOM kill of ``pid`` counts wherever it was. ``kernel``: the log and its name
    (tests); read from the machine when None.
    """
    now = time.monotonic() if now is None else now
    results: list[Result] = []
    try:
        lines, source = kernel if kernel is not None else read_kernel_log()
    except OSError as exc:
        results.append(
            warning("kernel-log", Where("the kernel's log"), str(exc), "run as root, on the host")
        )
        lines, source = [], "the kernel's log"
    scope = _own_scope() if scope is None else scope
    window = [line for line in lines if since is None or line.at >= now - since]
    kills = oom_kills(window)
    ours = [kill for kill in kills if pid is not None and kill.pid == pid]
    others = [kill for kill in kills if kill.pid != pid and _within(kill, scope)]
    when = "since boot" if since is None else f"in the last {_ago(since)}"
    signum = status - 128 if status is not None and 128 < status < 128 + 65 else None
    if ours:
        results.append(_oom(ours[-1], source, now, f"pid {pid}"))
    elif pid is None and others and (status is None or signum == signal.SIGKILL):
        results.append(_oom(others[-1], source, now, f"pid {others[-1].pid}", guess=status))
    else:
        if others:
            results.append(_child(others[-1], pid, source, now))
        results.append(_by_status(status, signum, pid, source, when))
    counter = _counter(ours[-1] if ours else (others[-1] if others else None))
    if counter is not None:
        results.append(counter)
    title = "a death" if status is None else f"exit status {status}"
    return Report.of(results, title=title)


def _own_scope() -> str:
    """The memory cgroup this runs in, as the kernel's log names cgroups ("/" on a host)."""
    try:
        own = find_memory_cgroup()
    except MemoryUnavailableError:
        return "/"
    relative = own.path.relative_to(own.mount).as_posix()
    return "/" if relative == "." else "/" + relative


def _within(kill: OomKill, scope: str) -> bool:
    if scope == "/" or kill.memcg is None:
        return True
    return kill.memcg == scope or kill.memcg.startswith(scope.rstrip("/") + "/")


def _who(pid: int | None) -> str:
    return f"pid {pid}" if pid is not None else ""


def _by_status(
    status: int | None, signum: int | None, pid: int | None, source: str, when: str
) -> Result:
    where = Where(source, None, _who(pid))
    if status is None:
        return ok("oom-kill", where, f"no OOM kill in the kernel's log {when}")
    if signum == signal.SIGKILL:
        return error(
            "sigkill",
            where,
            f"exited {status} (128 + SIGKILL) and the kernel's log has no OOM kill of "
            f"{_who(pid) or 'it'} {when}: killed from outside, not an OOM kill (kill -9, or a "
            "manager's SIGKILL when its grace period ran out: the kubelet after "
            "terminationGracePeriodSeconds, systemd after TimeoutStopSec)",
            "if a manager killed it, give the stop more time (warden doctor on the manifest or "
            "unit checks the sums); else find who sends kill -9",
        )
    if signum == signal.SIGTERM:
        return warning(
            "sigterm-unhandled",
            where,
            "exited 143 (128 + SIGTERM): it died of SIGTERM's default action, so it did not "
            "handle the signal; a program that stops on SIGTERM exits 0 (or its own code). "
            "Under warden, 143 is the program's own death passed on",
            "handle SIGTERM in the program (finish the work, exit 0), or give warden "
            "--stop-signal the signal it handles",
        )
    if signum is not None:
        return _signal(signum, source, pid)
    return _code(status, source, pid)


def _child(kill: OomKill, pid: int | None, source: str, now: float) -> Result:
    """An OOM kill of another process than the one that died (a worker, a child)."""
    other = f"not pid {pid}: " if pid is not None else ""
    return error(
        "oom-kill-child",
        Where(source, None, f"pid {kill.pid}"),
        f"the kernel OOM-killed pid {kill.pid} ({kill.task}) {_ago(now - kill.at)} ago, "
        f"{other}another process of the same cgroup (a worker, a child); Kubernetes may "
        "report the container as OOMKilled for it whatever the main process did "
        f"(kubernetes #104454, #78973). kernel: {kill.lines[-1]}",
        "give that process less to hold, or the container more memory; warden run "
        "--memory-limit names such kills in its log",
    )


def _oom(kill: OomKill, source: str, now: float, who: str, guess: int | None = None) -> Result:
    memory = ""
    if kill.usage is not None and kill.limit is not None:
        memory = f"; its cgroup used {_mib(kill.usage)} of {_mib(kill.limit)}"
    where = f" in memory cgroup {kill.memcg}" if kill.memcg else ""
    scope = (
        "the whole machine ran out of memory"
        if kill.constraint == "CONSTRAINT_NONE"
        else "its memory cgroup reached its limit"
    )
    unsure = ""
    if guess is not None:
        unsure = (
            f"; if pid {kill.pid} is the process that exited {guess}, this was its death "
            "(give --pid to be sure)"
        )
    return error(
        "oom-kill",
        Where(source, None, who),
        f"OOM-killed by the kernel {_ago(now - kill.at)} ago: {kill.task} (pid {kill.pid})"
        f"{where}, resident {_mib(kill.rss)}{memory}; {scope}{unsure}. kernel: {kill.lines[-1]}",
        "raise the memory limit or lower the program's working set; warden run "
        "--memory-limit/--memory-warn-signal warns and stops it cleanly before the kernel does",
    )


def _signal(signum: int, source: str, pid: int | None) -> Result:
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    crash = signum in (signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE)
    what = "a crash" if crash else "a signal it did not handle"
    if signum == signal.SIGABRT:
        what = "an abort (a failed assertion, or warden's --watchdog when a ping was missed)"
    return error(
        "signal",
        Where(source, None, _who(pid)),
        f"exited {128 + signum} (128 + {name}): it died of {name}, {what}",
        "read its stderr and core dump" if crash else "find who sends it, or handle it",
    )


def _code(status: int, source: str, pid: int | None) -> Result:
    check, severity, message = _CODES.get(
        status, ("exit-code", "warning", f"exited {status}: the program's own exit code")
    )
    where = Where(source, None, _who(pid))
    if severity == "ok":
        return ok(check, where, message)
    fix = _FIXES.get(check, "read the program's own log")
    return Result(check, severity, where, message, fix)  # type: ignore[arg-type]


def _counter(kill: OomKill | None) -> Result | None:
    """The ``oom_kill`` counter of the victim's memory cgroup, where it still exists."""
    if kill is None or not kill.memcg:
        return None
    for mount in (Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup")):
        directory = mount / kill.memcg.lstrip("/")
        for name in ("memory.oom_control", "memory.events"):
            try:
                count = parse_keyed((directory / name).read_text()).get("oom_kill")
            except OSError:
                continue
            if count is not None:
                return ok(
                    "oom-kill",
                    Where(str(directory / name), None, kill.memcg),
                    f"the cgroup's oom_kill counter is {count}",
                )
    return None


def _mib(value: float) -> str:
    return f"{value / 2**20:.1f} MiB"


def _ago(seconds: float) -> str:
    if math.isinf(seconds):
        return "for ever"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
