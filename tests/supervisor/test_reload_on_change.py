"""``warden run --reload-on-change PATH``: a real program gets one SIGHUP per change of content.

The program counts the SIGHUPs it receives and prints a line for each. "Exactly one" is proved
without waiting out a timer, as in tests/config/test_watch.py: warden also watches a marker
file; once a change has been reported (``config.changed`` naming the file, and the program's
``hup N``), the marker is written, and the next report must name the marker alone. A second
report of the file (an intermediate state, a late event) would come first or ride along.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.config._files import ConfigMap, write_atomic, write_in_place
from tests.supervisor.conftest import DEADLINE, Processes
from warden.lifecycle import Fact
from warden.supervisor import SupervisorOptions
from warden.supervisor._events import ConfigChangeRefused, ConfigWatchFailed

# With a path and --ready notify, it first writes that file, as if someone changed it while the
# program started (before the watch was armed: warden arms it once the program is ready).
COUNTER = """\
import os, signal, socket, sys
if len(sys.argv) > 1:
    with open(sys.argv[1], "w") as f:
        f.write("changed while starting\\n")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.connect(os.environ["NOTIFY_SOCKET"])
    notify.send(b"READY=1")
count = 0
def hup(signum, frame):
    global count
    count += 1
    print(f"hup {count}", flush=True)
signal.signal(signal.SIGHUP, hup)
print("ready", flush=True)
while True:
    signal.pause()
"""

# A release for --on-hup upgrade: READY=1 to warden's notify socket; ends on SIGTERM.
RELEASE = """\
import os, signal, socket
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
print(f"started {os.getpid()}", flush=True)
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.connect(os.environ["NOTIFY_SOCKET"])
notify.send(b"READY=1")
while True:
    signal.pause()
"""

CHANGED = '"kind": "config.changed"'


class Reloads:
    """A warden watching ``files`` and a marker, running :data:`COUNTER`."""

    def __init__(
        self,
        procs: Processes,
        *files: Path,
        options: tuple[str, ...] = (),
        args: tuple[str, ...] = (),
        prefix: list[str] | None = None,
    ) -> None:
        self.marker = procs.tmp_path / "marker"
        self.marker.write_text("marker 0\n")
        watched = [arg for f in (*files, self.marker) for arg in ("--reload-on-change", str(f))]
        script = procs.script("counter.py", COUNTER)
        self.warden = procs.warden(*watched, *options, "--", script, *args, prefix=prefix)
        self.warden.out.wait_for("^ready$")
        self.warden.err.wait_for('"kind": "config.watching"')
        self._seen = 0  # lines of warden's log looked at for config.changed
        self.reports: list[list[str]] = []
        self._marks = 0

    def next_report(self) -> list[str]:
        """The paths of the next ``config.changed``; the program has had its SIGHUP for it."""
        err = self.warden.err
        err.wait_for(CHANGED, start=self._seen)
        for index, line in enumerate(err.lines[self._seen :], self._seen):
            if CHANGED in line:
                self._seen = index + 1
                fact = json.loads(line)
                assert fact["data"]["action"] == "forward"
                self.reports.append(fact["data"]["paths"])
                self.warden.out.wait_for(f"^hup {len(self.reports)}$")
                return self.reports[-1]
        raise AssertionError("unreachable: wait_for saw the line")

    def quiet_since_last(self) -> None:
        """Nothing more comes before the marker's own report."""
        self._marks += 1
        self.marker.write_text(f"marker {self._marks}\n")
        assert self.next_report() == [str(self.marker)]

    def exactly_one(self, path: Path) -> None:
        assert self.next_report() == [str(path)]
        self.quiet_since_last()

    def stop(self) -> None:
        """SIGTERM; warden stops the watch first, then the program; nothing is left over."""
        self.warden.kill(signal.SIGTERM)
        assert self.warden.wait() == 128 + signal.SIGTERM  # the program died of SIGTERM
        assert self.warden.out.count("^hup ") == len(self.reports)  # one SIGHUP per report
        stops = [e["name"] for e in self.warden.events("stop") if e.get("outcome") == "ok"]
        assert stops[:2] == ["reload-on-change", "child"]
        assert self.warden.events("leak") == []


def test_one_sighup_per_change(procs: Processes) -> None:
    config = procs.tmp_path / "nginx.conf"
    config.write_text("worker_processes 1;\n")
    reloads = Reloads(procs, config)
    write_atomic(config, "worker_processes 2;\n")  # an editor's save: a new inode
    reloads.exactly_one(config)
    write_in_place(config, "worker_processes 3;\n")
    reloads.exactly_one(config)
    reloads.stop()


def test_a_burst_of_writes_is_one_sighup(procs: Processes) -> None:
    config = procs.tmp_path / "app.conf"
    config.write_text("n = 0\n")
    reloads = Reloads(procs, config)
    for n in range(1, 101):
        write_in_place(config, f"n = {n}\n")
    reloads.exactly_one(config)
    reloads.stop()


def test_the_same_content_again_is_no_sighup(procs: Processes) -> None:
    config = procs.tmp_path / "app.conf"
    config.write_text("a = 1\n")
    reloads = Reloads(procs, config)
    os.utime(config)
    write_atomic(config, "a = 1\n")
    write_in_place(config, "a = 1\n")
    (procs.tmp_path / ".app.conf.swp").write_text("editor noise")
    reloads.quiet_since_last()  # the marker's report is the first one
    assert reloads.reports == [[str(reloads.marker)]]
    reloads.stop()


def test_a_configmap_update_is_one_sighup(procs: Processes) -> None:
    volume = ConfigMap(
        procs.tmp_path / "volume", {"nginx.conf": "worker_processes 1;\n", "other": "x\n"}
    )
    config = volume.path("nginx.conf")
    reloads = Reloads(procs, config)
    for n in (2, 3, 4):  # the kubelet's way: a new ..TIMESTAMP dir, ..data renamed over
        volume.update({"nginx.conf": f"worker_processes {n};\n", "other": "x\n"})
        reloads.exactly_one(config)
    volume.update({"nginx.conf": "worker_processes 4;\n", "other": "y\n"})  # another key only
    reloads.quiet_since_last()
    assert reloads.reports.count([str(config)]) == 3
    reloads.stop()


def test_a_file_that_appears_later_is_a_change(procs: Processes) -> None:
    config = procs.tmp_path / "later.conf"  # a ConfigMap key that is not there yet
    reloads = Reloads(procs, config)
    write_atomic(config, "a = 1\n")
    reloads.exactly_one(config)
    reloads.stop()


def test_a_change_while_the_program_starts_is_not_missed(procs: Processes) -> None:
    config = procs.tmp_path / "app.conf"
    config.write_text("a = 1\n")
    reloads = Reloads(
        procs, config, options=("--ready", "notify", "--on-hup", "forward"), args=(str(config),)
    )
    reloads.exactly_one(config)  # seen against the content warden found when it started
    reloads.stop()


def test_with_on_hup_upgrade_a_change_upgrades(procs: Processes) -> None:
    config = procs.tmp_path / "app.conf"
    config.write_text("v = 1\n")
    script = procs.script("release.py", RELEASE)
    warden = procs.warden(
        "--reload-on-change", str(config), "--ready", "notify", "--on-hup", "upgrade",
        "--upgrade-confirm", "0", "--", script,
    )  # fmt: skip
    first = int(warden.out.wait_for(r"^started (\d+)$").group(1))
    warden.err.wait_for('"kind": "config.watching"')
    write_atomic(config, "v = 2\n")
    finished = warden.err.wait_for(r'"kind": "upgrade\.finished".*')
    upgrade = json.loads(finished.string)["data"]
    assert (upgrade["result"], upgrade["old_pid"]) == ("ok", first)
    # The new release's line may still be in the pipe when warden's fact is read: wait for it.
    second = int(warden.out.wait_for(rf"^started (?!{first}$)(\d+)$").group(1))
    assert second == upgrade["new_pid"]
    assert warden.out.count("^started ") == 2
    changed = [e["data"] for e in warden.events("config") if e["kind"] == "config.changed"]
    assert changed == [{"paths": [str(config)], "action": "upgrade"}]
    assert warden.events("upgrade")[0]["kind"] == "upgrade.started"
    warden.kill(signal.SIGTERM)
    assert warden.wait() == 0  # the new release ends cleanly on SIGTERM


@pytest.mark.parametrize(
    ("make", "given", "message"),
    [
        (
            None,
            "nowhere/app.conf",
            "--reload-on-change 'nowhere/app.conf': its directory {tmp}/nowhere does not exist; "
            "create it or fix the path (the file itself may appear later, its directory must "
            "exist)",
        ),
        (
            "dir",
            "conf.d",
            "--reload-on-change 'conf.d' is a directory; give the file to watch in it, "
            "e.g. --reload-on-change conf.d/app.conf",
        ),
        (
            "env",
            "nowhere/app.conf",
            "WARDEN_RELOAD_ON_CHANGE 'nowhere/app.conf': its directory {tmp}/nowhere does not "
            "exist; create it or fix the path (the file itself may appear later, its directory "
            "must exist)",
        ),
    ],
    ids=["missing-directory", "a-directory", "from-the-environment"],
)
def test_bad_path_is_a_one_line_usage_error(
    tmp_path: Path, make: str | None, given: str, message: str
) -> None:
    if make == "dir":
        (tmp_path / given).mkdir()
    argv = [sys.executable, "-m", "warden", "run", "--control", "none"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    if make == "env":
        env["WARDEN_RELOAD_ON_CHANGE"] = f"ok.conf {given}"
    else:
        argv += ["--reload-on-change", "ok.conf", "--reload-on-change", given]
    done = subprocess.run(
        [*argv, "--", "true"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"warden run: error: {message.format(tmp=tmp_path)}"], (
        done.stderr
    )


def test_it_needs_no_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "watchfiles", None)  # as if it were not installed
    path = str(tmp_path / "app.conf")
    assert SupervisorOptions(command=("x",), reload_on_change=(path,)).reload_on_change == (path,)


@pytest.mark.parametrize("armed", [False, True], ids=["without", "with"])
def test_only_the_option_imports_the_watcher(procs: Processes, armed: bool) -> None:
    """``warden run`` without the option does not import warden.config (a PID 1 stays
    small); with it, the watch is inotify's descriptor, and watchfiles is never loaded."""
    option = ["--reload-on-change", str(procs.tmp_path / "app.conf")] if armed else []
    warden = procs.warden(*option, "--", "sleep", "3600", env={"PYTHONPROFILEIMPORTTIME": "1"})
    warden.err.wait_for(r'"kind": "state", "data": \{"state": "ready"')
    warden.kill(signal.SIGTERM)
    assert warden.wait() == 128 + signal.SIGTERM
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in warden.err.lines
        if line.startswith("import time:")
    }
    assert "warden.supervisor" in imported  # the profile is there: an absence means something
    assert ("watchfiles" in imported, "warden.config" in imported) == (False, armed)


@pytest.mark.parametrize(
    "fact",
    [
        ConfigWatchFailed(paths=("/etc/app.yaml",), error="inotify: no space left"),
        ConfigChangeRefused(path="/etc/app.yaml", reason="/etc is writable by others"),
    ],
)
def test_what_a_change_would_have_done_is_not_called_a_reload(fact: Fact) -> None:
    # With --on-hup upgrade, SIGHUP (and a change) upgrades: "reload" means new configuration
    # applied, which is not what happens then. The words hold for both actions.
    assert "reload" not in (fact.detail or "").replace("warden reload", "")
