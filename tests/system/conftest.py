"""The system suite: one guest boot runs the checks, the tests here judge what it saw.

Selected explicitly (``pytest -m system``, or ``scripts/system-test``); the default run
deselects the marker. The first test to ask for :func:`guest` builds the image if no cached
one exists, installs warden from this checkout into a share, boots the guest once with the
checks the collected tests need (each test module names its ``CHECK``), and reads the
results back from the share; :func:`host_runc` runs the container checks on this host too
(cgroup v1). A machine that cannot run a guest fails the session with one line.
``WARDEN_VMTEST_BREAK=all`` (or a comma-separated list of break names) breaks each check's
precondition on purpose: every test must then fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from . import _boot, _image, _runc

ROOT = Path(__file__).resolve().parents[2]
#: Seconds for one boot with every check (measured about 6 minutes; TCG on a busy host).
BOOT_TIMEOUT = 1500
_TIMINGS = pytest.StashKey[dict[str, float]]()
_SHARE = pytest.StashKey[Path]()


@dataclass
class Guest:
    """What one boot of the guest reported."""

    share: Path
    results: dict[str, Any]
    console: str

    @property
    def facts(self) -> dict[str, Any]:
        return self.results["guest"]  # type: ignore[no-any-return]

    def saw(self, check: str, name: str) -> Any:
        """What check ``check`` recorded as ``name``; the test fails with the guest's own
        error (and where to look) when the check did not get that far."""
        found = self.results["checks"].get(check)
        if found is None:
            pytest.fail(f"the guest ran no {check!r} check; console: {self.share}/console.log")
        facts = found["facts"]
        if name not in facts:
            error = facts.get("error", "no error recorded")
            pytest.fail(
                f"{check}: no {name!r} recorded; the guest said:\n{error}\n"
                f"(journal: {self.share}/out/journal.txt)"
            )
        return facts[name]


def _breaks() -> list[str]:
    value = os.environ.get("WARDEN_VMTEST_BREAK", "")
    return [word.strip() for word in value.split(",") if word.strip()]


def _prepare_share(share: Path, only: list[str]) -> None:
    """warden from this checkout, the files the checks use, the guest's entry point."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
         str(share / "site"), str(ROOT)],
        check=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    for folder in ("deploy", "examples"):
        shutil.copytree(ROOT / folder, share / "checkout" / folder)
    guest = share / "tests" / "system" / "guest"
    shutil.copytree(
        ROOT / "tests" / "system" / "guest", guest, ignore=shutil.ignore_patterns("__pycache__")
    )
    for package in ("tests", "tests/system"):
        (share / package / "__init__.py").write_text("")
    (share / "out").mkdir()
    share.chmod(0o755)  # a container's user (the Containerfile's USER) reads the share too
    (share / "config.json").write_text(json.dumps({"only": only, "breaks": _breaks()}))
    (share / "run.sh").write_text(
        "#!/bin/sh\n# The test unit's command: the checks, then the guest powers off.\n"
        "cd /mnt/host && exec /usr/bin/python3 -m tests.system.guest.runner "
        ">/mnt/host/out/runner.log 2>&1\n"
    )


def _new_share() -> Path:
    """A new share under ``$WARDEN_VMTEST_SHARES`` (default ``/var/tmp/warden-vmtest``),
    kept after the run for a look at the console, the guest's journal and results; the two
    newest before it stay too, older ones go."""
    base = Path(os.environ.get("WARDEN_VMTEST_SHARES", "/var/tmp/warden-vmtest"))
    base.mkdir(parents=True, exist_ok=True)
    for old in sorted(base.glob("run-*"), key=lambda p: p.stat().st_mtime)[:-2]:
        shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=time.strftime("run-%Y%m%d-%H%M%S-"), dir=base))


@pytest.fixture(scope="session")
def image(request: pytest.FixtureRequest) -> Path:
    """The guest image (built when no cached one exists); a machine that cannot run a guest
    ends the session with one line."""
    why = _boot.qemu_missing()
    if why is not None:
        pytest.exit(why, returncode=1)
    timings = request.config.stash.setdefault(_TIMINGS, {})
    started = time.monotonic()
    cache = _image.cache_dir()
    built = _image.ready(cache)
    try:
        _image.build(cache)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        pytest.exit(f"the system suite cannot run: the guest image did not build: {exc}", 1)
    if not built:
        timings["image build"] = time.monotonic() - started
    return cache


@pytest.fixture(scope="session")
def share(request: pytest.FixtureRequest) -> Path:
    """warden from this checkout, and what the checks the collected tests need use."""
    only = sorted(
        {
            str(getattr(item.module, "CHECK", ""))
            for item in request.session.items
            if isinstance(item, pytest.Function) and item.get_closest_marker("system")
        }
        - {""}
    )
    timings = request.config.stash.setdefault(_TIMINGS, {})
    folder = request.config.stash[_SHARE] = _new_share()
    started = time.monotonic()
    _prepare_share(folder, only)
    timings["share (warden installed from the checkout)"] = time.monotonic() - started
    return folder


@pytest.fixture(scope="session")
def guest(request: pytest.FixtureRequest, image: Path, share: Path) -> Guest:
    """One boot of the guest with the checks; what they saw."""
    timings = request.config.stash.setdefault(_TIMINGS, {})
    boot = _boot.boot(share, image, timeout=BOOT_TIMEOUT)
    timings["boot, checks and power-off"] = boot.seconds
    console = boot.console.read_text(errors="replace")
    results_file = share / "out" / "results.json"
    if not results_file.exists():
        pytest.fail(
            f"the guest wrote no results (qemu exit {boot.returncode}, {boot.seconds:.0f} s); "
            f"console: {boot.console}\n{console[-3000:]}"
        )
    results = json.loads(results_file.read_text())
    for name, found in results["checks"].items():
        timings[f"  check {name}"] = found["seconds"]
    return Guest(share, results, console)


@pytest.fixture(scope="session")
def host_runc(request: pytest.FixtureRequest, image: Path, share: Path) -> Guest:
    """The container checks with runc on this host (cgroup v1), reported as a guest's are."""
    why = _runc.runc_missing()
    if why is not None:
        pytest.fail(why)
    started = time.monotonic()
    facts = _runc.run_on_host(share, image)
    took = time.monotonic() - started
    request.config.stash.setdefault(_TIMINGS, {})["container checks on this host (v1)"] = took
    results = {"guest": {}, "checks": {"container": {"seconds": took, "facts": facts}}}
    return Guest(share, results, "")


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    timings = config.stash.get(_TIMINGS, None)
    if not timings:
        return
    terminalreporter.section("system suite timings")
    for name, seconds in timings.items():
        terminalreporter.write_line(f"{name:<46} {seconds:7.1f} s")
    share = config.stash.get(_SHARE, None)
    if share is not None:
        terminalreporter.write_line(f"the guest's console, journal and results: {share}")
