"""Issue 19, item 5: a restart that fails for a transient shortage backs off instead of ending.

Real limits on a real ``warden run``: ``prlimit --nofile`` lowered on the running warden (no
descriptor for the next run's notify socket: EMFILE), and a pids cgroup whose ``pids.max`` is
what warden already holds (no process slot for the next spawn: EAGAIN, which applies to root
too, unlike RLIMIT_NPROC). The program ends when the test writes its FIFO, so the restart comes
exactly when the limit is in place. warden used to end with ``main failed: OSError: [Errno 24]
Too many open files`` (exit 1); it now says each failed start (``child.start_deferred``), counts
it (``warden_spawn_failures_total{error=...}``) and tries again after the backoff, until the
shortage passes or the restart limit gives up with its one line.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hardening.conftest import run, warden_argv
from tests.supervisor._systemd_peers import closing_reason, free_port, make_fifo, release
from tests.supervisor.conftest import Processes, Warden, wait_until
from tests.supervisor.test_health_option import get

pytestmark = pytest.mark.timeout(120)

# Prints its pid, then ends with 1 once the test opens and closes its FIFO.
PROGRAM = """\
import os, sys
print(f"started {os.getpid()}", flush=True)
with open(sys.argv[1]) as fifo:
    fifo.read()
sys.exit(1)
"""

FAST_BACKOFF = ("--backoff-initial", "50ms", "--backoff-max", "50ms", "--backoff-jitter", "0")
PIDS = Path("/sys/fs/cgroup/pids")


def _start(procs: Processes, *options: str) -> tuple[Warden, Path]:
    fifo = make_fifo(procs.tmp_path / "end")
    script = procs.script("program.py", PROGRAM)
    warden = procs.warden(
        "--restart", "on-failure", *FAST_BACKOFF, *options, "--", script, str(fifo)
    )
    procs.track(int(warden.out.wait_for(r"^started (\d+)$").group(1)))
    return warden, fifo


def _deferred(warden: Warden) -> list[dict[str, object]]:
    found = []
    for line in list(warden.err.lines):
        if line.startswith("{") and '"child.start_deferred"' in line:
            data = json.loads(line)["data"]
            assert isinstance(data, dict)
            found.append(data)
    return found


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _nofile(pid: int, soft: int) -> None:
    subprocess.run(["prlimit", f"--pid={pid}", f"--nofile={soft}:"], check=True)


needs_prlimit = pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit")


@needs_prlimit
def test_a_restart_out_of_descriptors_backs_off_counts_and_recovers(procs: Processes) -> None:
    port = free_port()
    warden, fifo = _start(procs, "--max-restarts", "unlimited", "--health", f"127.0.0.1:{port}")
    _nofile(warden.pid, _fds(warden.pid))  # not one more: no notify socket for the next run
    release(fifo)  # the program ends: exited(1), restarted after 50 ms
    warden.err.wait_for(r'"kind": "child\.start_deferred"')
    wait_until(lambda: len(_deferred(warden)) >= 3, "three failed starts, each backed off")
    _nofile(warden.pid, 1024)  # the shortage passes: the next try runs the program
    warden.out.wait_for(r"^started (\d+)$", start=1)
    assert warden.proc.poll() is None, "warden is still there"
    deferred = _deferred(warden)
    assert {d["errno"] for d in deferred} == {"EMFILE"}
    attempts = [int(str(d["attempt"])) for d in deferred[:3]]
    assert attempts == sorted(attempts) and len(set(attempts)) == 3  # counted as a crash loop
    assert all("Too many open files" in str(d["error"]) for d in deferred)
    status, body = get(port, "/metrics")
    assert status == 200
    match = re.search(r'^warden_spawn_failures_total\{error="EMFILE"\} (\d+)', body, re.M)
    assert match and int(match.group(1)) == len(_deferred(warden)), body[-2000:]
    warden.kill(15)
    warden.wait()
    assert not any("main failed" in line for line in warden.err.lines)


@needs_prlimit
def test_the_restart_limit_still_gives_up_in_one_line(procs: Processes) -> None:
    warden, fifo = _start(procs, "--max-restarts", "2")
    _nofile(warden.pid, _fds(warden.pid))
    release(fifo)
    assert warden.wait() == 1
    assert len(_deferred(warden)) == 1  # the run's own end, one failed start, then the limit
    assert closing_reason(warden.err.text()) == (
        "giving up after 2 restarts: 3 failures in a row (last: the program could "
        "not be started: Too many open files (EMFILE)); exit code 1"
    )
    assert any('"kind": "give_up"' in line for line in warden.err.lines)


@contextlib.contextmanager
def _pids_cgroup() -> Iterator[Path]:
    """A pids cgroup of the test's own (v1), removed after (its processes moved back out)."""
    if not os.access(PIDS / "cgroup.procs", os.W_OK):
        pytest.skip(f"needs a writable pids cgroup at {PIDS}")
    group = PIDS / f"warden-test-{uuid.uuid4().hex[:8]}"
    group.mkdir()
    try:
        yield group
    finally:
        for pid in (group / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):  # gone meanwhile
                (PIDS / "cgroup.procs").write_text(pid)
        wait_until(lambda: not (group / "cgroup.procs").read_text().split(), "pids cgroup empty")
        group.rmdir()


def test_a_restart_without_a_process_slot_backs_off_and_recovers(procs: Processes) -> None:
    with _pids_cgroup() as group:
        warden, fifo = _start(procs, "--max-restarts", "unlimited")
        (group / "cgroup.procs").write_text(str(warden.pid))  # warden alone, all its threads
        (group / "pids.max").write_text((group / "pids.current").read_text())
        release(fifo)
        wait_until(lambda: len(_deferred(warden)) >= 2, "two failed starts, each backed off")
        (group / "pids.max").write_text("max")
        warden.out.wait_for(r"^started (\d+)$", start=1)
        assert {d["errno"] for d in _deferred(warden)} == {"EAGAIN"}
        warden.kill(15)
        warden.wait()


@needs_prlimit
@pytest.mark.parametrize("policy", ["always", "no"])
def test_a_first_start_out_of_descriptors(tmp_path: Path, policy: str) -> None:
    """The first start follows the restart policy too: retried under ``always`` (then given
    up in one line), one line at once under ``no`` (as before). The limit is scanned, as in
    ``test_start_failures``: the descriptors warden needs before the spawn vary a little."""
    marker = tmp_path / "ran"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env["WARDEN_CONTROL"] = str(tmp_path / "control.sock")
    deferred = 0
    for limit in range(8, 24):
        options = ["--restart", policy, "--max-restarts", "1", *FAST_BACKOFF]
        argv = warden_argv("run", *options, "--", "touch", str(marker))
        result = run(["prlimit", f"--nofile={limit}:", *argv], env=env)
        assert "Traceback" not in result.stderr
        if marker.exists():
            break  # enough descriptors from here on
        assert result.returncode == 1, result.stderr[-2000:]
        # Out of descriptors before the lifecycle could open its own pipe, warden has no log
        # yet and says it in a plain line; after that, its closing fact says it.
        last = result.stderr.splitlines()[-1]
        if last.startswith("{"):
            last = closing_reason(result.stderr)
        last = last.removeprefix("warden run: ")
        if "child.start_deferred" in result.stderr:
            deferred += 1
            assert policy == "always"
            assert last.startswith("giving up after 1 restart: 2 failures in a row")
            assert "Too many open files (EMFILE)" in last
        else:
            assert last.startswith("the program was not started: "), last
            assert "open files" in last
    assert marker.exists(), "no limit let the program run"
    assert (deferred > 0) == (policy == "always")
