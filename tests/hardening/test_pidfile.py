"""Item 1: the pid file cannot be turned against root by another user of the machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.hardening.conftest import User, run
from warden._exceptions import ConfigurationError
from warden.supervisor._pidfile import PidFile


def test_a_planted_symlink_does_not_redirect_the_write(
    other_user: User, shared_dir: Path, tmp_path: Path
) -> None:
    # Root's secret, 0600, that the attacker wants overwritten.
    victim = tmp_path / "secret"
    victim.write_text("do not touch\n")
    victim.chmod(0o600)
    pid_file = shared_dir / "app.pid"
    # The other user plants symlinks where a predictable temporary name would be (this
    # process writes the pid file here, so its pid is the one it would use).
    planted = [shared_dir / f".app.pid.{os.getpid()}.tmp", shared_dir / "app.pid.tmp"]
    for link in planted:
        result = run(other_user.argv("ln", "-s", str(victim), str(link)))
        assert result.returncode == 0, result.stderr

    PidFile(str(pid_file)).write()

    assert victim.read_text() == "do not touch\n"
    assert victim.stat().st_mode & 0o777 == 0o600
    assert pid_file.read_text() == f"{os.getpid()}\n"
    assert not pid_file.is_symlink()
    assert pid_file.stat().st_mode & 0o777 == 0o644
    # Nothing left behind but the planted links.
    assert sorted(p.name for p in shared_dir.iterdir()) == sorted(
        ["app.pid", *(p.name for p in planted)]
    )


def test_a_directory_others_may_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "open"
    shared.mkdir()
    shared.chmod(0o777)  # writable by everyone, not sticky: anyone may rename our file
    with pytest.raises(ConfigurationError, match="writable by other users and not sticky"):
        PidFile(str(shared / "app.pid")).write()
    assert list(shared.iterdir()) == []


def test_a_directory_of_another_user_is_refused(other_user: User, tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, other_user.uid, other_user.gid)
    with pytest.raises(ConfigurationError, match=f"owned by uid {other_user.uid}"):
        PidFile(str(theirs / "app.pid")).write()


def test_a_path_through_a_directory_of_another_user_is_refused(
    other_user: User, tmp_path: Path
) -> None:
    # Theirs is the grandparent: they may rename "sub" away and put their own in its place.
    theirs = tmp_path / "theirs"
    (theirs / "sub").mkdir(parents=True)
    os.chown(theirs, other_user.uid, other_user.gid)
    with pytest.raises(ConfigurationError, match="reached through a path another user controls"):
        PidFile(str(theirs / "sub" / "app.pid")).write()
    assert list((theirs / "sub").iterdir()) == []


def test_remove_neither_follows_nor_blocks_on_what_replaced_the_file(tmp_path: Path) -> None:
    pid_file = PidFile(str(tmp_path / "app.pid"))
    pid_file.write()
    (tmp_path / "app.pid").unlink()
    os.mkfifo(tmp_path / "app.pid")  # an open for reading would wait for a writer
    pid_file.remove()  # returns at once (the test's timeout would catch a hang)
    assert (tmp_path / "app.pid").exists()  # not ours: left alone


def test_a_full_file_system_is_named_with_its_fix(tmp_path: Path) -> None:
    """ENOSPC is not "create its directory": the reason's own fix, in one line."""
    mount = tmp_path / "full"
    mount.mkdir()
    result = run(["mount", "-t", "tmpfs", "-o", "size=16k,mode=0755", "tmpfs", str(mount)])
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:  # fill it to the last block
            with pytest.raises(OSError):
                while True:
                    os.write(fd, b"\0" * 4096)
        finally:
            os.close(fd)
        with pytest.raises(ConfigurationError, match="the file system is full; free space"):
            PidFile(str(mount / "app.pid")).write()
    finally:
        run(["umount", str(mount)])
