"""``warden demo`` end to end: the real demo, its verdict, and its figures against its logs.

Each test runs the demo as a user does (``python -m warden demo``), in a temporary directory
of the test's own (``TMPDIR``), and checks what it printed against what it kept: warden's
JSON log, the service's, every request the clients made, the writes on disk. One run breaks
a promise on purpose (no confirmation window: the broken release is promoted), so the demo is
shown able to fail; one runs as another user, where no memory cgroup can be made, so the
memory step must say why it did not run (and the system Python has no extra installed:
``--reload-on-change`` must work without one).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hardening.conftest import User, _system_python, other_user  # noqa: F401 (fixture)
from warden.demo._cgroup import why_no_memory_cgroup
from warden.memory import MemoryCgroupError, find_memory_cgroup

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

SRC = Path(__file__).resolve().parents[2] / "src"
STEPS = ["start", "config reload", "upgrade", "broken release", "memory", "graceful stop"]


def _memory_cgroup_dirs() -> set[Path]:
    """The ``warden-*`` memory cgroups next to the ones a demo's warden would make."""
    try:
        return set(find_memory_cgroup().path.glob("warden-*"))
    except MemoryCgroupError:
        return set()


def run_demo(
    scratch: Path, *args: str, user: User | None = None
) -> subprocess.CompletedProcess[str]:
    """``warden demo ARGS`` with its temporary files in ``scratch`` (empty), as ``user`` if
    given (the system Python, warden from the source tree); checks nothing is left after."""
    before = _memory_cgroup_dirs()
    runtime = set(Path("/tmp").glob("warden-demo-run-*"))  # where a long TMPDIR sends sockets
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env.update(TMPDIR=str(scratch), PYTHONIOENCODING="utf-8")
    prefix: list[str] = []
    python = sys.executable
    if user is not None:
        prefix, python = user.argv(), _system_python()
        env["PYTHONPATH"] = str(SRC)
    done = subprocess.run(
        [*prefix, python, "-m", "warden", "demo", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=140,
        check=False,
    )
    # Its directories are removed and its warden's memory cgroup is gone.
    assert list(scratch.iterdir()) == [], list(scratch.iterdir())
    assert _memory_cgroup_dirs() <= before
    assert set(Path("/tmp").glob("warden-demo-run-*")) <= runtime
    return done


def facts(path: Path, name: str) -> list[dict[str, Any]]:
    found = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            fact = json.loads(line)
            if fact.get("kind") == name:
                found.append(fact)
    return found


def step(summary: dict[str, Any], name: str) -> dict[str, Any]:
    found = next(s for s in summary["steps"] if s["name"] == name)
    assert isinstance(found, dict)
    return found


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Path, int]]:
    """One run of ``warden demo --json --keep DIR``: its summary, DIR, its exit code."""
    tmp = tmp_path_factory.mktemp("demo")
    keep, scratch = tmp / "kept", tmp / "scratch"
    scratch.mkdir()
    done = run_demo(scratch, "--json", "--keep", str(keep))
    assert done.stdout.startswith("{"), done.stdout + done.stderr
    yield json.loads(done.stdout), keep, done.returncode


def test_the_demo_holds_every_promise_that_ran_and_exits_0(
    kept: tuple[dict[str, Any], Path, int],
) -> None:
    summary, _, code = kept
    verdicts = {s["name"]: s["verdict"] for s in summary["steps"]}
    assert list(verdicts) == STEPS
    assert summary["verdict"] == "held", json.dumps(summary["steps"], indent=1)[:4000]
    assert code == 0
    # Where the kernel lets warden make a memory cgroup, the memory step runs and holds.
    assert verdicts["memory"] == ("held" if why_no_memory_cgroup() is None else "not run")
    held = [name for name, verdict in verdicts.items() if verdict == "held"]
    assert summary["held"] == len(held) and summary["broken"] == 0


def test_every_count_in_the_summary_is_the_clients_own(
    kept: tuple[dict[str, Any], Path, int],
) -> None:
    """Each step's figures are counted again from requests.csv, the clients' record."""
    summary, keep, _ = kept
    with (keep / "logs" / "requests.csv").open() as f:
        rows = list(csv.DictReader(f))
    for each in summary["steps"]:
        figures = each["figures"]
        if figures is None:
            continue
        start, end = figures["sent_from"], figures["sent_until"]
        sent = [r for r in rows if start <= float(r["sent"]) < end]
        ok = [r for r in sent if r["status"] == ("201" if r["op"] == "write" else "200")]
        assert figures["served"] == len(ok), each["name"]
        assert figures["failed"] == len(sent) - len(ok), each["name"]
        by_release: dict[str, int] = {}
        for r in ok:
            by_release[r["release"]] = by_release.get(r["release"], 0) + 1
        assert figures["by_release"] == by_release, each["name"]
        assert sum(figures["by_release"].values()) == figures["served"]
        writes = sum(1 for r in ok if r["op"] == "write")
        assert figures["writes_acknowledged"] == writes
        latencies = sorted(float(r["answered"]) - float(r["sent"]) for r in ok)
        for q, name in ((0.5, "p50_ms"), (0.99, "p99_ms")):
            at = min(len(latencies) - 1, round(q * (len(latencies) - 1)))
            assert figures[name] == (round(latencies[at] * 1000, 3) if latencies else None)


def test_every_write_the_clients_saw_acknowledged_is_on_disk(
    kept: tuple[dict[str, Any], Path, int],
) -> None:
    summary, keep, _ = kept
    with (keep / "logs" / "requests.csv").open() as f:
        acknowledged = {r["write_id"] for r in csv.DictReader(f) if r["status"] == "201"}
    on_disk = {line.split()[0] for line in (keep / "writes.log").read_text().splitlines()}
    assert acknowledged and acknowledged <= on_disk
    stop = step(summary, "graceful stop")["measured"]
    assert stop["writes_acknowledged"] == len(acknowledged) and stop["writes_lost"] == 0


def test_what_the_summary_says_warden_did_is_in_wardens_log(
    kept: tuple[dict[str, Any], Path, int],
) -> None:
    summary, keep, _ = kept
    log, service = keep / "logs" / "warden.log", keep / "logs" / "service.log"
    finished = [f["data"] for f in facts(log, "upgrade.finished")]

    upgrade = step(summary, "upgrade")["measured"]
    first = finished[0]
    assert (upgrade["result"], upgrade["took_s"], upgrade["new_pid"]) == (
        "ok",
        first["took"],
        first["new_pid"],
    )
    broken = step(summary, "broken release")["measured"]
    assert broken["result"] == "rolled back" == finished[1]["result"]
    assert broken["reason"] == finished[1]["reason"] and broken["took_s"] == finished[1]["took"]

    config = step(summary, "config reload")["measured"]
    refused = facts(service, "config.reload_failed")
    assert len(refused) == 1 and config["refused"] == refused[0]["data"]["error"]

    memory = step(summary, "memory")
    if memory["verdict"] != "not run":
        levels = [f["data"] for f in facts(log, "memory.level")]
        said = [(lv["level"], lv["working_set"], lv["time_to_limit"]) for lv in levels]
        shown = [
            (lv["level"], lv["working_set"], lv["time_to_limit_s"])
            for lv in memory["measured"]["levels"]
        ]
        assert shown == said[-len(shown) :] and shown[0][0] == "warn"
        assert memory["measured"]["oom_kill_before"] == memory["measured"]["oom_kill_after"]
        assert not [f for f in facts(log, "memory.oom_kill") if f["data"]["oom_killed"]]
        recycles = [f["data"] for f in facts(log, "memory.recycle")]
        assert memory["measured"]["recycled"] is recycles[0]["recycled"] is True
        assert finished[2]["result"] == "ok"

    stop = step(summary, "graceful stop")["measured"]
    draining = facts(log, "state")
    assert stop["exit_code"] == 0
    assert stop["stop_order"] == ["http", "leak", "writes", "config"]
    assert stop["start_order"] == ["config", "writes", "leak", "http"]
    assert any(f["data"]["state"] == "draining" for f in draining)
    assert stop["answered"] == stop["in_flight"] > 0


def test_what_warden_said_is_in_its_words_for_people(
    kept: tuple[dict[str, Any], Path, int],
) -> None:
    """The summary quotes warden's sentences, not its log's kind names ("stop_ladder
    SIGTERM: ...", "memory 30709 recycling: ..."); the graceful stop ends with warden's
    closing line, the ``exit`` fact's reason."""
    summary, keep, _ = kept
    said = [line for s in summary["steps"] for line in s["warden_said"]]
    assert said
    internal = re.compile(r"^(stop_ladder|child |memory \d|upgrade\.|exit \d)")
    assert [line for line in said if internal.match(line)] == [], said
    (closing,) = facts(keep / "logs" / "warden.log", "exit")
    stop = step(summary, "graceful stop")
    assert stop["warden_said"] == [f"warden exited 0: {closing['data']['reason']}"]
    assert closing["data"]["reason"] == "stopped by SIGTERM; the program exited(0)"


def test_a_promise_broken_on_purpose_is_a_cross_and_exit_1(tmp_path: Path) -> None:
    """Without a confirmation window, release 3 is promoted and answers 500 to real
    traffic: the demo must say so, not pass."""
    done = run_demo(tmp_path, "--upgrade-confirm", "0")  # tmp_path: empty
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    verdict = next(line for line in lines if "warden demo:" in line and " in " in line)
    assert verdict.startswith("✗ warden demo: 1 of 6 promises broken"), verdict
    broken = [line for line in lines if "broken release" in line and "✗ broken" in line]
    assert broken, done.stdout
    assert any("✗ 0 failed" in line for line in lines), done.stdout
    # The release put back for the steps after: they still ran.
    assert any("graceful stop" in line and "✓ held" in line for line in lines), done.stdout


def test_a_step_this_machine_cannot_run_is_not_run_and_says_why(
    other_user: User,  # noqa: F811 (a fixture)
) -> None:
    """As another user, no memory cgroup can be made (the kernel refuses the mkdir): the
    memory step is not run, with the kernel's reason; the system Python has no extra
    installed, and the config reload is still warden's own ``--reload-on-change``; the
    other promises hold."""
    scratch = Path(tempfile.mkdtemp(prefix="warden-demo-test-", dir="/tmp"))
    scratch.chmod(0o1777)  # the other user's temporary files go there
    try:
        done = run_demo(scratch, "--json", user=other_user)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    summary = json.loads(done.stdout)
    memory = step(summary, "memory")
    assert memory["verdict"] == "not run", memory
    assert "no memory cgroup can be made here: cannot create memory cgroup" in memory["summary"]
    # What the person can do about it, not warden run's advice about an option never given.
    assert memory["summary"].endswith(
        "; run the demo as root, or where a memory cgroup is delegated to this user"
    ), memory["summary"]
    assert "--memory-limit" not in memory["summary"]
    assert step(summary, "config reload")["measured"]["how"] == "--reload-on-change"
    assert "watchfiles" not in done.stdout + done.stderr
    assert summary["verdict"] == "held" and summary["not_run"] == 1, done.stdout[-3000:]
    assert done.returncode == 0
