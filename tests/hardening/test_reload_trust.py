"""Issue 19, item 6: a ``--reload-on-change`` file another user could change is refused.

Whoever can change the file can send the program SIGHUPs, or set off upgrades, at will. The
rule of the pid file and the control socket applies: refused at start (a one-line usage
error, exit 2) unless every directory from ``/`` is ours or root's and writable by nobody
else unless sticky, and the file and every symlink on its way are ours or root's; checked
again at each change, so a file swapped for another user's sets nothing off. A Kubernetes
ConfigMap volume (root's, a 0777 directory mounted read-only) keeps working.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.config._files import ConfigMap, write_atomic
from tests.hardening.conftest import User, run
from tests.supervisor.conftest import DEADLINE, Processes
from tests.supervisor.test_reload_on_change import Reloads

REFUSED = '"kind": "config.change_refused"'


def start(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    return subprocess.run(
        [sys.executable, "-m", "warden", "run", "--control", "none", *args, "--", "true"],
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )


def _theirs_dir(root: Path, user: User) -> Path:
    theirs = root / "theirs"
    theirs.mkdir()
    os.chown(theirs, user.uid, user.gid)
    return theirs


def _their_dir_file(root: Path, sticky: Path, user: User) -> Path:
    return _theirs_dir(root, user) / "app.conf"


def _under_their_dir(root: Path, sticky: Path, user: User) -> Path:
    # Root's own directory, but inside one of theirs: they can rename it away and put theirs.
    mine = _theirs_dir(root, user) / "mine"
    mine.mkdir()
    (mine / "app.conf").write_text("a = 1\n")
    return mine / "app.conf"


def _open_dir_file(root: Path, sticky: Path, user: User) -> Path:
    shared = root / "open"
    shared.mkdir()
    shared.chmod(0o777)  # not sticky: anyone may rename our file and put theirs
    (shared / "app.conf").write_text("a = 1\n")
    return shared / "app.conf"


def _their_file_in_sticky(root: Path, sticky: Path, user: User) -> Path:
    file = sticky / "app.conf"
    assert run(user.argv("sh", "-c", f"echo a=1 > {file}")).returncode == 0
    return file


def _missing_in_sticky(root: Path, sticky: Path, user: User) -> Path:
    return sticky / "app.conf"  # they could create it before we do


def _their_symlink_in_sticky(root: Path, sticky: Path, user: User) -> Path:
    ours = root / "ours.conf"
    ours.write_text("a = 1\n")
    link = sticky / "app.conf"
    assert run(user.argv("ln", "-s", str(ours), str(link))).returncode == 0
    return link


def _writable_file(root: Path, sticky: Path, user: User) -> Path:
    file = root / "app.conf"
    file.write_text("a = 1\n")
    file.chmod(0o666)
    return file


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_their_dir_file, "{root}/theirs is owned by uid {uid} (it could be replaced)"),
        (_under_their_dir, "{root}/theirs is owned by uid {uid} (it could be replaced)"),
        (_open_dir_file, "directory {root}/open is writable by other users and not sticky"),
        (_their_file_in_sticky, "{sticky}/app.conf is owned by uid {uid} (it could"),
        (
            _missing_in_sticky,
            "{sticky}/app.conf does not exist yet and directory {sticky} is writable by other "
            "users (sticky: they could create it)",
        ),
        (_their_symlink_in_sticky, "{sticky}/app.conf is owned by uid {uid} (symlink could"),
        (_writable_file, "{root}/app.conf is writable by other users (mode 0666)"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else "",
)
def test_a_file_another_user_could_change_is_refused_at_start(
    other_user: User,
    tmp_path: Path,
    shared_dir: Path,
    make: Callable[[Path, Path, User], Path],
    reason: str,
) -> None:
    root = tmp_path.resolve()
    file = make(root, shared_dir, other_user)
    done = start("--reload-on-change", str(file))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"warden run: error: --reload-on-change '{file}': ")
    assert reason.format(root=root, sticky=shared_dir, uid=other_user.uid) in lines[0]
    assert lines[0].endswith(
        "so another user could change it and set off reloads at will; keep it where only "
        "this user (or root) can write, or in a sticky directory as a file of this user's"
    )


def test_our_file_in_a_sticky_directory_is_watched(procs: Processes, shared_dir: Path) -> None:
    config = shared_dir / "app.conf"
    config.write_text("a = 1\n")
    reloads = Reloads(procs, config)
    write_atomic(config, "a = 2\n")
    reloads.exactly_one(config)
    reloads.stop()


def test_their_file_put_where_ours_was_sets_nothing_off(
    procs: Processes, other_user: User, shared_dir: Path
) -> None:
    config = shared_dir / "app.conf"
    config.write_text("a = 1\n")
    reloads = Reloads(procs, config)
    # Ours is removed (a rotation, a redeploy); in the sticky directory they create theirs.
    config.unlink()
    assert run(other_user.argv("sh", "-c", f"echo evil=1 > {config}")).returncode == 0
    refused = reloads.warden.err.wait_for(rf"{REFUSED}.*is owned by uid {other_user.uid}")
    assert json.loads(refused.string)["level"] == "warning"
    reloads.quiet_since_last()  # the next report is the marker's: nothing was set off
    assert str(config) not in {path for report in reloads.reports for path in report}
    reloads.stop()  # and the program got no SIGHUP but the marker's


def test_a_configmap_target_swapped_for_theirs_sets_nothing_off(
    procs: Processes, other_user: User, shared_dir: Path
) -> None:
    # ..data points into a sticky directory, at a directory of root's.
    target = shared_dir / "cfg"
    target.mkdir()
    (target / "app.conf").write_text("a = 1\n")
    volume = procs.tmp_path / "volume"
    volume.mkdir()
    (volume / "..data").symlink_to(target)
    (volume / "app.conf").symlink_to("..data/app.conf")
    config = volume / "app.conf"
    reloads = Reloads(procs, config)
    # Root replaces the target; they are quicker and make it theirs.
    shutil.rmtree(target)
    script = f"mkdir {target} && echo evil=1 > {target}/app.conf"
    assert run(other_user.argv("sh", "-c", script)).returncode == 0
    reloads.warden.err.wait_for(rf"{REFUSED}.*{target} is owned by uid {other_user.uid}")
    reloads.quiet_since_last()
    assert str(config) not in {path for report in reloads.reports for path in report}
    reloads.stop()


def test_a_configmap_volume_mounted_read_only_keeps_working(procs: Processes) -> None:
    """As the kubelet makes it: an emptyDir-like directory, 0777 and root's, with the
    ConfigMap's layout in it, bind-mounted read-only where the program reads it (in a mount
    namespace of warden's own, so the machine's mounts are untouched)."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare")
    source = procs.tmp_path / "kubelet"
    volume = ConfigMap(source, {"nginx.conf": "worker_processes 1;\n"})
    source.chmod(0o777)
    mounted = procs.tmp_path / "etc-config"
    mounted.mkdir()
    mount = 'mount --bind -o ro "$1" "$2" && shift 2 && exec "$@"'
    prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount, "sh"]
    config = mounted / "nginx.conf"
    reloads = Reloads(procs, config, prefix=[*prefix, str(source), str(mounted)])
    volume.update({"nginx.conf": "worker_processes 2;\n"})
    reloads.exactly_one(config)
    reloads.stop()
