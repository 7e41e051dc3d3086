"""``warden doctor --why [STATUS] [--pid PID] [--since DURATION]``: why a process died.

From what the machine still knows: the exit status (137 is 128 + SIGKILL, 143 is 128 +
SIGTERM, 124 warden's deadline, 4 never ready...), the kernel's log (its OOM kills, with the
kernel's own lines) and the memory cgroup's ``oom_kill`` counter. It tells apart:

* an OOM kill of the process itself (``oom-kill``): the kernel's ``Killed process PID``;
* an OOM kill of another process in the container (``oom-kill-child``), which Kubernetes
  may report as the container's ``OOMKilled`` (kubernetes/kubernetes #104454, #78973), or
  not at all;
* a SIGKILL from outside (``sigkill``): ``kill -9``, or a manager whose grace period ran out
  (said only when the kernel's log can be read: without it, doctor cannot tell);
* a SIGTERM the program did not handle (``sigterm-unhandled``): it died of the signal's
  default action instead of stopping on its own;
* warden's own deadline (``deadline``, 124), a readiness gate never passed (``not-ready``, 4),
  a command that could not run (``exec``, 126 and 127), another signal or code.

Another process's OOM kill counts only where it can be tied to the death: in the dead
process's memory cgroup (the one this runs in: a container's), and before the death
(``--ago``). On a host (scope ``/``) no other process's kill counts. Any status but 0 is a
failure: an error, exit 1.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable
from pathlib import Path

from ..memory import MemoryUnavailableError, find_memory_cgroup
from ..memory import _parse_keyed as parse_keyed
from ._kernel_log import KernelLine, OomKill, oom_kills, read_kernel_log
from ._results import Report, Result, Where, error, ok, warning

_CODES = {
    0: ("exit-code", "ok", "exited 0: a clean stop"),
    1: (
        "exit-code",
        "error",
        "exited 1: the program's own failure, or warden's (it gave up on "
        "a crash loop, or could not start the program: its last line says which)",
    ),
    2: ("exit-code", "error", "exited 2: a usage error (a bad option or WARDEN_* value)"),
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


#: An OOM kill logged this long after the death said by ``ago`` still counts as before it:
#: ``--ago`` is read from a person's clock (kubectl's "Finished" is to the second).
_AGO_SLACK = 1.0


def explain_death(
    status: int | None = None,
    *,
    pid: int | None = None,
    since: float | None = None,
    ago: float | None = None,
    kernel: tuple[list[KernelLine], str] | None = None,
    scope: str | None = None,
    now: float | None = None,
    read: Callable[[], tuple[list[KernelLine], str]] = read_kernel_log,
) -> Report:
    """Why a process ended with ``status`` (an exit code as a shell shows it, 128 + N for
    signal N), from the kernel's log since ``since`` seconds ago (default: since boot).

    ``pid``: the process that died, as the kernel numbers it (warden's log names it); an OOM
    kill of it counts wherever it was. ``ago``: it died that many seconds ago. ``scope``: the
    memory cgroup the dead process was in, as the kernel's log names cgroups (default: the one
    this runs in: inside a container, the container's). An OOM kill of *another* process counts
    only inside that cgroup, and only before the death (when ``ago`` says when it was; without
    it, it is a note, not a finding). With scope ``/`` (a host, or a container with a cgroup
    namespace of its own) the dead process's cgroup is not known: no other process's OOM kill
    counts. ``kernel``: the log and its name (tests); read from the machine with ``read`` when
    None.
    """
    now = time.monotonic() if now is None else now
    results: list[Result] = []
    notes: list[tuple[str, str]] = []
    readable = True
    try:
        lines, source = kernel if kernel is not None else read()
    except OSError as exc:
        readable = False
        reason = exc.strerror or str(exc)  # the sentence, not "[Errno 13] ..."
        results.append(
            warning(
                "kernel-log",
                Where("the kernel's log"),
                f"{reason}: an OOM kill cannot be told from any other death here",
                "run warden doctor --why as root, or on the host (the node)",
            )
        )
        lines, source = [], "the kernel's log"
    scope = _own_scope() if scope is None else scope
    died = None if ago is None else now - ago
    window = [line for line in lines if since is None or line.at >= now - since]
    kills = oom_kills(window)
    ours = [kill for kill in kills if pid is not None and kill.pid == pid]
    others = [kill for kill in kills if kill.pid != pid and _within(kill, scope)]
    before = [kill for kill in others if died is None or kill.at <= died + _AGO_SLACK]
    when = "since boot" if since is None else f"in the last {_ago(since)}"
    signum = status - 128 if status is not None and 128 < status < 128 + 65 else None
    if ours:
        results.append(_oom(ours[-1], source, now, f"pid {pid}"))
    elif pid is None and before and (status is None or signum == signal.SIGKILL):
        results.append(_oom(before[-1], source, now, f"pid {before[-1].pid}", guess=status))
    else:
        if before and died is not None:
            results.append(_child(before[-1], pid, source, now))
        elif before:  # in its cgroup, but when it died is not known: said, not counted
            latest = before[-1]
            notes.append(
                (
                    source,
                    f"the kernel OOM-killed pid {latest.pid} ({latest.task}) of the same "
                    f"cgroup {_ago(now - latest.at)} ago; if that was before "
                    f"{_who(pid) or 'the death'}, it may be why (give --ago, how long ago it "
                    "died, to tell)",
                )
            )
        # Without --pid, OOM kills doctor cannot tie to the death (outside its cgroup, or
        # the cgroup not known) are said, not taken for it; one after the death is not it.
        unseen = [k for k in kills if died is None or k.at <= died + _AGO_SLACK]
        unseen = unseen if pid is None else []
        if not readable:
            results += _blind(status, signum, pid)
        else:
            results.append(_by_status(status, signum, pid, source, when=when, unseen=unseen))
    counter = _counter(ours[-1] if ours else (before[-1] if before else None))
    if counter is not None:
        results.append(counter)
    title = "a death" if status is None else f"exit status {status}"
    return Report.of(results, notes, title=title)


def _own_scope() -> str:
    """The memory cgroup this runs in, as the kernel's log names cgroups ("/" on a host)."""
    try:
        own = find_memory_cgroup()
    except MemoryUnavailableError:
        return "/"
    relative = own.path.relative_to(own.mount).as_posix()
    return "/" if relative == "." else "/" + relative


def _within(kill: OomKill, scope: str) -> bool:
    """Whether ``kill`` was in the cgroup ``scope`` (or below it). Never for scope ``/``: the
    dead process's cgroup is not known there, and any kill of the machine would do."""
    if scope == "/" or kill.memcg is None:
        return False
    return kill.memcg == scope or kill.memcg.startswith(scope.rstrip("/") + "/")


def _blind(status: int | None, signum: int | None, pid: int | None) -> list[Result]:
    """What the status says when the kernel's log cannot be read: no claim about OOM kills."""
    if status is None:
        return []  # the kernel-log warning says why nothing can be said
    if signum != signal.SIGKILL:
        return [_by_status(status, signum, pid, "the kernel's log", when="", unseen=[])]
    return [
        error(
            "sigkill",
            Where("the kernel's log", None, _who(pid)),
            f"exited {status} (128 + SIGKILL): killed by SIGKILL, by the kernel's OOM killer "
            "or from outside (kill -9, a manager's grace period running out); without the "
            "kernel's log doctor cannot tell which",
            "run warden doctor --why as root or on the host, where the kernel's log can be "
            "read; or look at the memory cgroup's oom_kill counter",
        )
    ]


def _who(pid: int | None) -> str:
    return f"pid {pid}" if pid is not None else ""


def _by_status(
    status: int | None,
    signum: int | None,
    pid: int | None,
    source: str,
    *,
    when: str,
    unseen: list[OomKill],
) -> Result:
    """What the status says. ``unseen``: OOM kills that cannot be tied to the death (no
    ``--pid``, and not in the dead process's cgroup, or not known to be)."""
    where = Where(source, None, _who(pid))
    if status is None:
        if unseen:
            return _unseen(unseen, source, when)
        return ok("oom-kill", where, f"no OOM kill in the kernel's log {when}")
    if signum == signal.SIGKILL:
        return _sigkill(status, where, when, unseen)
    if signum == signal.SIGTERM:
        return error(
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


def _sigkill(status: int, where: Where, when: str, unseen: list[OomKill]) -> Result:
    if unseen:
        latest = unseen[-1]
        return error(
            "sigkill",
            where,
            f"exited {status} (128 + SIGKILL): an OOM kill or a kill from outside; the "
            f"kernel's log has {_count(len(unseen), 'OOM kill')} {when} that may or may "
            f"not be this one (the latest: pid {latest.pid} ({latest.task}){_in(latest)}), "
            "and without --pid doctor cannot tell",
            "give --pid (warden's log names the program's pid) to tell an OOM kill from a "
            "kill from outside",
        )
    return error(
        "sigkill",
        where,
        f"exited {status} (128 + SIGKILL) and the kernel's log has no OOM kill of "
        f"{where.subject or 'any process'} {when}: killed from outside, not an OOM kill "
        "(kill -9, or a manager's SIGKILL when its grace period ran out: the kubelet after "
        "terminationGracePeriodSeconds, systemd after TimeoutStopSec)",
        "if a manager killed it, give the stop more time (warden doctor on the manifest or "
        "unit checks the sums); else find who sends kill -9",
    )


def _unseen(kills: list[OomKill], source: str, when: str) -> Result:
    latest = kills[-1]
    return warning(
        "oom-kill",
        Where(source, None, ""),
        f"the kernel's log has {_count(len(kills), 'OOM kill')} {when} that cannot be tied to "
        f"this death here (the latest: pid {latest.pid} ({latest.task}){_in(latest)})",
        "give --pid, or run this inside the container that died",
    )


def _in(kill: OomKill) -> str:
    return f" in memory cgroup {kill.memcg}" if kill.memcg else ""


def _count(number: int, word: str) -> str:
    return f"{number} {word}{'' if number == 1 else 's'}"


def _child(kill: OomKill, pid: int | None, source: str, now: float) -> Result:
    """An OOM kill of another process than the one that died, in its cgroup (a worker, a
    child), before the death."""
    other = f"not pid {pid}: " if pid is not None else ""
    return error(
        "oom-kill-child",
        Where(source, None, f"pid {kill.pid}"),
        f"the kernel OOM-killed pid {kill.pid} ({kill.task}) {_ago(now - kill.at)} ago, "
        f"{other}another process of the same cgroup (a worker, a child), before it died; "
        "Kubernetes may report the container as OOMKilled for it whatever the main process "
        f"did (kubernetes #104454, #78973). kernel: {kill.lines[-1]}",
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
        status, ("exit-code", "error", f"exited {status}: the program's own exit code")
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
