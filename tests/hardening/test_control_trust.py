"""Item 2: a control client talks only to a warden of its own user (or root's), and the server
binds only where no other user can redirect its clients.

The attacks are real: a second user, created for the session, runs a fake warden that answers
every command with "ok" (a ``warden stop`` that believed it would print "stopping warden pid
4242" and exit 0 while the real warden kept running).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.hardening.conftest import SRC, User, run, warden_argv
from warden._exceptions import ConfigurationError
from warden.supervisor.control._server import ControlServer

# The fake warden: listens (on a path, or on an inherited fd 3), answers every request "ok".
FAKE = """
import json, os, socket, sys
if sys.argv[1] == "fd":
    server = socket.socket(fileno=int(sys.argv[2]))
else:
    os.umask(0)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sys.argv[1])
server.listen(8)
print("listening", flush=True)
while True:
    conn, _ = server.accept()
    conn.recv(65536)
    reply = {"ok": True, "stop": {"pid": 4242}, "status": {"warden": {"pid": 4242}}}
    conn.sendall(json.dumps(reply).encode() + b"\\n")
    conn.close()
"""


class Fake:
    def __init__(self, argv: list[str], pass_fds: tuple[int, ...] = ()) -> None:
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, pass_fds=pass_fds
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "listening":
            self.stop()
            raise AssertionError(f"the fake warden did not start: {self.proc.stderr}")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def attacker_dir(other_user: User) -> Iterator[Path]:
    """A directory of the other user's in /tmp."""
    path = Path(tempfile.mkdtemp(prefix="warden-attack-", dir="/tmp"))
    os.chown(path, other_user.uid, other_user.gid)
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _client(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    full.update(env or {})
    return run(warden_argv(*args), env=full)


def test_a_symlink_of_another_user_does_not_lead_to_their_fake(
    other_user: User, attacker_dir: Path
) -> None:
    # The other user's symlink, pointing at a directory where their fake warden listens.
    fake_dir = attacker_dir / "fake"
    assert run(other_user.argv("mkdir", str(fake_dir))).returncode == 0
    link = attacker_dir / "link"
    assert run(other_user.argv("ln", "-s", str(fake_dir), str(link))).returncode == 0
    fake = Fake(other_user.python(FAKE, str(fake_dir / "c.sock")))
    try:
        result = _client("stop", "--control", str(link / "c.sock"))
    finally:
        fake.stop()
    assert "stopping warden pid 4242" not in result.stdout
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1
    assert f"owned by uid {other_user.uid}" in result.stderr
    assert "another user could put a fake warden there" in result.stderr


def test_a_listener_of_another_uid_is_not_a_warden_of_ours(
    other_user: User, tmp_path: Path
) -> None:
    # The path is root's all the way (tmp_path), but the process that listens on it is the
    # other user's: only SO_PEERCRED can tell.
    path = tmp_path / "c.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    try:
        fake = Fake(other_user.python(FAKE, "fd", str(sock.fileno())), pass_fds=(sock.fileno(),))
    finally:
        sock.close()  # listen() is the other user's, in their process
    try:
        result = _client("status", "--control", str(path))
    finally:
        fake.stop()
    assert "4242" not in result.stdout
    assert result.returncode == 3
    assert f"runs as uid {other_user.uid}" in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_squatted_default_path_is_refused(
    other_user: User, attacker_dir: Path, shared_dir: Path
) -> None:
    # A user without a runtime directory (no $XDG_RUNTIME_DIR, /run not theirs): the default
    # control path is <tmp>/warden-UID/control.sock; another user made that directory first.
    victim_uid = other_user.uid + 1
    while True:
        try:
            import pwd

            pwd.getpwuid(victim_uid)
            victim_uid += 1
        except KeyError:
            break
    squat = shared_dir / f"warden-{victim_uid}"
    assert run(other_user.argv("mkdir", "-m", "0755", str(squat))).returncode == 0
    fake = Fake(other_user.python(FAKE, str(squat / "control.sock")))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WARDEN_", "XDG_"))}
    env.update(TMPDIR=str(shared_dir), PYTHONPATH=str(SRC))
    try:
        result = subprocess.run(
            [
                "setpriv",
                f"--reuid={victim_uid}",
                f"--regid={victim_uid}",
                "--clear-groups",
                "/usr/bin/python3",
                "-m",
                "warden",
                "status",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
            cwd="/",
            check=False,
        )
    finally:
        fake.stop()
    assert str(squat / "control.sock") in result.stderr, result.stderr
    assert "4242" not in result.stdout
    assert result.returncode == 3
    assert f"owned by uid {other_user.uid}" in result.stderr


def test_the_server_refuses_a_path_through_another_users_symlink(
    other_user: User, attacker_dir: Path, tmp_path: Path
) -> None:
    # The symlink points at a directory of root's: the socket would be root's, but the other
    # user can re-point the link at a fake of theirs whenever they like.
    mine = tmp_path / "mine"
    mine.mkdir()
    link = attacker_dir / "link"
    assert run(other_user.argv("ln", "-s", str(mine), str(link))).returncode == 0

    async def handler(command: str, request: Mapping[str, object]) -> dict[str, object]:
        return {}

    server = ControlServer(str(link / "c.sock"), handler, commands={"status"})
    with pytest.raises(ConfigurationError, match=f"owned by uid {other_user.uid}"):
        asyncio.run(server.start())
    assert not (mine / "c.sock").exists()
