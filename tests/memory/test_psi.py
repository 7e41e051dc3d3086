"""PSI triggers: registered on the real /proc/pressure/memory and torn down; systemd's env.

Without CAP_SYS_RESOURCE the kernel takes only windows that are multiples of 2 s (SPEC §6),
so the default trigger is "some 100000 2000000"; a 1 s window is refused with EINVAL and the
sentinel says so in one line and goes on.
"""

from __future__ import annotations

import base64
import os
import select
from pathlib import Path

import pytest

from warden.lifecycle import Fact
from warden.memory import MemorySentinel, MemoryWatchDegraded
from warden.memory._sources import DEFAULT_PSI_TRIGGER, open_psi_trigger, psi_trigger

PSI = Path("/proc/pressure/memory")
needs_psi = pytest.mark.skipif(not PSI.exists(), reason="no PSI (/proc/pressure/memory)")


def _trigger_fds() -> set[int]:
    """This process's fds open on the PSI file (a trigger lives exactly as long as its fd)."""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == str(PSI):
                found.add(int(name))
        except OSError:
            continue
    return found


@needs_psi
def test_trigger_registered_and_torn_down() -> None:
    fd = open_psi_trigger(PSI, DEFAULT_PSI_TRIGGER.encode() + b"\0")
    try:
        poller = select.poll()
        poller.register(fd, select.POLLPRI)
        assert poller.poll(0) == []  # armed, and nothing stalls on an idle machine
        assert fd in _trigger_fds()
    finally:
        os.close(fd)
    assert fd not in _trigger_fds()


@needs_psi
def test_a_window_that_is_not_a_multiple_of_2s_is_refused() -> None:
    if os.geteuid() == 0 and _has_sys_resource():
        pytest.skip("CAP_SYS_RESOURCE allows any window")
    with pytest.raises(OSError) as caught:
        open_psi_trigger(PSI, b"some 100000 1000000\0")
    assert caught.value.errno == 22  # EINVAL


def _has_sys_resource() -> bool:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) & (1 << 24))
    return False


@needs_psi
async def test_the_sentinel_arms_psi_and_disarms_it_at_stop() -> None:
    facts: list[Fact] = []
    sentinel = MemorySentinel(None, publish=facts.append)
    before = _trigger_fds()
    await sentinel.start()
    try:
        assert f"PSI {PSI}" in sentinel.sources
        assert len(_trigger_fds() - before) == 1
    finally:
        sentinel.stop()
    assert _trigger_fds() == before


@needs_psi
async def test_a_refused_trigger_is_one_line_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    if _has_sys_resource():
        pytest.skip("CAP_SYS_RESOURCE allows any window")
    monkeypatch.setenv("MEMORY_PRESSURE_WATCH", str(PSI))
    monkeypatch.setenv("MEMORY_PRESSURE_WRITE", base64.b64encode(b"some 100000 1000000\0").decode())
    facts: list[Fact] = []
    sentinel = MemorySentinel(None, publish=facts.append)
    await sentinel.start()
    sentinel.stop()
    refused = [f for f in facts if isinstance(f, MemoryWatchDegraded)]
    assert len(refused) == 1 and "multiples of 2 s" in refused[0].reason


async def test_an_unwritable_pressure_file_is_not_blamed_on_the_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A container's read-only cgroupfs refuses the open (EACCES/EROFS, seen under runc on
    cgroup v2): the line says so, not that the window is wrong."""
    monkeypatch.setenv("MEMORY_PRESSURE_WATCH", "/proc/version")  # read-only even for root
    facts: list[Fact] = []
    sentinel = MemorySentinel(None, publish=facts.append)
    await sentinel.start()
    sentinel.stop()
    (refused,) = [f for f in facts if isinstance(f, MemoryWatchDegraded)]
    assert "/proc/version refused" in refused.reason
    assert "not writable by this process" in refused.reason
    assert "multiples of 2 s" not in refused.reason


def test_systemd_memory_pressure_environment() -> None:
    written = base64.b64encode(b"full 50000 2000000\0").decode()
    env = {
        "MEMORY_PRESSURE_WATCH": "/sys/fs/cgroup/app/memory.pressure",
        "MEMORY_PRESSURE_WRITE": written,
    }
    assert psi_trigger(env) == (Path("/sys/fs/cgroup/app/memory.pressure"), b"full 50000 2000000\0")
    assert psi_trigger({"MEMORY_PRESSURE_WATCH": "/dev/null"}) is None
    assert psi_trigger({}, default_path=PSI) == (PSI, DEFAULT_PSI_TRIGGER.encode() + b"\0")
    with pytest.raises(ValueError, match="MEMORY_PRESSURE_WRITE"):
        psi_trigger({"MEMORY_PRESSURE_WATCH": str(PSI), "MEMORY_PRESSURE_WRITE": "not base64!"})
