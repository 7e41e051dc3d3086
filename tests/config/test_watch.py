"""watch_for_changes on its own: one call per change, whatever way the change is made.

"Exactly one" is proved without waiting out a timer: the watch covers the config and a
marker file; after the change has been reported, the marker is written, and the next call
must name the marker alone. A second report of the config (an intermediate state, a late
event) would come first or ride along with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests._proc import Proc
from warden import ConfigurationError
from warden.config import watch_for_changes
from warden.config._watch import file_digest

from ._files import ConfigMap, write_atomic, write_in_place

TIMEOUT = 10.0


class Watch:
    def __init__(self, marker: Path) -> None:
        self.calls: asyncio.Queue[tuple[Path, ...]] = asyncio.Queue()
        self.marker = marker
        self._n = 0

    async def next(self) -> tuple[Path, ...]:
        return await asyncio.wait_for(self.calls.get(), TIMEOUT)

    async def exactly_one(self, path: Path) -> None:
        """The next call names ``path`` alone, and nothing else comes before the marker."""
        assert await self.next() == (path,)
        self._n += 1
        self.marker.write_text(f"marker {self._n}\n")
        assert await self.next() == (self.marker,)


@contextlib.asynccontextmanager
async def watching(*paths: Path, marker: Path) -> AsyncIterator[Watch]:
    marker.write_text("marker 0\n")
    watch = Watch(marker)
    ready = asyncio.Event()
    task = asyncio.create_task(
        watch_for_changes([*paths, marker], watch.calls.put_nowait, ready=ready)
    )
    try:
        await asyncio.wait_for(ready.wait(), TIMEOUT)
        yield watch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert not [t for t in threading.enumerate() if t.name.startswith("warden:")]


async def test_in_place_write_is_one_call(tmp_path: Path) -> None:
    config = tmp_path / "app.toml"
    config.write_text("a = 1\n")
    async with watching(config, marker=tmp_path / "marker") as watch:
        write_in_place(config, "a = 2\n")
        await watch.exactly_one(config)


async def test_rename_into_place_is_one_call(tmp_path: Path) -> None:
    config = tmp_path / "app.toml"
    config.write_text("a = 1\n")
    async with watching(config, marker=tmp_path / "marker") as watch:
        write_atomic(config, "a = 2\n")
        await watch.exactly_one(config)


@pytest.mark.skipif(shutil.which("vim") is None, reason="vim is not installed")
async def test_a_real_vim_save_is_one_call(tmp_path: Path) -> None:
    # vim writes a probe file (4913), renames the file to a backup, writes the new file and
    # deletes the backup, with its swap file coming and going beside it.
    config = tmp_path / "app.toml"
    config.write_text("a = 1\n")
    async with watching(config, marker=tmp_path / "marker") as watch:
        vim = await asyncio.create_subprocess_exec(
            "vim", "-u", "NONE", "-i", "NONE", "-es", "-c", "set backup writebackup",
            "-c", "%s/1/2/", "-c", "wq", str(config),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert await asyncio.wait_for(vim.wait(), TIMEOUT) == 0
        assert config.read_text() == "a = 2\n"
        await watch.exactly_one(config)


async def test_a_burst_of_100_writes_is_one_call(tmp_path: Path) -> None:
    config = tmp_path / "app.toml"
    config.write_text("n = 0\n")
    async with watching(config, marker=tmp_path / "marker") as watch:
        for n in range(1, 101):
            write_in_place(config, f"n = {n}\n")
        await watch.exactly_one(config)


async def test_touch_and_same_content_call_nothing(tmp_path: Path) -> None:
    config = tmp_path / "app.toml"
    config.write_text("a = 1\n")
    async with watching(config, marker=tmp_path / "marker") as watch:
        os.utime(config)
        write_atomic(config, "a = 1\n")
        (tmp_path / ".app.toml.swp").write_text("editor noise")
        watch.marker.write_text("marker\n")
        assert await watch.next() == (watch.marker,)


async def test_deleted_then_recreated_the_watch_survives(tmp_path: Path) -> None:
    config = tmp_path / "app.toml"
    config.write_text("a = 1\n")
    async with watching(config, marker=tmp_path / "marker") as watch:
        config.unlink()
        await watch.exactly_one(config)
        assert not config.exists()
        config.write_text("a = 2\n")
        await watch.exactly_one(config)
        write_in_place(config, "a = 3\n")
        await watch.exactly_one(config)


async def test_its_directory_deleted_then_recreated(tmp_path: Path) -> None:
    directory = tmp_path / "conf.d"
    directory.mkdir()
    config = directory / "app.toml"
    config.write_text("a = 1\n")
    async with watching(config, marker=tmp_path / "marker") as watch:
        shutil.rmtree(directory)
        await watch.exactly_one(config)
        directory.mkdir()
        config.write_text("a = 2\n")
        await watch.exactly_one(config)
        write_in_place(config, "a = 3\n")  # watched again in the new directory
        await watch.exactly_one(config)


async def test_a_file_that_does_not_exist_yet(tmp_path: Path) -> None:
    config = tmp_path / "later" / "app.toml"
    async with watching(config, marker=tmp_path / "marker") as watch:
        config.parent.mkdir()
        config.write_text("a = 1\n")
        await watch.exactly_one(config)


async def test_kubernetes_configmap_update_is_one_call_each(tmp_path: Path) -> None:
    volume = ConfigMap(tmp_path / "volume", {"app.toml": "a = 1\n", "other": "x\n"})
    config = volume.path("app.toml")
    async with watching(config, marker=tmp_path / "marker") as watch:
        for n in range(2, 6):
            volume.update({"app.toml": f"a = {n}\n", "other": "x\n"})
            await watch.exactly_one(config)
            assert config.read_text() == f"a = {n}\n"
        # An update of another key swaps ..data too, but app.toml's content is the same.
        volume.update({"app.toml": "a = 5\n", "other": "y\n"})
        watch.marker.write_text("marker\n")
        assert await watch.next() == (watch.marker,)


async def test_symlink_to_a_file_in_another_directory(tmp_path: Path) -> None:
    # inotify does not follow symlinks: the target's directory is watched as well.
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "app.toml"
    target.write_text("a = 1\n")
    config = tmp_path / "app.toml"
    config.symlink_to(target)
    async with watching(config, marker=tmp_path / "marker") as watch:
        write_in_place(target, "a = 2\n")
        await watch.exactly_one(config)
        # Repointing the symlink moves the watch to the new target's directory.
        (tmp_path / "real2").mkdir()
        target2 = tmp_path / "real2" / "app.toml"
        target2.write_text("a = 3\n")
        tmp = tmp_path / "app.toml.new"
        tmp.symlink_to(target2)
        tmp.replace(config)
        await watch.exactly_one(config)
        write_in_place(target2, "a = 4\n")
        await watch.exactly_one(config)


async def test_an_async_on_change_runs_one_at_a_time(tmp_path: Path) -> None:
    config = tmp_path / "app.toml"
    config.write_text("a = 0\n")
    running = 0
    overlapped = False
    seen: asyncio.Queue[tuple[Path, ...]] = asyncio.Queue()
    release = asyncio.Event()

    async def slow(paths: tuple[Path, ...]) -> None:
        nonlocal running, overlapped
        running += 1
        overlapped |= running > 1
        seen.put_nowait(paths)
        await release.wait()
        running -= 1

    ready = asyncio.Event()
    task = asyncio.create_task(watch_for_changes([config], slow, ready=ready))
    await asyncio.wait_for(ready.wait(), TIMEOUT)
    write_in_place(config, "a = 1\n")
    assert await asyncio.wait_for(seen.get(), TIMEOUT) == (config,)
    write_in_place(config, "a = 2\n")  # seen while slow() still runs: delivered after it
    release.set()
    assert await asyncio.wait_for(seen.get(), TIMEOUT) == (config,)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert not overlapped


async def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="got no paths"):
        await watch_for_changes([], print)
    with pytest.raises(ConfigurationError, match="debounce=0 is not a positive number"):
        await watch_for_changes([tmp_path / "x"], print, debounce=0)


def test_importing_the_package_loads_no_optional_dependency() -> None:
    code = (
        "import sys; import warden.config; from warden.config import watch_for_changes; "
        "print(sorted(m for m in ('pydantic', 'yaml', 'watchfiles') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.stdout.strip() == "[]", out.stderr


def test_watching_needs_no_optional_dependency(tmp_path: Path) -> None:
    """The watch is the standard library's: it works with watchfiles absent, and loads
    nothing optional (nor ``ctypes.util``, whose ``find_library`` runs ``ldconfig``)."""
    config = tmp_path / "app.toml"
    config.write_text("a = 1\n")
    code = f"""
import sys
sys.modules["watchfiles"] = None  # as if it were not installed
from warden.config import ConfigStore
with ConfigStore({str(config)!r}, watch=True) as store:
    print(store.current["a"])
print(sorted(m for m in ("watchfiles", "ctypes.util") if sys.modules.get(m)))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.stdout.splitlines() == ["1", "[]"], out.stderr


async def test_a_change_before_the_watch_is_armed_is_reported_with_since(tmp_path: Path) -> None:
    config = tmp_path / "app.toml"
    config.write_text("a = 1\n")
    known = {config: file_digest(config)}
    config.write_text("a = 2\n")  # before the watch exists
    marker = tmp_path / "marker"
    marker.write_text("marker 0\n")
    calls: asyncio.Queue[tuple[Path, ...]] = asyncio.Queue()
    ready = asyncio.Event()
    task = asyncio.create_task(
        watch_for_changes([config, marker], calls.put_nowait, ready=ready, since=known)
    )
    try:
        await asyncio.wait_for(ready.wait(), TIMEOUT)
        assert await asyncio.wait_for(calls.get(), TIMEOUT) == (config,)
        marker.write_text("marker 1\n")
        assert await asyncio.wait_for(calls.get(), TIMEOUT) == (marker,)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


CHILD = """
import signal, sys
count = 0
def hup(signum, frame):
    global count
    count += 1
    print(f"hup {count}", flush=True)
signal.signal(signal.SIGHUP, hup)
print("ready", flush=True)
sys.stdin.read()  # until the test closes stdin
"""


async def test_sighup_to_a_real_program_once_per_change(
    tmp_path: Path, spawn: Callable[..., Proc]
) -> None:
    # What `warden run --reload-on-change PATH` does for a program that is not Python.
    volume = ConfigMap(tmp_path / "volume", {"nginx.conf": "worker_processes 1;\n"})
    config = volume.path("nginx.conf")
    child = spawn([sys.executable, "-c", CHILD])
    child.wait_line("^ready$")
    async with watching(config, marker=tmp_path / "marker") as watch:
        for hups, n in enumerate(range(2, 5), start=1):
            volume.update({"nginx.conf": f"worker_processes {n};\n"})
            await watch.exactly_one(config)
            os.kill(child.pid, signal.SIGHUP)
            await asyncio.to_thread(child.wait_line, f"^hup {hups}$")
    assert [line for line in child.out if line.startswith("hup")] == [
        "hup 1\n",
        "hup 2\n",
        "hup 3\n",
    ]


def test_without_pyyaml_a_yaml_file_is_a_one_line_error(tmp_path: Path) -> None:
    config = tmp_path / "app.yaml"
    config.write_text("a: 1\n")
    code = f"""
import sys
sys.modules["yaml"] = None  # as if it were not installed
from warden.config import ConfigStore, MissingExtraError
try:
    ConfigStore({str(config)!r})
except MissingExtraError as exc:
    print(exc)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.stdout.strip() == (
        f"the YAML config {config} needs PyYAML, which is not installed: pip install 'warden[yaml]'"
    ), out.stderr


# A session leader with no terminal (warden under runc) digests a path another user points
# at their terminal: it must not open it (and so never make it its controlling terminal).
_TTY_PROBE = """
import os, sys
from pathlib import Path
from warden.config._watch import file_digest
os.setsid()
print(file_digest(Path(sys.argv[1])))
try:
    os.close(os.open("/dev/tty", os.O_RDWR))
    print("has a controlling terminal")
except OSError:
    print("no controlling terminal")
"""


def test_a_path_pointing_at_a_terminal_is_not_opened(tmp_path: Path) -> None:
    leader, follower = os.openpty()
    try:
        link = tmp_path / "config.toml"
        link.symlink_to(os.ttyname(follower))
        done = subprocess.run(
            [sys.executable, "-c", _TTY_PROBE, str(link)],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    finally:
        os.close(leader)
        os.close(follower)
    assert done.stdout.split("\n")[:2] == ["mode 20000", "no controlling terminal"], done
