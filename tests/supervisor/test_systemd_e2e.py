"""Issue 4 end to end: ``warden run`` as a real process between a program and a systemd above it.

The receiver standing for systemd (:class:`Manager`) is warden's own ``NOTIFY_SOCKET``; the
programs are real sd_notify clients (the ``systemd-notify`` binary, the ``sdnotify`` package,
raw datagrams). Each test checks what warden relays upward and in which order, and what it
does to the program (the readiness gate, the child watchdog, the ready timeout).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.supervisor._systemd_peers import (
    WAIT_FOR_RELEASE,
    Manager,
    closing_reason,
    free_port,
    gone,
    make_fifo,
    needs,
    release,
)
from tests.supervisor.conftest import Processes, wait_until

SYSTEMD_NOTIFY = shutil.which("systemd-notify")

#: A raw sd_notify client for the child scripts: no library of warden's in the program.
SEND = """\
import array, os, select, socket
_sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
def send(text, fds=()):
    rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]
    _sock.sendmsg([text.encode()], rights if fds else [], 0, os.environ["NOTIFY_SOCKET"])
def barrier():
    read_end, write_end = os.pipe()
    send("BARRIER=1", [write_end])
    os.close(write_end)
    poller = select.poll()
    poller.register(read_end, select.POLLHUP)
    assert poller.poll(20_000), "BARRIER=1 not answered"
"""


@pytest.mark.skipif(SYSTEMD_NOTIFY is None, reason="needs systemd-notify")
def test_systemd_notify_ready_is_relayed_then_stopping_on_sigterm(
    procs: Processes, manager: Manager
) -> None:
    """The real ``systemd-notify --ready --status=...`` (it waits on BARRIER=1) as the program's
    client: upward, the STATUS and then READY=1; SIGTERM gives STOPPING=1 and exit 143."""
    # systemd-notify sends with its parent's pid (sd_pid_notify(getppid())), so the main pid,
    # sh, is the sender as warden sees it; an unprivileged sender cannot claim another pid and
    # the kernel stamps its own, which only --notify-access all accepts.
    access = [] if os.geteuid() == 0 else ["--notify-access", "all"]
    script = "systemd-notify --ready --status=booted; echo notify-exit $?; exec sleep 1000"
    warden = procs.warden("--ready", "notify", *access, "--", "sh", "-c", script, env=manager.env)
    warden.out.wait_for(r"^notify-exit 0$")  # its BARRIER was answered: it did not fail
    ready = manager.wait_for("READY", "1")
    assert manager.up_to(ready)[0] == {"STATUS": "booted"}
    assert [m for m in manager.up_to(ready) if "READY" in m] == [ready.fields]
    warden.err.wait_for(r'"event": "state", "state": "ready"')  # and warden's log says so

    warden.kill(signal.SIGTERM)
    stopping = manager.wait_for("STOPPING", "1")
    assert "EXTEND_TIMEOUT_USEC" in stopping.fields
    assert warden.wait() == 128 + signal.SIGTERM
    assert all("READY" not in m for m in manager.after(ready))


@needs("sdnotify")
def test_sdnotify_client_ready_is_relayed_only_after_the_program_sent_it(
    procs: Processes, manager: Manager, tmp_path: Path
) -> None:
    """The ``sdnotify`` package as the program's client. The program sends STATUS and blocks;
    nothing says READY upward until it sends READY=1, and warden's READY follows it."""
    gate = make_fifo(tmp_path / "go")
    script = procs.script(
        "sdnotify_child.py",
        "import time\nimport sdnotify\n"
        "notifier = sdnotify.SystemdNotifier()\n"
        'notifier.notify("STATUS=loading\\nEXTEND_TIMEOUT_USEC=5000000")\n'
        + WAIT_FOR_RELEASE.format(fifo=str(gate))
        + 'print("sending READY", time.monotonic(), flush=True)\n'
        'notifier.notify("READY=1")\n'
        "time.sleep(1000)\n",
    )
    warden = procs.warden("--ready", "notify", "--", script, env=manager.env)
    status = manager.wait_for("STATUS", "loading")
    extend = manager.wait_for("EXTEND_TIMEOUT_USEC")
    assert extend.fields == {"EXTEND_TIMEOUT_USEC": "5000000"}
    # Datagrams from warden arrive in order: a READY sent before these would be listed here.
    assert all("READY" not in m for m in manager.drain())
    assert not [e for e in warden.events("state") if e["name"] == "ready"]

    release(gate)
    sent_at = float(warden.out.wait_for(r"^sending READY (\S+)$").group(1))
    ready = manager.wait_for("READY", "1")
    assert ready.at > sent_at
    assert manager.received.index(ready) > manager.received.index(status)
    warden.kill(signal.SIGTERM)
    manager.wait_for("STOPPING", "1")
    assert warden.wait() == 128 + signal.SIGTERM


RELOADER = (
    SEND
    + """\
import signal, time
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
send("READY=1")
while True:
    signal.sigwait({signal.SIGHUP})
    send(f"RELOADING=1\\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")
    print("reloading", flush=True)
    send("READY=1")
"""
)


def test_reload_of_the_program_is_relayed(procs: Processes, manager: Manager) -> None:
    """SIGHUP to warden (--on-hup forward) reaches the program, which reloads in place
    (RELOADING=1, then READY=1): upward, RELOADING=1 with MONOTONIC_USEC, then READY=1 again;
    and a second time."""
    script = procs.script("reloader.py", RELOADER)
    warden = procs.warden("--ready", "notify", "--on-hup", "forward", "--", script, env=manager.env)
    ready = manager.wait_for("READY", "1")
    for _ in range(2):
        before = time.monotonic_ns() // 1000
        warden.kill(signal.SIGHUP)
        reloading = manager.wait_for("RELOADING", "1", after=ready)
        assert manager.between(ready, reloading) == [reloading.fields]
        assert before <= int(reloading.fields["MONOTONIC_USEC"]) <= time.monotonic_ns() // 1000
        ready = manager.wait_for("READY", "1", after=reloading)
        assert manager.between(reloading, ready) == [ready.fields]
    warden.kill(signal.SIGTERM)
    manager.wait_for("STOPPING", "1", after=ready)
    assert warden.wait() == 128 + signal.SIGTERM
    assert warden.out.count("^reloading$") == 2  # (read once warden's pipes are closed)


#: No core file from the SIGABRT the watchdog sends (warden's SIGABRT is the point, not a core).
NO_CORE = "import resource\nresource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"

PINGER = (
    SEND
    + NO_CORE
    + """\
import os, time
print("watchdog", os.environ["WATCHDOG_USEC"], os.environ["WATCHDOG_PID"], os.getpid(), flush=True)
for _ in range(8):  # 1.6 s of pings every 0.2 s: past the 1 s interval, alive only by pinging
    send("WATCHDOG=1")
    time.sleep(0.2)
print("stopped pinging", flush=True)
time.sleep(1000)
"""
)


def test_watchdog_kills_a_program_that_stops_pinging(procs: Processes) -> None:
    """``--watchdog 1s``: pings keep the program alive past the interval; once they stop,
    SIGABRT, reason ``watchdog timeout``, and with --restart no warden exits 134."""
    script = procs.script("pinger.py", PINGER)
    warden = procs.warden("--watchdog", "1s", "--restart", "no", "--", script)
    usec, watchdog_pid, pid = warden.out.wait_for(r"^watchdog (\d+) (\d+) (\d+)$").groups()
    procs.track(int(pid))
    assert usec == "1000000"
    assert watchdog_pid == pid  # WATCHDOG_PID is the program's own pid, as systemd sets it
    warden.out.wait_for("^stopped pinging$")  # so 1.6 s of pings kept it alive
    assert warden.wait() == 128 + signal.SIGABRT
    fired = warden.events("watchdog")
    assert [(e["name"], e["outcome"]) for e in fired] == [(f"pid {pid}", "timeout")]
    ends = [str(e["detail"]) for e in warden.events("child") if e.get("name") == f"pid {pid}"]
    assert any(d.startswith("watchdog timeout") for d in ends), ends


TRIGGER = (
    SEND
    + NO_CORE
    + """\
import time
send("READY=1")
{wait}print("triggering", flush=True)
send("WATCHDOG=trigger")
time.sleep(1000)
"""
)


def test_watchdog_trigger_aborts_at_once(
    procs: Processes, manager: Manager, tmp_path: Path
) -> None:
    """WATCHDOG=trigger: the program reports itself broken; SIGABRT long before the 60 s."""
    gate = make_fifo(tmp_path / "go")
    script = procs.script(
        "trigger.py", TRIGGER.format(wait=WAIT_FOR_RELEASE.format(fifo=str(gate)))
    )
    warden = procs.warden("--ready", "notify", "--watchdog", "60s", "--", script, env=manager.env)
    manager.wait_for("READY", "1")  # the gate passed: the child watchdog is running
    release(gate)
    warden.out.wait_for("^triggering$")
    assert warden.wait() == 128 + signal.SIGABRT
    assert [e["outcome"] for e in warden.events("watchdog")] == ["timeout"]
    assert any(
        str(e.get("detail", "")).startswith("watchdog timeout") for e in warden.events("child")
    )


TRIGGER_IN_READY = (
    SEND
    + NO_CORE
    + """\
send("READY=1\\nWATCHDOG=trigger")
barrier()  # warden has handled the datagram: a SIGABRT it sent is already pending
print("survived", flush=True)
"""
)


def test_watchdog_trigger_in_the_ready_datagram(procs: Processes) -> None:
    """READY=1 and WATCHDOG=trigger in one datagram: the trigger must not be lost."""
    script = procs.script("trigger_in_ready.py", TRIGGER_IN_READY)
    warden = procs.warden("--ready", "notify", "--watchdog", "60s", "--", script)
    assert warden.wait() == 128 + signal.SIGABRT
    assert warden.out.count("^survived$") == 0


def test_not_ready_in_time_is_killed_with_the_reason(procs: Processes, manager: Manager) -> None:
    """``--ready http://... --ready-timeout 1s -- sleep 1000`` with nothing answering: the
    program is killed, the reason logged, a final line, a non-zero exit, no READY=1 upward."""
    port = free_port()  # nobody listens: every probe is refused
    warden = procs.jumped(  # on a clock the test jumps over the second
        "--ready",
        f"http://127.0.0.1:{port}/",
        "--ready-timeout",
        "1s",
        "--",
        "sleep",
        "1000",
        env=manager.env,
    )
    pid = int(warden.err.wait_for(r'"name": "pid (\d+)", "detail": "started: sleep 1000"').group(1))
    warden.jump(1)  # the gate's timeout, armed with the start
    code = warden.wait()
    assert code != 0
    assert closing_reason(warden.err.text()) == "the program failed to become ready within 1s"
    failed = [e for e in warden.events("child") if e.get("outcome") == "failed"]
    assert [e["detail"] for e in failed] == ["not ready: failed to become ready within 1s"]
    assert gone(pid)
    assert all("READY" not in m for m in manager.drain())


CHECK = """\
import sys
from pathlib import Path
with open(sys.argv[1], "a") as runs:
    runs.write("run\\n")
sys.exit(0 if Path(sys.argv[2]).exists() else 1)
"""


def test_exec_gate_holds_ready_until_the_check_succeeds(
    procs: Processes, manager: Manager, tmp_path: Path
) -> None:
    """``--ready exec:CMD``: warden runs the check until it exits 0; READY=1 goes upward only
    then (the check here succeeds once a file exists)."""
    runs, flag = tmp_path / "runs", tmp_path / "flag"
    check = shlex.join([sys.executable, procs.script("check.py", CHECK), str(runs), str(flag)])
    warden = procs.warden("--ready", f"exec:{check}", "--", "sleep", "1000", env=manager.env)
    wait_until(lambda: runs.exists() and runs.read_text().count("run") >= 2, "two failed checks")
    assert all("READY" not in m for m in manager.drain())
    flag.touch()
    manager.wait_for("READY", "1")
    warden.err.wait_for('"outcome": "ready"')  # the log is read on another thread
    ready = [e for e in warden.events("child") if e.get("outcome") == "ready"]
    assert [e["detail"] for e in ready] == [f"gate: exec:{check}"]
    warden.kill(signal.SIGTERM)
    assert warden.wait() == 128 + signal.SIGTERM
