"""The store as a lifecycle component: SIGHUP, the watcher on the loop, facts, systemd."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from warden import Lifecycle, Notifier, notify_systemd
from warden.config import (
    ConfigReloaded,
    ConfigReloadFailed,
    ConfigReloading,
    ConfigStore,
    ConfigWatchDone,
)
from warden.lifecycle import Event, Fact, Outcome, ReloadFinished, State

from ._files import ConfigMap, write_atomic

TIMEOUT = 10.0


class Manager:
    """A real AF_UNIX datagram socket standing in for systemd's notify socket."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(TIMEOUT)
        self.notifier = Notifier(str(path))

    def messages(self) -> list[dict[str, str]]:
        """Every datagram received so far (the sends are synchronous: they are all here)."""
        found = []
        self.sock.setblocking(False)
        try:
            while True:
                data = self.sock.recv(4096).decode()
                found.append(dict(line.split("=", 1) for line in data.splitlines()))
        except BlockingIOError:
            return found
        finally:
            self.sock.settimeout(TIMEOUT)


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[Manager]:
    m = Manager(tmp_path / "notify.sock")
    yield m
    m.sock.close()
    m.notifier.close()


class Facts:
    """The timeline's facts, and a way to wait for one of a kind."""

    def __init__(self, lc: Lifecycle) -> None:
        self.facts: list[Fact] = []
        self._waiters: list[tuple[type[Fact], asyncio.Future[Fact]]] = []
        lc.timeline.subscribe(self._seen)

    def _seen(self, event: Event) -> None:
        self.facts.append(event.fact)
        for kind, future in list(self._waiters):
            if isinstance(event.fact, kind) and not future.done():
                future.set_result(event.fact)
                self._waiters.remove((kind, future))

    async def next(self, kind: type[Fact]) -> Fact:
        future: asyncio.Future[Fact] = asyncio.get_running_loop().create_future()
        self._waiters.append((kind, future))
        return await asyncio.wait_for(future, TIMEOUT)

    def of(self, *kinds: type[Fact]) -> list[Fact]:
        return [f for f in self.facts if isinstance(f, kinds)]


def reload_messages(messages: list[dict[str, str]]) -> list[str]:
    return [
        "RELOADING" if "RELOADING" in m else "READY"
        for m in messages
        if "RELOADING" in m or "READY" in m
    ]


async def test_sighup_reloads_and_systemd_hears_one_reloading_and_one_ready(
    tmp_path: Path, manager: Manager
) -> None:
    path = tmp_path / "app.toml"
    path.write_text("n = 1\n")
    store = ConfigStore(path)
    lc = Lifecycle()
    store.attach(lc)
    facts = Facts(lc)
    notify_systemd(lc, manager.notifier)
    async with lc:
        assert reload_messages(manager.messages()) == ["READY"]
        write_atomic(path, "n = 2\n")
        os.kill(os.getpid(), signal.SIGHUP)  # a real signal, through the lifecycle's handler
        done = await facts.next(ReloadFinished)
        assert isinstance(done, ReloadFinished) and done.result is Outcome.OK
        assert store.current["n"] == 2 and store.revision == 2
        started, reloaded = facts.of(ConfigReloaded)  # the first load is said at the start
        assert isinstance(started, ConfigReloaded) and isinstance(reloaded, ConfigReloaded)
        assert (started.trigger, started.revision, started.took) == ("start", 1, None)
        assert (reloaded.file, reloaded.revision, reloaded.changed) == (path, 2, True)
        assert reloaded.trigger == "signal" and reloaded.digest == store.digest
        messages = manager.messages()
        assert reload_messages(messages) == ["RELOADING", "READY"]  # no second pair
        assert "MONOTONIC_USEC" in messages[0]
        lc.request_stop("test over")
    assert lc.leaks == []


async def test_a_bad_file_on_sighup_fails_the_reload_and_keeps_the_old(tmp_path: Path) -> None:
    path = tmp_path / "app.toml"
    path.write_text("n = 1\n")
    store = ConfigStore(path)
    lc = Lifecycle()
    store.attach(lc)
    facts = Facts(lc)
    async with lc:
        path.write_text("n = = 2\n")
        os.kill(os.getpid(), signal.SIGHUP)
        done = await facts.next(ReloadFinished)
        assert isinstance(done, ReloadFinished) and done.result is Outcome.FAILED
        assert "line 1, column 5" in done.errors[0]
        [failed] = facts.of(ConfigReloadFailed)
        assert isinstance(failed, ConfigReloadFailed)
        assert failed.revision == 1 and failed.stage == "parse" and failed.trigger == "signal"
        assert store.current["n"] == 1 and lc.state is State.READY
        lc.request_stop("test over")


async def test_the_watcher_runs_on_the_loop_and_brackets_its_reloads(
    tmp_path: Path, manager: Manager
) -> None:
    volume = ConfigMap(tmp_path / "volume", {"app.toml": "n = 1\n"})
    store = ConfigStore(volume.path("app.toml"), watch=True)  # a thread, until attached
    lc = Lifecycle(handle_signals=False)
    store.attach(lc)
    assert not [t for t in threading.enumerate() if t.name == "warden:config:watch"]
    facts = Facts(lc)
    notify_systemd(lc, manager.notifier)
    async with lc:
        manager.messages()
        volume.update({"app.toml": "n = 2\n"})
        await facts.next(ConfigWatchDone)
        assert store.current["n"] == 2
        kinds = [type(f) for f in facts.of(ConfigReloading, ConfigReloaded, ConfigWatchDone)]
        assert kinds == [ConfigReloaded, ConfigReloading, ConfigReloaded, ConfigWatchDone]
        messages = manager.messages()
        assert reload_messages(messages) == ["RELOADING", "READY"]
        assert "MONOTONIC_USEC" in messages[0]
        # A bad update: refused, still bracketed, and READY=1 says the old config serves.
        volume.update({"app.toml": "n = \n"})
        done = await facts.next(ConfigWatchDone)
        assert isinstance(done, ConfigWatchDone) and not done.ok
        assert store.current["n"] == 2
        assert [type(f) for f in facts.of(ConfigReloadFailed)] == [ConfigReloadFailed]
        assert reload_messages(manager.messages()) == ["RELOADING", "READY"]
        lc.request_stop("test over")
    assert lc.leaks == []
    assert not [t for t in threading.enumerate() if t.name.startswith("warden:watch")]


def test_watch_true_without_a_lifecycle_reloads_on_its_own_thread(tmp_path: Path) -> None:
    path = tmp_path / "app.toml"
    path.write_text("n = 1\n")
    commits: list[int] = []
    committed = threading.Event()
    with ConfigStore(path, watch=True) as store:

        def commit(old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
            commits.append(new["n"])
            committed.set()

        store.subscribe(commit)
        for n in range(2, 102):  # a burst: one reload, once the writes stop
            path.write_text(f"n = {n}\n")
        assert committed.wait(TIMEOUT)
        assert store.current["n"] == 101
        assert store.revision == 2
        assert commits == [101]
    assert not [t for t in threading.enumerate() if t.name == "warden:config:watch"]


async def test_a_change_between_construction_and_start_is_applied_at_start(
    tmp_path: Path,
) -> None:
    path = tmp_path / "app.toml"
    path.write_text("n = 1\n")
    store = ConfigStore(path, watch=True)
    lc = Lifecycle(handle_signals=False)
    store.attach(lc)
    facts = Facts(lc)
    write_atomic(path, "n = 2\n")  # no watch is armed now: the thread stopped at attach()
    async with lc:
        reloaded = await facts.next(ConfigReloaded)
        assert isinstance(reloaded, ConfigReloaded) and reloaded.revision == 2
        assert store.current["n"] == 2
        lc.request_stop("test over")
