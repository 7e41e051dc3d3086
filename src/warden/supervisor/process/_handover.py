"""Starting the child with the held sockets at fds 3.. and ``LISTEN_PID`` equal to its pid.

``man sd_listen_fds``: the sockets are at 3, 4, ... ``LISTEN_FDS`` counts them,
``LISTEN_FDNAMES`` names them, and ``LISTEN_PID`` must be the pid of the process reading them
(gunicorn, uvicorn and ``warden.systemd.listen_fds`` ignore the sockets otherwise). The pid is
unknown before the spawn and warden is multi-threaded, so no Python may run between ``fork``
and ``exec`` (see :mod:`._spawn`). Instead ``posix_spawn`` starts a tiny **exec shim** that
sets the pid variables to its own pid and ``exec``s the command, which keeps the pid.

The shim is ``sys.executable -I -S -c``, not ``/bin/sh -c 'export LISTEN_PID=$$; exec "$@"'``:
measured with dash, a shell drops environment variables whose names are not shell identifiers
(``spring.profiles.active``, ``my-var``) and adds ``PWD``; and distroless images have no
``/bin/sh`` while warden's interpreter is always there. The price is ~15 ms of interpreter
start per spawn. Python's start changes two things the shim undoes before ``exec``: it ignores
SIGPIPE and SIGXFSZ (``exec`` keeps ignored signals; the spawn already reset every disposition
for the shim, as :func:`._spawn.spawn_child` does) and, in the C locale, it coerces the locale
by setting ``LC_CTYPE`` in its environment (PEP 538, even under ``-I``).

``exec`` failures keep :class:`SpawnError` (127/126) instead of turning into the child's exit
status: the shim writes ``errno`` to a close-on-exec pipe when ``execvpe`` fails, and a
successful ``exec`` closes the pipe, which the parent reads to EOF. The command is searched in
the ``PATH`` of the child's environment, and its ``argv[0]`` is kept.

Descriptors: ``posix_spawn``'s ``dup2`` actions put the sockets at 3.., and ``dup2`` clears
close-on-exec on the new fd (``man 2 dup2``), except when source and target are the same
number, where it does nothing (and whether ``posix_spawn`` then clears the flag depends on the
libc version). A source may also sit inside 3..3+n-1 (systemd passed it there) and would be
overwritten by an earlier action. So every source is first duplicated above the range with
``F_DUPFD_CLOEXEC``; the actions then never meet a target and are order-free. Everything else
in warden is close-on-exec and does not reach the program; an fd warden inherited without
close-on-exec (above 3+n) passes through, as with :func:`._spawn.spawn_child` and tini.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import select
import sys
import time
from collections.abc import Mapping, Sequence

from ..._exceptions import ConfigurationError
from ...systemd import LISTEN_FDS_START
from ._spawn import _DEFAULT_IN_CHILD, SpawnError, is_shortage, spawn_child

#: How long the shim may take to reach ``exec``; after that the child is taken as started
#: (a later exec failure then shows as its exit status 127).
SHIM_TIMEOUT = 10.0

_LISTEN_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# argv after -c: errpipe fd, pid variables (comma-separated), original LC_CTYPE ("-": none,
# "=value": that), a cgroup.procs file to join ("-": none), the parent-death signal and the
# parent's pid ("SIG:PID", "-": none), then the command. Signals first: Python ignored SIGPIPE
# and SIGXFSZ and caught SIGINT; a SIGINT before the exec must kill the shim as it would the
# program. PR_SET_PDEATHSIG (1) survives the exec; a parent already gone before it was set
# would never send it, hence the check of the parent's pid after it.
_SHIM = """\
import os, signal, sys
w = int(sys.argv[1])
try:  # any failure before the exec is said on the pipe: never taken for a started program
    for s in (signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(s, signal.SIG_DFL)
    names, ctype, procs, death, argv = *sys.argv[2:6], sys.argv[6:]
    os.set_inheritable(w, False)
    if death != "-":
        import ctypes
        sig, parent = map(int, death.split(":"))
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, sig, 0, 0, 0) != 0:  # PR_SET_PDEATHSIG
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
        if os.getppid() != parent:
            os._exit(128 + sig)
    if procs != "-":  # join the memory cgroup before exec: it allocates nothing outside
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
    env = dict(os.environ)
    if ctype == "-":
        env.pop("LC_CTYPE", None)
    else:
        env["LC_CTYPE"] = ctype[1:]
    for name in filter(None, names.split(",")):
        env[name] = str(os.getpid())
except BaseException as e:
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    if isinstance(e, OSError) and e.errno:
        os.write(w, str(e.errno).encode())
    else:
        os.write(w, f"shim: {type(e).__name__}: {e}".encode()[:500])
    os._exit(126)
try:
    os.execvpe(argv[0], argv, env)
except OSError as e:
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        os.write(w, str(e.errno or 0).encode())
    finally:
        os._exit(127)
"""


def spawn_with_sockets(
    argv: Sequence[str],
    *,
    sockets: Sequence[tuple[str, int]] = (),
    env: Mapping[str, str] | None = None,
    pid_variables: Sequence[str] = ("LISTEN_PID",),
    cgroup_procs: str | None = None,
    parent_death_signal: int | None = None,
) -> int:
    """Start ``argv`` with ``sockets`` (``(name, fd)`` pairs) at fds 3..; return its pid.

    ``parent_death_signal``: the kernel sends it to the program when the *thread* that
    spawned it ends (``PR_SET_PDEATHSIG``, kept across ``exec`` but for a setuid or
    file-capability program): pass it only from a thread that lives as long as the process
    (warden spawns from its event loop, the main thread). It always takes the shim.

    The child gets ``LISTEN_FDS``/``LISTEN_FDNAMES`` and every name in ``pid_variables``
    (``LISTEN_PID``, ``WATCHDOG_PID``) set to its own pid; ``LISTEN_PID`` only when there are
    sockets, and ``LISTEN_*`` inherited from warden's environment are never passed on.
    Otherwise it is started like :func:`._spawn.spawn_child`: its own process group (pid ==
    pgid), default signal dispositions, an empty signal mask. Raises :class:`SpawnError`
    (exit code 127/126) when the command cannot be executed.

    Example:
        >>> pid = spawn_with_sockets(["gunicorn", "app:app"], sockets=held.named_fds)
        ... # doctest: +SKIP
    """
    if not argv:
        raise ConfigurationError("no command to run; give one after --")
    child_env = {
        k: v for k, v in (os.environ if env is None else env).items() if k not in _LISTEN_VARIABLES
    }
    variables = [v for v in pid_variables if sockets or v != "LISTEN_PID"]
    for variable in variables:
        if not _VARIABLE.fullmatch(variable):
            raise ConfigurationError(f"pid variable {variable!r} is not a variable name")
    if sockets:
        for name, _ in sockets:
            if not name or ":" in name or not all(" " <= c <= "~" for c in name):
                raise ConfigurationError(f"socket name {name!r} is not valid in LISTEN_FDNAMES")
        child_env["LISTEN_FDS"] = str(len(sockets))
        child_env["LISTEN_FDNAMES"] = ":".join(name for name, _ in sockets)
    if not sockets and not variables and cgroup_procs is None and parent_death_signal is None:
        return spawn_child(argv, child_env)  # no fd to place, no pid to tell: no shim
    return _spawn_shim(
        argv,
        [fd for _, fd in sockets],
        child_env,
        variables,
        cgroup_procs,
        parent_death_signal=parent_death_signal,
    )


def _spawn_shim(
    argv: Sequence[str],
    fds: Sequence[int],
    env: dict[str, str],
    variables: Sequence[str],
    cgroup_procs: str | None = None,
    *,
    parent_death_signal: int | None = None,
) -> int:
    errpipe = LISTEN_FDS_START + len(fds)  # the shim's end of the pipe, right after the sockets
    ctype = "=" + env["LC_CTYPE"] if "LC_CTYPE" in env else "-"
    shim = [sys.executable, "-I", "-S", "-c", _SHIM, str(errpipe), ",".join(variables), ctype]
    shim.append(cgroup_procs or "-")
    death = "-" if parent_death_signal is None else f"{int(parent_death_signal)}:{os.getpid()}"
    shim.append(death)
    read_end, write_end = os.pipe()  # both close-on-exec (pipe2 O_CLOEXEC)
    try:
        try:
            pid = _posix_spawn([*shim, *argv], env, [*fds, write_end])
        finally:
            os.close(write_end)  # else the parent's own copy keeps the pipe from EOF
        report = _read_until_exec(read_end)
    finally:
        os.close(read_end)
    if report:
        # The shim exits right after writing; reap it as glibc's posix_spawn reaps a child
        # whose exec failed (the supervisor's reaper may have been first: ECHILD).
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        if report.isdigit():
            raise SpawnError(argv[0], OSError(int(report), os.strerror(int(report))))
        # The shim itself failed before the exec (its Python could not run its set-up).
        failure = report.decode(errors="replace")
        raise SpawnError(argv[0], OSError(errno.ENOEXEC, f"warden's exec shim failed: {failure}"))
    return pid


def _posix_spawn(argv: list[str], env: dict[str, str], sources: Sequence[int]) -> int:
    """Spawn with ``sources`` at fds 3, 4, ... in the child (and nothing else added)."""
    # Copies above every target, close-on-exec: never clobbered by an earlier dup2, never
    # equal to their target, and gone from the child at its exec.
    floor = LISTEN_FDS_START + len(sources)
    copies: list[int] = []
    try:
        for fd in sources:
            copies.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor))
        actions = [
            (os.POSIX_SPAWN_DUP2, copy, LISTEN_FDS_START + index)
            for index, copy in enumerate(copies)
        ]
        return os.posix_spawn(
            argv[0],
            argv,
            env,
            file_actions=actions,
            setpgroup=0,
            setsigmask=(),
            setsigdef=_DEFAULT_IN_CHILD,
        )
    except OSError as exc:
        if is_shortage(exc):
            raise  # warden's own shortage (no descriptor, no memory), not the command's fault
        raise SpawnError(argv[0], exc) from exc
    finally:
        for fd in copies:
            os.close(fd)


def _read_until_exec(fd: int) -> bytes:
    """What the shim wrote before its exec closed the pipe (b"" when the exec succeeded)."""
    deadline = time.monotonic() + SHIM_TIMEOUT
    data = b""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while (remaining := deadline - time.monotonic()) > 0:
        if not poller.poll(remaining * 1000):  # EINTR is retried (PEP 475)
            break
        chunk = os.read(fd, 64)
        if not chunk:
            break
        data += chunk
    return data
