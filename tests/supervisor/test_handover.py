"""Handing held sockets to a child: fds 3.., LISTEN_FDS/LISTEN_FDNAMES, LISTEN_PID == its pid.

Every child is a real process inspected through /proc or talking over the real sockets.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.supervisor._socket_peers import (
    DEADLINE,
    Children,
    inheritable_fds,
    open_fds,
    receive_all,
)
from tests.supervisor.conftest import children_of, descendants
from warden.supervisor.process._spawn import SpawnError
from warden.supervisor.sockets._held import HeldSockets
from warden.supervisor.sockets._listenspec import parse_listen

O_CLOEXEC_FLAG = 0o2000000  # as /proc/PID/fdinfo shows "flags:" (octal)
VALID_SIGNALS_MASK = sum(1 << (s - 1) for s in signal.valid_signals())


@pytest.fixture
def held(tmp_path: Path) -> Iterator[HeldSockets]:
    specs = ["web=tcp://127.0.0.1:0", "tcp://127.0.0.1:0", f"api=unix:{tmp_path}/api.sock"]
    sockets = HeldSockets.from_specs([parse_listen(text) for text in specs])
    try:
        yield sockets
    finally:
        sockets.close()


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def proc_environ(pid: int, timeout: float = 10.0) -> dict[str, str]:
    # posix_spawn returns once the child has replaced its memory (vfork semantics), which is
    # before the kernel has laid out the new image's environment: /proc/PID/environ can read
    # empty for a moment. Wait for it to appear.
    deadline = time.monotonic() + timeout
    while not (raw := Path(f"/proc/{pid}/environ").read_bytes()):
        assert time.monotonic() < deadline, f"pid {pid} shows no environment"
        time.sleep(0.001)
    return dict(item.decode().split("=", 1) for item in raw.split(b"\0") if item)


def test_child_gets_its_pid_its_sockets_and_nothing_else(
    children: Children, held: HeldSockets
) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "my-var": "kept",  # not a shell identifier: a /bin/sh shim would drop it
        "spring.profiles.active": "prod",
        "EMPTY": "",
        "LISTEN_PID": "1",  # warden's own, stale: must not reach the child
        "LISTEN_FDS": "9",
    }
    # A blocked and an ignored signal in the spawning thread must not reach the child.
    old_usr2 = signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        pid = children.spawn(
            ["sleep", "60"],
            sockets=held.named_fds,
            env=env,
            pid_variables=("LISTEN_PID", "WATCHDOG_PID"),
        )
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
        signal.signal(signal.SIGUSR2, old_usr2)
    # spawn_with_sockets returns once the shim's exec closed its pipe: /proc shows the program.
    assert Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x0060\x00"  # argv[0] kept
    assert proc_environ(pid) == {
        **env,
        "LISTEN_FDS": "3",
        "LISTEN_FDNAMES": "web:unknown:api",
        "LISTEN_PID": str(pid),
        "WATCHDOG_PID": str(pid),
    }  # and no LC_CTYPE from the shim's locale coercion
    status = proc_status(pid)
    assert int(status["SigBlk"], 16) == 0
    # glibc's posix_spawn leaves its internal signals 32 and 33 ignored (they are not in
    # valid_signals(), so setsigdef cannot name them); every other signal is at its default.
    assert int(status["SigIgn"], 16) & VALID_SIGNALS_MASK == 0
    assert os.getpgid(pid) == pid

    fds = open_fds(pid)
    ours = open_fds(os.getpid())
    for index, one in enumerate(held):
        fd = 3 + index
        assert fds[fd] == f"socket:[{os.fstat(one.sock.fileno()).st_ino}]"
        flags = Path(f"/proc/{pid}/fdinfo/{fd}").read_text().split("flags:")[1].split()[0]
        assert not int(flags, 8) & O_CLOEXEC_FLAG  # the program's own exec keeps them too
    assert {fd: fds[fd] for fd in (0, 1, 2)} == {fd: ours[fd] for fd in (0, 1, 2)}
    # Nothing of this process but what it left inheritable (passed through like tini does).
    passed_through = {fd: t for fd, t in inheritable_fds().items() if fd > 5}
    assert {fd: t for fd, t in fds.items() if fd > 5} == passed_through
    assert children.stop(pid) == -signal.SIGTERM


def test_locale_variable_is_passed_as_given(children: Children) -> None:
    env = {"PATH": os.environ["PATH"], "LC_CTYPE": "C"}  # the shim's Python coerces C
    with socket.socket() as sock:
        pid = children.spawn(["sleep", "60"], sockets=[("x", sock.fileno())], env=env)
        assert proc_environ(pid)["LC_CTYPE"] == "C"


def test_without_sockets_nothing_stale_is_passed(children: Children) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "LISTEN_PID": "1",
        "LISTEN_FDS": "2",
        "LISTEN_FDNAMES": "a:b",
    }
    plain = children.spawn(["sleep", "60"], env=env)  # no shim: nothing needs the pid
    assert proc_environ(plain) == {"PATH": env["PATH"]}
    watched = children.spawn(["sleep", "60"], env=env, pid_variables=["LISTEN_PID", "WATCHDOG_PID"])
    assert proc_environ(watched) == {"PATH": env["PATH"], "WATCHDOG_PID": str(watched)}


@pytest.mark.parametrize(
    ("setup", "code", "why"),
    [
        (None, 127, "command not found in PATH"),
        ("", 126, "permission denied"),
        ("echo no interpreter line\n", 126, "exec format error"),
        ("#!/nonexistent/interpreter\n", 127, "no such file (or its #! interpreter"),
    ],
)
def test_exec_failure_is_a_spawn_error(
    tmp_path: Path, children: Children, setup: str | None, code: int, why: str
) -> None:
    command = "warden-no-such-command"
    if setup is not None:
        script = tmp_path / "prog"
        script.write_text(setup)
        script.chmod(0o644 if not setup else 0o755)
        command = str(script)
    before = set(children_of(os.getpid()))
    with socket.socket() as sock, pytest.raises(SpawnError) as caught:
        children.spawn([command, "arg"], sockets=[("x", sock.fileno())])
    assert caught.value.exit_code == code
    assert why in str(caught.value)
    assert str(caught.value).startswith(f"cannot run {command!r}: ")
    # The shim was reaped: no zombie left behind.
    assert set(children_of(os.getpid())) == before


SWAP = """\
import fcntl, json, os, socket, sys
from warden.supervisor.process._handover import spawn_with_sockets

ports, high = {}, {}
for name in ("a", "b"):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        ports[name] = sock.getsockname()[1]
        high[name] = fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD_CLOEXEC, 100)
for name, target in (("a", 4), ("b", 3)):  # where systemd would have passed them
    os.dup2(high[name], target, inheritable=False)
    os.close(high[name])
child = '''
import json, os, socket, sys
out = {}
for fd in (3, 4):
    s = socket.socket(fileno=fd)
    out[fd] = s.getsockname()[1]
    s.detach()
print(json.dumps(out))
'''
for order in ([("a", 4), ("b", 3)], [("b", 3), ("a", 4)]):
    pid = spawn_with_sockets([sys.executable, "-c", child], sockets=order)
    _, status = os.waitpid(pid, 0)
    assert status == 0, status
print(json.dumps(ports), flush=True)
"""


def test_sources_inside_the_target_range(tmp_path: Path) -> None:
    """Sockets already at 3 and 4 (as systemd passes them), handed over swapped and as-is."""
    run = subprocess.run(
        [sys.executable, "-c", SWAP], capture_output=True, text=True, timeout=DEADLINE, check=True
    )
    *children_out, ports_line = run.stdout.splitlines()
    ports = json.loads(ports_line)
    swapped, same = (json.loads(line) for line in children_out)
    assert swapped == {"3": ports["a"], "4": ports["b"]}  # a (at 4) -> 3, b (at 3) -> 4
    assert same == {"3": ports["b"], "4": ports["a"]}  # dup2 onto the same number: still there


CLIENT = """\
import json, os, socket, sys
from warden.systemd import listen_fds

seen = {
    "pid_matches": os.environ.get("LISTEN_PID") == str(os.getpid()),
    "LISTEN_FDS": os.environ.get("LISTEN_FDS"),
    "LISTEN_FDNAMES": os.environ.get("LISTEN_FDNAMES"),
}
fds = []
for fd in os.listdir("/proc/self/fd"):
    if os.path.exists(f"/proc/self/fd/{fd}"):  # not the one listdir used, closed by now
        fds.append(int(fd))
seen["fds"] = sorted(fds)
sockets = listen_fds()
seen["left_in_env"] = sorted(k for k in os.environ if k.startswith("LISTEN_"))
seen["names"] = [name for name, _ in sockets]
seen["addresses"] = [sock.getsockname() for _, sock in sockets]
seen["inheritable"] = [sock.get_inheritable() for _, sock in sockets]
for name, sock in sockets:
    conn, _ = sock.accept()
    conn.sendall(json.dumps({**seen, "served_by": name}).encode())
    conn.close()
"""


def test_listen_fds_client_in_the_child(
    tmp_path: Path, children: Children, held: HeldSockets
) -> None:
    pid = children.spawn([sys.executable, "-c", CLIENT], sockets=held.named_fds)
    web, unnamed, api = (h.sock.getsockname() for h in held)
    reports = [json.loads(receive_all(where)) for where in (tuple(web), tuple(unnamed), api)]
    assert [r["served_by"] for r in reports] == ["web", "unknown", "api"]
    seen = reports[0]
    assert seen["pid_matches"] is True
    assert (seen["LISTEN_FDS"], seen["LISTEN_FDNAMES"]) == ("3", "web:unknown:api")
    assert seen["left_in_env"] == []
    assert seen["names"] == ["web", "unknown", "api"]
    assert seen["addresses"] == [list(web), list(unnamed), api]
    assert seen["inheritable"] == [False, False, False]  # listen_fds() sets close-on-exec
    # 0-2, the three sockets, and only what this process leaves inheritable (passed through).
    passed_through = {fd for fd in inheritable_fds() if fd > 5}
    assert set(seen["fds"]) == {0, 1, 2, 3, 4, 5} | passed_through
    assert children.wait(pid) == 0


ACTIVATED = """\
import os, sys
from warden.supervisor.process._handover import spawn_with_sockets
from warden.supervisor.sockets._held import HeldSockets

held = HeldSockets.from_environment()
print("held", *held.describe(), "env", *sorted(k for k in os.environ if k.startswith("LISTEN_")),
      flush=True)
pid = spawn_with_sockets([sys.executable, "-c", sys.argv[1]], sockets=held.named_fds)
_, status = os.waitpid(pid, 0)
held.close()
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not shutil.which("systemd-socket-activate"), reason="needs systemd")
def test_socket_activated_warden_hands_its_sockets_on(tmp_path: Path) -> None:
    """systemd-socket-activate stands in for systemd starting a warden with LISTEN_FDS."""
    web, admin = tmp_path / "web.sock", tmp_path / "admin.sock"
    activator = subprocess.Popen(
        [
            "systemd-socket-activate",
            f"--listen={web}",
            f"--listen={admin}",
            "--fdname=web:admin",
            sys.executable,
            "-c",
            ACTIVATED,
            CLIENT,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        # The activator listens first and starts the program at the first connection; our
        # connect only needs the socket file, which exists once the activator says so.
        assert activator.stderr is not None
        for line in activator.stderr:
            if f"Listening on {admin}" in line:
                break
        reports = [json.loads(receive_all(str(where))) for where in (web, admin)]
        assert [r["served_by"] for r in reports] == ["web", "admin"]
        assert reports[0]["pid_matches"] is True
        assert reports[0]["addresses"] == [str(web), str(admin)]
        stdout, _ = activator.communicate(timeout=DEADLINE)
        assert activator.returncode == 0
        assert stdout.split() == [
            "held",
            f"web=unix:{web}",
            "(fd",
            "3)",
            f"admin=unix:{admin}",
            "(fd",
            "4)",
            "env",
        ]
    finally:
        if activator.poll() is None:  # and the program it started, in a group of its own
            for pid in [activator.pid, *descendants(activator.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            activator.communicate(timeout=DEADLINE)


def test_a_shim_that_fails_before_the_exec_is_a_spawn_error_not_a_started_program() -> None:
    from warden.supervisor.process._handover import spawn_with_sockets

    # The kernel refuses signal 999 for PR_SET_PDEATHSIG: the shim's own set-up fails, and
    # says so, instead of exiting 1 as if the program had run and crashed.
    with pytest.raises(SpawnError, match="Invalid argument"):
        spawn_with_sockets(["true"], parent_death_signal=999)
