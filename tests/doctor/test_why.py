"""``warden doctor --why``: a real OOM kill in a v1 memory cgroup on this machine, explained
with the kernel's own line; a real ``kill -9``, not called an OOM kill; the other statuses;
the three forms of the kernel's log it reads."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.hardening.conftest import SRC, User, other_user  # noqa: F401 (the fixture)
from tests.memory.conftest import MakeCgroup, memory_cgroup  # noqa: F401 (the fixture)
from warden.doctor import explain_death
from warden.doctor._kernel_log import KernelLine, _stamped, oom_kills, read_kernel_log

MiB = 2**20

#: Joins the cgroup whose cgroup.procs is argv[1], says so, then allocates until killed.
HOG = """\
import os, sys
with open(sys.argv[1], "w") as procs:
    procs.write(str(os.getpid()))
print("joined", flush=True)
held = []
while True:
    held.append(b"\\1" * 2**20)
"""


def _doctor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "warden", "doctor", "--why", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _kernel_readable() -> None:
    try:
        read_kernel_log()
    except OSError as exc:
        pytest.skip(str(exc))


def test_a_real_oom_kill_is_named_with_the_kernels_line(
    memory_cgroup: MakeCgroup,  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    _kernel_readable()
    group = memory_cgroup(32 * MiB)
    began = time.monotonic()
    with subprocess.Popen(
        [sys.executable, "-c", HOG, str(group.procs_file)], stdout=subprocess.PIPE, text=True
    ) as hog:
        try:
            assert hog.stdout is not None and hog.stdout.readline() == "joined\n"
            assert hog.wait(timeout=60) == -signal.SIGKILL
        finally:
            if hog.poll() is None:
                hog.kill()
                hog.wait()
    # The pid is given: another OOM kill in the window (another test's) is not this one.
    since = f"{time.monotonic() - began + 60:.1f}s"
    done = _doctor("137", "--pid", str(hog.pid), "--since", since)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith("warden doctor: ✗ errors: 1 error")
    assert "✗ error   oom-kill: OOM-killed by the kernel" in done.stdout
    # The kernel's own line, with the pid and the cgroup warden's test made.
    assert f"kernel: Memory cgroup out of memory: Killed process {hog.pid} (python" in done.stdout
    relative = "/" + group.cgroup.path.relative_to(group.cgroup.mount).as_posix()
    assert f"in memory cgroup {relative}," in done.stdout
    assert "its cgroup used 32.0 MiB of 32.0 MiB" in done.stdout
    # And the cgroup's counter, read while it exists.
    assert "the cgroup's oom_kill counter is 1" in done.stdout
    found = json.loads(_doctor("137", "--pid", str(hog.pid), "--since", since, "--json").stdout)
    assert found["verdict"] == "errors"
    assert [f["check"] for f in found["findings"]] == ["oom-kill"]


def test_a_real_kill_9_is_not_an_oom_kill(
    memory_cgroup: MakeCgroup,  # noqa: F811 (the fixture)
) -> None:
    _kernel_readable()
    group = memory_cgroup(64 * MiB)
    began = time.monotonic()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        group.attach(sleeper.pid)
        sleeper.send_signal(signal.SIGKILL)
        assert sleeper.wait(timeout=10) == -signal.SIGKILL
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()
    # From the test's start on: no OOM kill of another test's in the window.
    since = f"{time.monotonic() - began + 0.05:.2f}s"
    done = _doctor("137", "--pid", str(sleeper.pid), "--since", since, "--json")
    assert done.returncode == 1, done.stderr
    found = json.loads(done.stdout)
    assert [f["check"] for f in found["findings"]] == ["sigkill"]
    assert "not an OOM kill" in found["findings"][0]["message"]
    assert group.oom_kills() == 0


# -- the kernel's log in its three forms, and the other statuses -------------------------------

KMSG_KILL = [
    KernelLine(
        100.0, "python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0"
    ),
    KernelLine(100.1, "memory: usage 65536kB, limit 65536kB, failcnt 20"),
    KernelLine(
        100.2,
        "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
        "oom_memcg=/pod/app,task_memcg=/pod/app/worker,task=python3,pid=4243,uid=0",
    ),
    KernelLine(
        100.3,
        "Memory cgroup out of memory: Killed process 4243 (python3) total-vm:9140kB, "
        "anon-rss:60000kB, file-rss:1504kB, shmem-rss:0kB, UID:0 pgtables:48kB oom_score_adj:0",
    ),
]


def test_the_lines_of_an_oom_kill() -> None:
    (kill,) = oom_kills(KMSG_KILL)
    assert (kill.pid, kill.task, kill.memcg) == (4243, "python3", "/pod/app/worker")
    assert (kill.usage, kill.limit) == (64 * MiB, 64 * MiB)
    assert kill.rss == (60000 + 1504) * 1024
    assert kill.constraint == "CONSTRAINT_MEMCG"
    assert kill.lines[0].startswith("oom-kill:") and kill.lines[1].startswith("Memory cgroup")


def test_journalctl_and_dmesg_lines_are_read() -> None:
    journal = "[  100.300000] host kernel: Out of memory: Killed process 7 (java) anon-rss:4kB\n"
    dmesg = "[  100.300000] Out of memory: Killed process 7 (java) anon-rss:4kB\n"
    for text in (journal, dmesg):
        (kill,) = oom_kills(_stamped(text))
        assert (kill.pid, kill.task, kill.at) == (7, "java", 100.3)


def test_an_oom_kill_of_a_child_is_told_apart() -> None:
    """The main process exited 1 after a worker of its own was OOM-killed: Kubernetes may
    call the container OOMKilled; doctor names the worker and the main process's own code."""
    kernel = (KMSG_KILL, "/dev/kmsg")
    report = explain_death(1, pid=4200, ago=5, kernel=kernel, scope="/pod", now=110.0)
    assert [r.check for r in report.findings] == ["oom-kill-child", "exit-code"]
    assert (
        "the kernel OOM-killed pid 4243 (python3) 10 s ago, not pid 4200"
        in report.findings[0].message
    )
    outside = explain_death(1, pid=4200, ago=5, kernel=kernel, scope="/other", now=110.0)
    assert [r.check for r in outside.findings] == ["exit-code"]  # another container's kill


def test_the_oom_kill_of_the_process_itself() -> None:
    report = explain_death(137, pid=4243, kernel=(KMSG_KILL, "/dev/kmsg"), now=160.0)
    (finding,) = report.findings
    assert finding.check == "oom-kill"
    assert finding.message.startswith(
        "OOM-killed by the kernel 60 s ago: python3 (pid 4243) in memory cgroup /pod/app/worker, "
        "resident 60.1 MiB; its cgroup used 64.0 MiB of 64.0 MiB; its memory cgroup reached "
        "its limit"
    )
    assert "kernel: Memory cgroup out of memory: Killed process 4243 (python3)" in finding.message
    old = explain_death(137, pid=4243, kernel=(KMSG_KILL, "/dev/kmsg"), since=30, now=160.0)
    assert [r.check for r in old.findings] == ["sigkill"]  # before the window: not seen


@pytest.mark.parametrize(
    ("status", "check", "words"),
    [
        (143, "sigterm-unhandled", "did not handle the signal"),
        (124, "deadline", "a shutdown deadline passed"),
        (4, "not-ready", "never passed warden's --ready gate"),
        (127, "exec", "not found"),
        (139, "signal", "SIGSEGV, a crash"),
        (134, "signal", "SIGABRT"),
    ],
)
def test_other_statuses(status: int, check: str, words: str) -> None:
    report = explain_death(status, kernel=([], "/dev/kmsg"), now=1.0)
    (finding,) = report.findings
    assert finding.check == check and words in finding.message


def test_a_clean_exit_is_no_finding() -> None:
    report = explain_death(0, kernel=([], "/dev/kmsg"), now=1.0)
    assert report.verdict == "clean" and report.exit_code == 0


# -- what --why may claim ---------------------------------------------------------------------

#: A kill -9 at 200 s (no line: the kernel logs no SIGKILL), then an OOM kill of another
#: process at 300 s, in warden's cgroup of its own below the container's.
LATER_KILL = [
    KernelLine(
        300.0,
        "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
        "oom_memcg=/pod/app/warden-1,task_memcg=/pod/app/warden-1,task=python3,pid=5000,uid=0",
    ),
    KernelLine(
        300.1,
        "Memory cgroup out of memory: Killed process 5000 (python3) total-vm:9140kB, "
        "anon-rss:60000kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:48kB oom_score_adj:0",
    ),
]


def test_a_kill_9_is_not_blamed_on_a_later_oom_kill() -> None:
    """Died at 200 s (``--ago 110``: now is 310 s); the OOM kill at 300 s in its cgroup came
    after it, so it is not why."""
    kernel = (LATER_KILL, "/dev/kmsg")
    report = explain_death(137, pid=4000, ago=110, kernel=kernel, scope="/pod/app", now=310.0)
    assert [r.check for r in report.findings] == ["sigkill"]
    assert "killed from outside, not an OOM kill" in report.findings[0].message
    # Died after it: that kill came first, in its cgroup, and may be why.
    after = explain_death(137, pid=4000, ago=5, kernel=kernel, scope="/pod/app", now=310.0)
    assert [(r.check, r.status) for r in after.findings] == [
        ("oom-kill-child", "error"),
        ("sigkill", "error"),
    ]
    assert "before it died" in after.findings[0].message
    # When it died is not said: a note, not the explanation.
    unsure = explain_death(137, pid=4000, kernel=kernel, scope="/pod/app", now=310.0)
    assert [r.check for r in unsure.findings] == ["sigkill"]
    assert unsure.notes == (
        (
            "/dev/kmsg",
            "the kernel OOM-killed pid 5000 (python3) of the same cgroup 10 s ago; if that was "
            "before pid 4000, it may be why (give --ago, how long ago it died, to tell)",
        ),
    )


def test_on_a_host_no_other_process_oom_kill_counts() -> None:
    """Scope ``/`` (a host): the dead process's cgroup is not known, so an OOM kill of any
    other process since boot says nothing about it."""
    kernel = (LATER_KILL, "/dev/kmsg")
    report = explain_death(137, pid=4000, kernel=kernel, scope="/", now=310.0)
    assert [r.check for r in report.findings] == ["sigkill"]
    assert "not an OOM kill" in report.findings[0].message
    # Nor does a kill whose cgroup the kernel did not log, in a container.
    bare = [line for line in LATER_KILL if "oom-kill:" not in line.text]
    inside = explain_death(137, pid=4000, kernel=(bare, "/dev/kmsg"), scope="/pod", now=310.0)
    assert [r.check for r in inside.findings] == ["sigkill"]
    # Without --pid, it cannot be told: said, not claimed either way.
    unknown = explain_death(137, kernel=kernel, scope="/", now=310.0)
    (finding,) = unknown.findings
    assert finding.check == "sigkill"
    assert "not an OOM kill" not in finding.message
    assert "1 OOM kill since boot that may or may not be this one" in finding.message
    assert "give --pid" in finding.fix


def test_without_the_kernels_log_it_says_it_cannot_tell() -> None:
    """Not root, dmesg_restrict=1: no OOM kill can be seen, so none is denied."""
    report = explain_death(137, pid=4243, kernel=None, scope="/", now=1.0, read=_unreadable)
    assert [(r.check, r.status) for r in report.results] == [
        ("kernel-log", "warning"),
        ("sigkill", "error"),
    ]
    warning, sigkill = report.results
    assert "Errno" not in warning.message
    assert warning.message.startswith("cannot read the kernel's log: /nonexistent/kmsg needs root")
    assert "not an OOM kill" not in sigkill.message
    assert "doctor cannot tell which" in sigkill.message
    assert explain_death(0, kernel=None, now=1.0, read=_unreadable).exit_code == 0


def _unreadable() -> tuple[list[KernelLine], str]:
    return read_kernel_log(kmsg="/nonexistent/kmsg", commands=())


@pytest.mark.parametrize(("status", "code"), [(0, 0), (1, 1), (2, 1), (3, 1), (143, 1)])
def test_a_failed_death_exits_1(status: int, code: int) -> None:
    """docs/doctor.md: it exits 1 when the death was a failure: any status but 0."""
    assert explain_death(status, kernel=([], "/dev/kmsg"), now=1.0).exit_code == code


def test_the_cli_exit_code_of_why_1() -> None:
    done = _doctor("1", "--since", "1s", "--json")
    assert done.returncode == 1, done.stderr
    assert [f["check"] for f in json.loads(done.stdout)["findings"]][-1] == "exit-code"
    assert _doctor("1", "--ago", "5m", "--since", "10m").returncode == 1
    bad = _doctor("137", "--ago", "soon")
    assert bad.returncode == 2 and bad.stderr.startswith("warden doctor: error: --ago")


def test_a_user_who_cannot_read_the_kernels_log(other_user: User) -> None:  # noqa: F811
    """A real unprivileged user, with dmesg_restrict=1 (/dev/kmsg is root's, dmesg and
    journalctl -k say nothing to it): 137 is not called 'killed from outside'."""
    if Path("/proc/sys/kernel/dmesg_restrict").read_text().strip() != "1":
        pytest.skip("dmesg_restrict=0: any user reads the kernel's log here")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from warden.cli import main; "
        "sys.exit(main(['doctor', '--why', '137', '--pid', '1']))"
    )
    done = subprocess.run(
        other_user.python(code, str(SRC)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "‼ warning kernel-log: cannot read the kernel's log: " in done.stdout, done.stdout
    assert "Errno" not in done.stdout
    assert "without the kernel's log doctor cannot tell which" in done.stdout
    assert "not an OOM kill" not in done.stdout
