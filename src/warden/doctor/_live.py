"""``warden doctor --live``: the machine or container it runs in, as ``warden run`` would see it.

* ``live-memory``: the memory limit warden would read (its cgroup, v1 or v2, with the
  ancestors' limits) against the node's memory;
* ``live-pid1``: PID 1 is warden or an init (it reaps and forwards signals), not a shell;
* ``live-nofile``: the open-files limit;
* ``live-oom-score``: ``oom_score_adj``, and whether warden may lower its own;
* ``live-runtime``: the control socket's and the notify sockets' directories are usable.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

from .._paths import default_control_path, runtime_dir
from .._unix import SUN_PATH_MAX, path_bytes, untrusted_path
from ..memory import MemoryUnavailableError, find_memory_cgroup
from ..memory import _limit_of as limit_of
from ..memory import _parse_meminfo as parse_meminfo
from ._commands import warden_arguments
from ._results import Report, Result, Where, error, ok, warning

_INITS = frozenset(
    {
        "tini",
        "tini-static",
        "dumb-init",
        "catatonit",
        "docker-init",
        "systemd",
        "init",
        "s6-svscan",
        "runsvdir",
        "runit",
    }
)
_SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh"})
_CAP_SYS_RESOURCE = 24
_HERE = "this machine"


def check_live(root: Path = Path("/")) -> Report:
    """The report on the machine (or container) this runs in."""
    results = [_memory(root), _pid1(root), _nofile(), _oom_score(root), *_runtime()]
    return Report.of(results, title=_HERE)


def _memory(root: Path) -> Result:
    where = Where(_HERE, None, "memory")
    total = parse_meminfo((root / "proc" / "meminfo").read_text()).get("MemTotal", 0)
    try:
        cgroup = find_memory_cgroup(root=root)
    except MemoryUnavailableError as exc:
        return warning(
            "live-memory",
            where,
            f"no memory cgroup warden could read ({exc})",
            "run where the memory controller is mounted (cgroup v2 with memory enabled, or v1)",
        )
    limit = limit_of(cgroup)
    place = f"cgroup v{cgroup.version} {cgroup.path}"
    node = f"the node's {_mib(total)}"
    if limit is None:
        return warning(
            "live-memory",
            where,
            f"{place} has no memory limit: the sentinel's levels are fractions of the node's "
            f"free memory ({node})",
            "set a memory limit on the container (resources.limits.memory, MemoryMax=), or "
            "warden run --memory-limit",
        )
    if total and limit >= total:
        return warning(
            "live-memory",
            where,
            f"{place} limit {_mib(limit)} >= {node}: the node runs out before the limit",
            "set a limit below the node's memory",
        )
    return ok("live-memory", where, f"{place} limit {_mib(limit)} of {node}")


def _pid1(root: Path) -> Result:
    where = Where(_HERE, None, "PID 1")
    try:
        argv = (root / "proc" / "1" / "cmdline").read_bytes().split(b"\0")
        comm = (root / "proc" / "1" / "comm").read_text().strip()
    except OSError as exc:
        return warning("live-pid1", where, f"cannot read PID 1 ({exc.strerror})", "run as root")
    words = [word.decode("utf-8", "replace") for word in argv if word]
    if warden_arguments(words) is not None:
        return ok("live-pid1", where, "PID 1 is warden run: it reaps orphans and forwards signals")
    name = os.path.basename(words[0]) if words else comm  # noqa: PTH119
    if name in _INITS or comm in _INITS:
        return ok("live-pid1", where, f"PID 1 is an init ({name}): it reaps and forwards signals")
    if name in _SHELLS or comm in _SHELLS:
        return error(
            "live-pid1",
            where,
            f"PID 1 is a shell ({name}): it does not pass SIGTERM on, so a stop ends in SIGKILL",
            'start warden in exec form: ENTRYPOINT ["warden", "run", ..., "--"], or exec it',
        )
    return warning(
        "live-pid1",
        where,
        f"PID 1 is {name}, neither warden nor an init: orphans it does not wait for stay "
        "zombies, and signals reach only what it passes them to",
        "make warden PID 1 (exec form), or put an init (tini) in front",
    )


def _nofile() -> Result:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    where = Where(_HERE, None, "open files")
    said = f"the open-files limit is {soft} (hard {hard})"
    fix = "raise it: ulimit -n 1024, LimitNOFILE= in the unit, or the runtime's --ulimit"
    if soft < 64:
        return error("live-nofile", where, f"{said}: too few for warden and a server", fix)
    if soft < 1024:
        return warning("live-nofile", where, f"{said}: a server runs out under load", fix)
    return ok("live-nofile", where, said)


def _oom_score(root: Path) -> Result:
    where = Where(_HERE, None, "oom_score_adj")
    try:
        score = int((root / "proc" / "self" / "oom_score_adj").read_text())
        status = (root / "proc" / "self" / "status").read_text()
    except (OSError, ValueError) as exc:
        return warning("live-oom-score", where, f"cannot read it ({exc})", "run on Linux")
    caps = next(
        (int(line.split()[1], 16) for line in status.splitlines() if line.startswith("CapEff:")),
        0,
    )
    lower = (
        "warden can lower its own to -1000 (CAP_SYS_RESOURCE)"
        if caps >> _CAP_SYS_RESOURCE & 1
        else "warden cannot go below it (no CAP_SYS_RESOURCE): the OOM killer may pick warden "
        "as readily as the program"
    )
    if score >= 900:
        return warning(
            "live-oom-score",
            where,
            f"oom_score_adj {score}: the first the OOM killer picks on the node (a BestEffort "
            f"pod?); {lower}",
            "set memory requests (and limits) for the container",
        )
    return ok("live-oom-score", where, f"oom_score_adj {score}; {lower}")


def _runtime() -> list[Result]:
    control = os.environ.get("WARDEN_CONTROL") or default_control_path()
    results = [_directory("control socket", control, control)]
    notify = f"{runtime_dir().rstrip('/')}/warden-{'x' * 12}/notify"
    results.append(_directory("notify sockets", notify, runtime_dir()))
    return results


def _directory(what: str, socket_path: str, shown: str) -> Result:
    where = Where(_HERE, None, what)
    directory = os.path.dirname(socket_path)  # noqa: PTH120
    existing = directory
    while existing and not os.path.isdir(existing):  # noqa: PTH112
        existing = os.path.dirname(existing)  # noqa: PTH120
    if path_bytes(socket_path) > SUN_PATH_MAX:
        return error(
            "live-runtime",
            where,
            f"{socket_path} is {path_bytes(socket_path)} bytes, above the {SUN_PATH_MAX} an "
            "AF_UNIX address holds",
            "set XDG_RUNTIME_DIR (or --control) to a shorter directory",
        )
    if not os.access(existing or "/", os.W_OK | os.X_OK):
        return error(
            "live-runtime",
            where,
            f"{existing} cannot be written by uid {os.geteuid()}: no {what} there",
            "set XDG_RUNTIME_DIR to a directory of this user's, or give --control PATH",
        )
    problem = untrusted_path(existing)
    if problem is not None:
        return error(
            "live-runtime",
            where,
            f"{shown}: {problem}, so another user could replace warden's sockets",
            "use a directory only this user (or root) can write",
        )
    return ok("live-runtime", where, f"{shown} is usable")


def _mib(value: int) -> str:
    mib = value / 2**20
    return f"{mib / 1024:.1f} GiB" if mib >= 1024 else f"{mib:.0f} MiB"
