"""The root leaf modules: one duration and size parser, AF_UNIX helpers, the runtime directory."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from warden import ConfigurationError
from warden._durations import parse_duration
from warden._paths import default_control_path, runtime_dir
from warden._sizes import parse_size
from warden._unix import (
    SUN_PATH_MAX,
    clear_stale_socket,
    file_identity,
    is_listening,
    path_bytes,
    unlink_if_ours,
)
from warden.cli._control import _duration as client_duration

# -- durations and sizes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 30.0), ("250ms", 0.25), ("1.5s", 1.5), ("5 s", 5.0), (" 2m ", 120.0), ("1e3ms", 1.0)],
)
def test_one_duration_rule_for_the_library_and_the_cli_client(text: str, seconds: float) -> None:
    assert parse_duration(text, what="x") == seconds
    assert client_duration(text) == seconds  # `warden upgrade --timeout` reads them the same


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1048576", 1 << 20),
        ("512M", 512 << 20),
        ("1G", 1 << 30),
        ("1.5g", 3 << 29),
        ("64 KiB", 64 << 10),
        ("2MB", 2 << 20),
        ("256Mi", 256 << 20),
        ("1T", 1 << 40),
    ],
)
def test_sizes_are_bytes_or_powers_of_1024(text: str, size: int) -> None:
    assert parse_size(text, what="--memory-limit") == size


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("lots", "--memory-limit='lots' is not a size; write bytes or a number with K"),
        ("-1M", "--memory-limit='-1M' is negative"),
        ("0", "--memory-limit='0' must be more than 0 bytes"),
        (float("inf"), "must be a finite number of bytes"),
        (True, "must be a size in bytes, got True"),
        ("5X", "is not a size"),
    ],
)
def test_bad_sizes_are_one_clear_line(value: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_size(value, what="--memory-limit", allow_zero=False)


# -- AF_UNIX -----------------------------------------------------------------------------------


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory under /tmp: an AF_UNIX path holds 107 bytes, pytest's tmp_path may not."""
    directory = Path(tempfile.mkdtemp(prefix="warden-unix-", dir="/tmp"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_sun_path_counts_bytes() -> None:
    assert SUN_PATH_MAX == 107
    assert path_bytes("/tmp/é") == 7


def test_a_stale_socket_file_is_removed(short_dir: Path) -> None:
    path = str(short_dir / "stale.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gone:
        gone.bind(path)  # bound, never listening, closed: what a killed server leaves
    assert not is_listening(path)
    clear_stale_socket(path)
    assert not os.path.lexists(path)
    clear_stale_socket(path)  # nothing there: nothing to do


def test_a_live_listener_is_in_use_even_with_a_full_backlog(short_dir: Path) -> None:
    path = str(short_dir / "live.sock")
    clients: list[socket.socket] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as live:
        live.bind(path)
        live.listen(0)
        try:
            # Fill the backlog: a blocking connect() would now wait; the probe must not.
            for _ in range(4):
                client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                client.setblocking(False)
                clients.append(client)
                try:
                    client.connect(path)
                except BlockingIOError:
                    break
            assert is_listening(path)
            with pytest.raises(OSError) as info:
                clear_stale_socket(path)
            assert info.value.errno == errno.EADDRINUSE
            assert os.path.lexists(path)
        finally:
            for client in clients:
                client.close()


def test_a_file_that_is_not_a_socket_is_refused(short_dir: Path) -> None:
    path = short_dir / "plain"
    path.write_text("keep me\n")
    with pytest.raises(OSError) as info:
        clear_stale_socket(str(path))
    assert info.value.errno == errno.EEXIST
    assert path.read_text() == "keep me\n"


def test_only_our_own_file_is_removed(short_dir: Path) -> None:
    path = short_dir / "ours.sock"
    path.write_text("first")
    ours = file_identity(str(path))
    successor = short_dir / "successor.sock"
    successor.write_text("a successor's")  # made while ours exists: another inode
    successor.replace(path)  # the same path now names the successor's file
    assert not unlink_if_ours(str(path), ours)
    assert path.read_text() == "a successor's"
    assert unlink_if_ours(str(path), file_identity(str(path)))
    assert not path.exists()
    assert not unlink_if_ours(str(path), None)


# -- the runtime directory ---------------------------------------------------------------------


def test_one_runtime_directory_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert runtime_dir() == str(tmp_path)
    assert default_control_path() == f"{tmp_path}/warden/control.sock"


@pytest.mark.parametrize("value", ["relative/dir", "", "/nonexistent/warden-test-dir"])
def test_an_unusable_xdg_runtime_dir_is_passed_over(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", value)
    if os.access("/run", os.W_OK | os.X_OK):
        assert runtime_dir() == "/run"
        assert default_control_path() == "/run/warden/control.sock"
    else:
        assert runtime_dir() == tempfile.gettempdir()
        assert (
            default_control_path() == f"{tempfile.gettempdir()}/warden-{os.getuid()}/control.sock"
        )
