"""Fixtures for the hardening tests: a real second user, and a directory both users reach.

The user is created with ``useradd`` for the session and removed with ``userdel`` at its end;
its processes run through ``setpriv`` (no login, no home). The system ``python3`` runs their
scripts: the test interpreter may live under a home directory other users cannot enter.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.supervisor.conftest import Processes, procs  # noqa: F401 (a fixture)

SRC = Path(__file__).resolve().parents[2] / "src"


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int

    def argv(self, *command: str) -> list[str]:
        """``command`` run as this user (real and effective ids, no supplementary groups)."""
        return [
            "setpriv",
            f"--reuid={self.uid}",
            f"--regid={self.gid}",
            "--clear-groups",
            *command,
        ]

    def python(self, code: str, *args: str) -> list[str]:
        return self.argv(_system_python(), "-I", "-c", code, *args)


def _system_python() -> str:
    found = shutil.which("python3", path="/usr/bin:/bin")
    if found is None:
        pytest.skip("no system python3 for the other user's processes")
    return found


@pytest.fixture(scope="session")
def other_user() -> Iterator[User]:
    """A real second user, created for the session and removed after it."""
    if os.geteuid() != 0 or shutil.which("useradd") is None or shutil.which("setpriv") is None:
        pytest.skip("needs root, useradd and setpriv")
    name = f"wdn{secrets.token_hex(4)}"
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    try:
        ids = subprocess.run(["id", "-u", name], check=True, capture_output=True, text=True)
        gid = subprocess.run(["id", "-g", name], check=True, capture_output=True, text=True)
        yield User(name, int(ids.stdout), int(gid.stdout))
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A sticky, world-writable directory of root's in /tmp (like /tmp itself)."""
    path = Path(tempfile.mkdtemp(prefix="warden-shared-", dir="/tmp"))
    path.chmod(0o1777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def warden_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "warden", *args]


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run to the end with a deadline, capturing both streams."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False, env=env)
