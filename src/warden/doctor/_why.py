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

from ..memory._readers import parse_keyed
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
    now: float | None = None,
) -> Report:
    """Why a process ended with ``status`` (an exit code as a shell shows it, 128 + N for
    signal N), from the kernel's log since ``since`` seconds ago (default: since boot).

    ``pid``: the process that died, as the kernel numbers it (warden's log names it); it
    tells an OOM kill of this process from one of another. ``kernel``: the log and its name
    (tests); read from the machine when None.
    """
    now = time.monotonic() if now is None else now
    try:
        lines, source = kernel if kernel is not None else read_kernel_log()
        readable = True
    except OSError as exc:
        lines, source, readable = [], str(exc), False
    window = [line for line in lines if since is None or line.at >= now - since]
    kills = oom_kills(window)
    results: list[Result] = []
    if not readable:
        results.append(
            warning(
                "kernel-log",
                Where("the kernel's log"),
                source,
                "run as root (/dev/kmsg), or on the host",
            )
        )
        source = "the kernel's log"
    signum = status - 128 if status is not None and 128 < status < 128 + 65 else None
    ours = [kill for kill in kills if kill.pid == pid] if pid is not None else []
    others = [kill for kill in kills if kill.pid != pid] if pid is not None else kills
    when = "since boot" if since is None else f"in the last {_ago(since)}"
    if ours:
        results.append(_oom(ours[-1], source, now, f"pid {pid}"))
    elif signum == signal.SIGKILL or (status is None and others):
        results += _sigkill(status, pid, others, source=source, when=when, now=now)
    elif signum == signal.SIGTERM:
        results.append(
            warning(
                "sigterm-unhandled",
                Where(source, None, _who(pid)),
                "exited 143 (128 + SIGTERM): it died of SIGTERM's default action, so it did "
                "not handle the signal; a program that stops on SIGTERM exits 0 (or its own "
                "code). Under warden, 143 is the program's own death passed on",
                "handle SIGTERM in the program (finish the work, exit 0), or give warden "
                "--stop-signal the signal it handles",
            )
        )
    elif signum is not None:
        results.append(_signal(signum, source, pid))
    elif status is not None:
        results.append(_code(status, source, pid))
    else:
        results.append(
            ok(
                "oom-kill",
                Where(source, None, _who(pid)),
                f"no OOM kill in the kernel's log {when}",
            )
        )
    counter = _counter(ours[-1] if ours else (others[-1] if others else None))
    if counter is not None:
        results.append(counter)
    title = "a death" if status is None else f"exit status {status}"
    return Report.of(results, title=title)


def _who(pid: int | None) -> str:
    return f"pid {pid}" if pid is not None else ""


def _sigkill(
    status: int | None,
    pid: int | None,
    others: list[OomKill],
    *,
    source: str,
    when: str,
    now: float,
) -> list[Result]:
    if pid is None and others:
        kill = others[-1]
        found = _oom(kill, source, now, f"pid {kill.pid}")
        if status is not None:
            return [
                Result(
                    found.check,
                    found.status,
                    found.where,
                    f"{found.message}; if pid {kill.pid} is the process that exited {status}, "
                    "it was OOM-killed (give --pid to be sure)",
                    found.fix,
                )
            ]
        return [found]
    results: list[Result] = []
    if others:
        kill = others[-1]
        results.append(
            error(
                "oom-kill-child",
                Where(source, None, f"pid {kill.pid}"),
                f"the kernel OOM-killed pid {kill.pid} ({kill.task}) {_ago(now - kill.at)} ago, "
                f"not pid {pid}: another process of the container (a worker, a child); "
                f"Kubernetes may report the container OOMKilled for it (kubernetes #104454, "
                f"#78973): kernel: {kill.lines[-1]}",
                "give that process memory of its own (a lower working set, or a limit warden "
                "watches: --memory-limit), or raise the container's limit",
            )
        )
    if status is not None:
        results.append(
            error(
                "sigkill",
                Where(source, None, _who(pid)),
                f"exited {status} (128 + SIGKILL) and the kernel's log has no OOM kill of "
                f"{_who(pid) or 'it'} {when}: killed from outside, not an OOM kill (kill -9, "
                "or a manager's SIGKILL when its grace period ran out: the kubelet after "
                "terminationGracePeriodSeconds, systemd after TimeoutStopSec)",
                "if a manager killed it, give the stop more time (warden doctor on the "
                "manifest or unit checks the sums); else find who sends kill -9",
            )
        )
    return results


def _oom(kill: OomKill, source: str, now: float, who: str) -> Result:
    memory = ""
    if kill.usage is not None and kill.limit is not None:
        memory = f"; its cgroup used {_mib(kill.usage)} of {_mib(kill.limit)}"
    where = f" in memory cgroup {kill.memcg}" if kill.memcg else ""
    scope = (
        "the whole machine ran out of memory"
        if kill.constraint == "CONSTRAINT_NONE"
        else "its memory cgroup reached its limit"
    )
    return error(
        "oom-kill",
        Where(source, None, who),
        f"OOM-killed by the kernel {_ago(now - kill.at)} ago: {kill.task} (pid {kill.pid}){where}, "
        f"resident {_mib(kill.rss)}{memory}; {scope}. kernel: {kill.lines[-1]}",
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
