"""Why ``warden run`` exits, said once, last, where people look: the log's closing line (at the
level its cause deserves), the termination message file ``kubectl describe pod`` shows (at
most 4096 bytes, never through a planted link), the final STATUS= to a systemd above, and
``warden status`` for the last exit while warden runs."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.supervisor._systemd_peers import Manager, closing, closing_reason
from tests.supervisor.conftest import Processes
from tests.supervisor.test_memory_run import RAMP, Cgroups, cgroups, finish, start, status  # noqa: F401
from warden.supervisor import _termination_log
from warden.supervisor._termination_log import (
    LIMIT,
    TerminationLogError,
    termination_message,
    write_termination_message,
)

# Handles SIGTERM: finishes and exits 0. Prints its pid once it handles it.
POLITE = """\
import os, signal, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print(f"started {os.getpid()}", flush=True)
signal.pause()
"""

# Allocates 1 MiB every 20 ms; on SIGTERM it frees everything and exits 0.
POLITE_RAMP = """\
import os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print(f"started {os.getpid()}", flush=True)
held = []
while True:
    held.append(b"\\1" * 2**20)
    time.sleep(0.02)
"""


def _last(warden_err: str) -> dict[str, object]:
    line = warden_err.strip().splitlines()[-1]
    found = json.loads(line)
    assert isinstance(found, dict) and found["kind"] == "exit", line
    return found


def test_the_program_exits_on_its_own(procs: Processes) -> None:
    warden = procs.warden("--", "sh", "-c", "exit 3")
    assert warden.wait() == 3
    last = _last(warden.err.text())
    assert last["level"] == "warning"
    assert last["message"] == "exit 3: the program exited(3)"
    assert closing(warden.err.text())["cause"] == "program"


def test_a_stop_signal_that_the_program_handles(procs: Processes) -> None:
    warden = procs.warden("--", procs.script("polite.py", POLITE))
    warden.out.wait_for("^started")
    warden.kill(signal.SIGTERM)
    assert warden.wait() == 0
    last = _last(warden.err.text())
    assert (last["level"], last["message"]) == (
        "info",
        "exit 0: stopped by SIGTERM; the program exited(0)",
    )
    data = closing(warden.err.text())
    assert data["stopped_by"] == "SIGTERM" and data["cause"] == "stop"


def test_a_stop_signal_the_program_does_not_handle(procs: Processes) -> None:
    warden = procs.warden("--", "sleep", "60")
    warden.err.wait_for('"kind": "child.started"')
    warden.kill(signal.SIGTERM)
    assert warden.wait() == 128 + signal.SIGTERM
    # Dying of the stop signal a stop asked for is what was asked: said, with how long it
    # took, at info; not a verdict on the program.
    last = _last(warden.err.text())
    assert last["level"] == "info", last
    assert re.fullmatch(
        r"stopped by SIGTERM; the program ended on the stop signal \d+ ms after it was sent: "
        r"killed\(SIGTERM\)",
        closing_reason(warden.err.text()),
    )
    assert closing(warden.err.text())["on_stop_signal"] is True


RERAISES = """import os, signal, sys, time
def graceful(signum, frame):  # as uvicorn does: finish, then die of the signal to report it
    time.sleep(0.3)
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)
signal.signal(signal.SIGTERM, graceful)
print(f"started {os.getpid()}", flush=True)
signal.pause()
"""


def test_a_program_that_reraises_the_stop_signal_after_its_graceful_stop(
    procs: Processes,
) -> None:
    """uvicorn's way: its graceful stop done, it re-raises SIGTERM. Exit 143 (128+15, as tini
    and systemd report it), and the closing line says what happened, not "did not handle
    it", at info."""
    warden = procs.warden("--", procs.script("reraises.py", RERAISES))
    warden.out.wait_for("^started")
    warden.kill(signal.SIGTERM)
    assert warden.wait() == 128 + signal.SIGTERM
    last = _last(warden.err.text())
    assert last["level"] == "info", last
    reason = closing_reason(warden.err.text())
    took = re.fullmatch(
        r"stopped by SIGTERM; the program ended on the stop signal (\d+) ms after it was "
        r"sent: killed\(SIGTERM\)",
        reason,
    )
    assert took is not None, reason
    assert int(took.group(1)) >= 300  # its graceful stop's time, measured
    # The program's end, too, is the stop asked for: at info, not a "warning:" line just
    # above the closing line that says otherwise.
    (ended,) = _facts(warden.err.text(), "child.exited")
    assert ended["level"] == "info", ended
    assert ended["data"]["on_stop_signal"] is True


def test_a_program_killed_by_another_signal_during_a_stop_is_a_warning(
    procs: Processes,
) -> None:
    """Only death of the stop signal warden sent is the stop asked for: a program that
    answers SIGTERM by dying of another signal (here SIGABRT) is still a warning."""
    aborts = procs.script(
        "aborts.py",
        "import os, signal\n"
        "signal.signal(signal.SIGTERM, lambda *_: os.abort())\n"
        "print('started', flush=True)\n"
        "signal.pause()\n",
    )
    warden = procs.warden("--", aborts)
    warden.out.wait_for("^started")
    warden.kill(signal.SIGTERM)
    assert warden.wait() == 128 + signal.SIGABRT
    (ended,) = _facts(warden.err.text(), "child.exited")
    assert ended["level"] == "warning", ended
    assert ended["data"]["on_stop_signal"] is False


def _facts(warden_err: str, kind: str) -> list[dict[str, Any]]:
    found = []
    for line in warden_err.splitlines():
        if line.startswith("{"):
            fact = json.loads(line)
            if fact.get("kind") == kind:
                found.append(fact)
    return found


def test_warden_stop_is_named(procs: Processes) -> None:
    from tests.supervisor.test_upgrade import control

    warden = procs.warden("--", procs.script("polite.py", POLITE))
    warden.out.wait_for("^started")
    assert control(procs.control, "stop")["ok"] is True
    assert warden.wait() == 0
    assert closing_reason(warden.err.text()) == "stopped by warden stop; the program exited(0)"


def test_a_real_oom_kill_leaves_its_reason_in_the_termination_message(
    procs: Processes,
    cgroups: Cgroups,  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    message = tmp_path / "termination-log"
    script = procs.script("ramp.py", RAMP)  # ignores its stop signal at critical
    warden = start(
        procs,
        cgroups,
        "--memory-limit",
        "64M",
        "--termination-log",
        str(message),
        "--",
        script,
        "0",
        "100",
    )
    assert finish(warden, cgroups) == 128 + signal.SIGKILL
    last = _last(warden.err.text())
    assert last["level"] == "error"
    reason = message.read_text()
    assert reason == closing_reason(warden.err.text())
    # "oom-killed: working set 61 of 64 MiB; warned at 80 % 1.2 s before, critical at ...,
    # stopped at critical (...), in vain"
    assert reason.startswith("oom-killed: working set "), reason
    assert " of 64 MiB; warned at 8" in reason and " s before" in reason
    data = closing(warden.err.text())
    memory = data["memory"]
    assert isinstance(memory, dict) and memory["limit"] == 64 * 2**20
    assert memory["working_set"] > 0.8 * 64 * 2**20
    warnings = data["warnings"]
    assert isinstance(warnings, list) and warnings[0]["level"] == "warn"


def test_warden_status_shows_the_last_exit_and_its_reason(
    procs: Processes,
    cgroups: Cgroups,  # noqa: F811 (the fixture)
) -> None:
    script = procs.script("ramp.py", RAMP)
    warden = start(
        procs,
        cgroups,
        "--memory-limit",
        "64M",
        "--restart",
        "on-failure",
        "--backoff-initial",
        "30s",
        "--",
        script,
        "0",
        "100",
    )
    warden.err.wait_for('"kind": "restart"')
    program = status(procs)["program"]
    assert isinstance(program, dict)
    assert program["last_exit"] == "oom-killed"
    assert str(program["last_exit_reason"]).startswith("oom-killed: working set ")
    assert program["last_exit_code"] == 137
    warden.kill(signal.SIGTERM)
    assert finish(warden, cgroups) == 128 + signal.SIGKILL
    reason = closing_reason(warden.err.text())
    assert reason.startswith(
        "stopped by SIGTERM while the program was down (waiting to restart); its last end: "
        "oom-killed: working set "
    )


def test_stopped_by_the_memory_sentinel_before_the_oom_killer(
    procs: Processes,
    cgroups: Cgroups,  # noqa: F811 (the fixture)
) -> None:
    warden = start(procs, cgroups, "--memory-limit", "64M", "--", procs.script("r.py", POLITE_RAMP))
    # Exited 0 on its stop signal, yet no success: Restart=on-failure must bring it back.
    assert finish(warden, cgroups) == 1
    reason = closing_reason(warden.err.text())
    assert reason.startswith("stopped by the memory sentinel at critical ("), reason
    assert reason.endswith(
        " of 64 MiB), before the OOM killer; the program exited(0), counted as a failure so "
        "that it is restarted"
    ), reason
    assert _last(warden.err.text())["level"] == "warning"  # no success: said as a failure


def test_a_program_stopped_at_critical_is_restarted_under_on_failure(
    procs: Processes,
    cgroups: Cgroups,  # noqa: F811 (the fixture)
) -> None:
    """Its clean exit on the stop signal is no success: ``--restart on-failure`` restarts it
    (before, exit 0 ended warden with 0, and systemd's Restart=on-failure left it down)."""
    warden = start(
        procs,
        cgroups,
        "--memory-limit",
        "64M",
        "--restart",
        "on-failure",
        "--",
        procs.script("r.py", POLITE_RAMP),
    )
    warden.err.wait_for('"kind": "restart"')
    restart = next(line for line in warden.err.text().splitlines() if '"kind": "restart"' in line)
    assert "exited(0)" in restart, restart
    warden.kill(signal.SIGTERM)
    finish(warden, cgroups)


def test_the_termination_message_is_cut_at_4096_bytes_on_a_character(
    procs: Processes, tmp_path: Path
) -> None:
    message = tmp_path / "termination-log"
    command = "x" + "é" * 3000  # 6001 bytes: "cannot run 'x" + 2041 é fits in 4095
    warden = procs.warden("--termination-log", str(message), "--", command)
    assert warden.wait() in (126, 127)
    written = message.read_bytes()
    assert len(written) == LIMIT - 1
    text = written.decode("utf-8")  # valid: not cut inside a character
    assert text.startswith("cannot run 'x" + "é" * 2041)
    assert len(closing_reason(warden.err.text()).encode()) > 6000  # the log keeps it whole


def test_no_termination_message_where_there_is_no_file(procs: Processes) -> None:
    if Path(_termination_log.DEFAULT_PATH).exists():
        pytest.skip(f"{_termination_log.DEFAULT_PATH} exists on this machine")
    warden = procs.warden("--", "sh", "-c", "exit 3")
    assert warden.wait() == 3
    assert not Path(_termination_log.DEFAULT_PATH).exists()


def test_the_default_file_is_written_only_where_it_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = tmp_path / "termination-log"
    monkeypatch.setattr(_termination_log, "DEFAULT_PATH", str(default))
    assert write_termination_message("the program exited(3)", None) is None
    assert not default.exists()
    default.write_text("an earlier message, longer than the next one")
    assert write_termination_message("the program exited(3)", None) == str(default)
    assert default.read_text() == "the program exited(3)"


def test_a_planted_symlink_or_hard_link_is_not_written_through(
    procs: Processes, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp: anyone may add a name
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    planted = shared / "termination-log"
    planted.symlink_to(victim)
    os.lchown(planted, 4242, 4242)  # another user's link
    warden = procs.warden("--termination-log", str(planted), "--", "true")
    assert warden.wait() == 0  # the program's code stands
    assert victim.read_text() == "precious\n"
    failed = [e for e in warden.events("termination_log") if e.get("outcome") == "failed"]
    assert failed and "cannot open it" in str(failed[0]["detail"])
    assert closing_reason(warden.err.text()) == "the program exited(0)"  # still said, last
    planted.unlink()
    os.link(victim, planted)
    with pytest.raises(TerminationLogError, match="other names"):
        write_termination_message("the program exited(0)", str(planted))
    assert victim.read_text() == "precious\n"


def test_the_final_status_to_systemd_is_the_reason(procs: Processes, manager: Manager) -> None:
    warden = procs.warden("--", "sh", "-c", "exit 3", env=manager.env)
    assert warden.wait() == 3
    statuses = [m["STATUS"] for m in manager.drain() if "STATUS" in m]
    assert statuses[-1] == "the program exited(3)"


def test_termination_message_bytes() -> None:
    assert termination_message("é" * 3, limit=5) == "éé".encode()
    assert termination_message("abc") == b"abc"


def test_the_deadlines_forced_exit_leaves_its_reason(tmp_path: Path) -> None:
    """A forced exit (124) publishes nothing (the loop may be blocked), but its hook, run on
    the guard thread before os._exit, still writes the termination message."""
    from warden.supervisor import Supervisor, SupervisorOptions

    path = tmp_path / "termination-log"
    options = SupervisorOptions(command=("true",), termination_log=str(path), control=None)
    supervisor = Supervisor(options)
    hooks = supervisor.lifecycle._forced_exit_hooks
    assert supervisor._forced_exit_reason in hooks
    supervisor._forced_exit_reason()
    assert path.read_text() == (
        "warden's shutdown deadline passed (--stop-timeout 10s + 5s): forced exit 124; its "
        "report of what was still running is on stderr"
    )
