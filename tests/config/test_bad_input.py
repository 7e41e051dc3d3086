"""Bad input: each a clear one-line error naming the file and the reason; the old config stays."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from warden.config import ConfigError, ConfigStore

GOOD = 'name = "good"\nport = 8080\nhosts = ["a", "b"]\n'


@pytest.fixture
def store(tmp_path: Path) -> ConfigStore[Any]:
    path = tmp_path / "app.toml"
    path.write_text(GOOD)
    return ConfigStore(path, max_bytes=64 * 1024)


def refused(store: ConfigStore[Any], reason: str, stage: str = "parse") -> str:
    before, revision = store.current, store.revision
    result = store.reload()
    assert not result.ok and not result.changed
    assert result.error is not None
    assert "\n" not in result.error
    assert result.error.startswith(f"config {store.path}: "), result.error
    assert reason in result.error, result.error
    assert result.stage == stage
    assert store.current is before and store.revision == revision
    return result.error


def test_truncated_file(store: ConfigStore[Any]) -> None:
    store.path.write_bytes(GOOD.encode()[:30])  # cut inside the key "hosts"
    error = refused(store, "line 3: ")
    assert error.endswith("at the end of the file (truncated?)")


def test_empty_file_is_what_a_truncating_writer_leaves(store: ConfigStore[Any]) -> None:
    store.path.write_bytes(b"")
    refused(store, "is empty (a write in progress?)", stage="read")


def test_a_half_written_file_caught_mid_write(store: ConfigStore[Any]) -> None:
    # A writer that truncated, wrote half and is not done: the reader sees exactly this.
    with open(store.path, "r+b") as out:
        out.truncate(0)
        out.write(b'name = "new"\nport = 80')
        out.flush()
        result = store.reload()  # still only half there (port "80" could be "8080")
        assert result.ok  # a prefix that is valid TOML is valid to any parser ...
        out.write(b'80\nhosts = ["a",')
        out.flush()
        refused(store, "line 3")  # ... and a prefix cut inside a value is not
    # The schema is what catches a valid-looking prefix: see test_race.py.


def test_invalid_utf8_names_the_line(store: ConfigStore[Any]) -> None:
    store.path.write_bytes(b'name = "ok"\nport = 1\nnote = "caf\xe9"\n')
    refused(store, "line 3, column 12: invalid UTF-8 (byte 0xe9)")


def test_syntax_error_names_line_and_column(store: ConfigStore[Any]) -> None:
    store.path.write_text('name = "x"\nport 8080\n')
    refused(store, "line 2, column 6: Expected '=' after a key in a key/value pair")


def test_schema_violation(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text('{"port": 1}')
    store = ConfigStore(path, schema=lambda d: d if d["port"] > 0 else 1 / 0)
    path.write_text('{"port": -1}')
    refused(store, "ZeroDivisionError", stage="validate")
    path.write_text('{"port": 1,\n "x": }')
    refused(store, "line 2, column 7: Expecting value")


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text("a: 1\n")
    store = ConfigStore(path)
    path.write_text("a: 1\nb: [1, 2\nc: 3\n")
    refused(store, "line 3")
    path.write_text("- 1\n- 2\n")
    refused(store, "the top level is a list, not a table/mapping")


def _laughs(depth: int) -> str:
    """The "billion laughs": each level nine aliases of the level below."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, depth + 1)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("depth", [4, 7, 9])
def test_yaml_alias_bomb_is_refused_before_it_expands(tmp_path: Path, depth: int) -> None:
    # Depth 9 is 459 bytes and 4.4 billion values once expanded; it used to pass 950 MB.
    path = tmp_path / "app.yaml"
    path.write_text("a: 1\n")
    store = ConfigStore(path)
    path.write_text(_laughs(depth))
    refused(store, "line 1: its aliases expand")
    path.write_text("a: &a [1, *a]\n")
    refused(store, "recursive document")


def test_yaml_anchors_used_as_intended_still_load(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text("base: &b {port: 1, host: x}\nweb: {<<: *b, port: 2}\njobs: *b\n")
    store = ConfigStore(path)
    assert store.current["web"] == {"port": 2, "host": "x"}
    assert store.current["jobs"] == {"port": 1, "host": "x"}


def test_file_over_the_size_limit(store: ConfigStore[Any]) -> None:
    store.path.write_text(GOOD + "#" * 70_000 + "\n")
    refused(store, "over the limit of 65536 bytes; shrink it or raise", stage="read")


def test_file_deleted(store: ConfigStore[Any]) -> None:
    store.path.unlink()
    refused(store, "does not exist (deleted, or not created yet)", stage="read")


def test_symlink_loop(store: ConfigStore[Any], tmp_path: Path) -> None:
    store.path.unlink()
    other = tmp_path / "other.toml"
    store.path.symlink_to(other)
    other.symlink_to(store.path)
    refused(store, "is a symlink loop", stage="read")


def test_a_directory_where_the_file_should_be(store: ConfigStore[Any]) -> None:
    store.path.unlink()
    store.path.mkdir()
    refused(store, "is a directory; give the path of the file inside it", stage="read")


def test_a_directory_given_as_the_path_is_named_so(tmp_path: Path) -> None:
    """``ConfigStore(".")``: the directory has no suffix, yet the error is what it is."""
    with pytest.raises(ConfigError, match="is a directory; give the path of the file inside it"):
        ConfigStore(tmp_path)


def test_a_fifo_does_not_hang_the_reload(store: ConfigStore[Any]) -> None:
    store.path.unlink()
    os.mkfifo(store.path)
    refused(store, "is not a regular file", stage="read")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="warden-config-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the reader as another user")
def test_permission_denied(shared_dir: Path, spawn: Callable[..., object]) -> None:
    # root reads any file; the reader runs as nobody, as a service would, in a real process.
    path = shared_dir / "app.toml"
    path.write_text(GOOD)
    path.chmod(0o644)
    code = f"""
import os, sys
from warden.config import ConfigStore
os.setgid(65534); os.setuid(65534)
store = ConfigStore({str(path)!r})
print("loaded", store.revision, flush=True)
sys.stdin.readline()
result = store.reload()
print(result.ok, store.revision, result.error, flush=True)
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "loaded 1"
        path.chmod(0o600)  # owned by root: nobody may not read it any more
        path.write_text(GOOD.replace("good", "new"))
        out, err = proc.communicate("\n", timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out.strip() == (
        f"False 1 config {path}: permission denied; make it readable by uid 65534"
    ), err


def test_failures_are_events_on_the_timeline(store: ConfigStore[Any]) -> None:
    from warden import Lifecycle
    from warden.config import ConfigReloadFailed

    lc = Lifecycle(handle_signals=False)
    store.attach(lc)
    store.path.write_text("port = \n")
    store.reload()
    facts = [e.fact for e in lc.timeline if isinstance(e.fact, ConfigReloadFailed)]
    assert len(facts) == 1
    assert facts[0].file == store.path and facts[0].stage == "parse"
    assert facts[0].revision == 1 and "line 1" in facts[0].error
