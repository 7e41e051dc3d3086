"""ConfigStore: snapshots, revisions, digests, sources, validators and subscribers."""

from __future__ import annotations

import dataclasses
import json
import re
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydantic
import pytest

from warden import ConfigurationError
from warden.config import ConfigError, ConfigStore, ReloadResult

from ._files import write_atomic


@dataclasses.dataclass(frozen=True)
class Db:
    host: str
    port: int = 5432


@dataclasses.dataclass(frozen=True)
class Settings:
    name: str
    db: Db
    debug: bool = False
    hosts: tuple[str, ...] = ()


class Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True)
    name: str
    port: int = pydantic.Field(gt=0, lt=65536)


def toml(tmp_path: Path, text: str, name: str = "app.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_first_load_is_revision_1_with_a_digest(tmp_path: Path) -> None:
    path = toml(tmp_path, 'name = "a"\n[db]\nhost = "h"\n')
    store = ConfigStore(path, schema=Settings)
    assert store.current == Settings(name="a", db=Db(host="h"))
    assert store.revision == 1
    assert len(store.digest) == 64
    assert store.snapshot.value is store.current
    assert store.snapshot.path == path


def test_a_failing_first_load_is_a_configuration_error(tmp_path: Path) -> None:
    path = toml(tmp_path, 'name = "a"\n')
    with pytest.raises(ConfigurationError, match=r"app\.toml: field db: missing"):
        ConfigStore(path, schema=Settings)
    with pytest.raises(ConfigError, match="does not exist"):
        ConfigStore(tmp_path / "nope.toml")


def test_reload_swaps_a_new_revision_and_same_content_is_no_revision(tmp_path: Path) -> None:
    path = toml(tmp_path, 'name = "a"\n[db]\nhost = "h"\n')
    store = ConfigStore(path, schema=Settings)
    calls: list[tuple[object, object]] = []
    store.subscribe(lambda old, new: calls.append((old, new)))
    first = store.current
    write_atomic(path, 'name = "b"\n[db]\nhost = "h"\n')
    result = store.reload()
    assert isinstance(result, ReloadResult)
    assert (result.ok, result.changed, result.revision, result.error) == (True, True, 2, None)
    assert result.digest == store.digest != ""
    assert store.current.name == "b"
    assert calls == [(first, store.current)]
    again = store.reload()
    assert (again.ok, again.changed, again.revision) == (True, False, 2)
    assert len(calls) == 1  # unchanged content calls no subscriber


def test_reload_never_raises_and_keeps_the_old_snapshot(tmp_path: Path) -> None:
    path = toml(tmp_path, 'name = "a"\n[db]\nhost = "h"\n')
    store = ConfigStore(path, schema=Settings)
    before = store.current
    path.write_text('name = "a"\n[db]\nport = "x"\n')
    result = store.reload()
    assert not result.ok and not result.changed
    assert result.revision == 1 and result.stage == "validate"
    assert result.error is not None and "\n" not in result.error
    assert str(path) in result.error and "db.host" in result.error
    assert store.current is before


def test_store_attributes_are_read_only(tmp_path: Path) -> None:
    store = ConfigStore(toml(tmp_path, "a = 1\n"))
    with pytest.raises(AttributeError, match="read-only"):
        store.current = {}
    with pytest.raises(AttributeError, match="read-only"):
        store.snapshot = store.snapshot


def test_without_schema_the_snapshot_is_a_read_only_mapping(tmp_path: Path) -> None:
    store = ConfigStore(toml(tmp_path, "a = [1, 2]\n[t]\nx = 1\n"))
    value = store.current
    assert isinstance(value, types.MappingProxyType)
    assert value["a"] == (1, 2)
    with pytest.raises(TypeError):
        value["t"]["x"] = 2


def test_json_and_yaml_sources(tmp_path: Path) -> None:
    j = tmp_path / "app.json"
    j.write_text(json.dumps({"name": "j", "port": 80}))
    assert ConfigStore(j, schema=Model).current == Model(name="j", port=80)
    y = tmp_path / "app.yaml"
    y.write_text("name: y\nport: 81\n")
    assert ConfigStore(y, schema=Model).current == Model(name="y", port=81)
    other = tmp_path / "app.conf"
    other.write_text("name = 'c'\nport = 82\n")
    assert ConfigStore(other, schema=Model, format="toml").current.port == 82
    with pytest.raises(ConfigError, match=r"suffix '\.conf' names no format"):
        ConfigStore(other)


def test_pydantic_errors_name_the_field(tmp_path: Path) -> None:
    path = toml(tmp_path, 'name = "a"\nport = 80\n')
    store = ConfigStore(path, schema=Model)
    path.write_text('name = "a"\nport = 70000\n')
    result = store.reload()
    assert result.error is not None
    assert result.error.startswith(f"config {path}: field port: ")
    assert "65536" in result.error


def test_a_callable_validator_returns_the_snapshot(tmp_path: Path) -> None:
    def check(data: dict[str, Any]) -> int:
        if data["n"] < 0:
            raise ValueError(f"n={data['n']} is negative; use 0 or more")
        return int(data["n"])

    path = toml(tmp_path, "n = 1\n")
    store = ConfigStore(path, schema=check)
    assert store.current == 1
    path.write_text("n = -1\n")
    result = store.reload()
    assert result.error == f"config {path}: ValueError: n=-1 is negative; use 0 or more"
    assert store.current == 1


def test_dataclass_validation_rejects_unknown_keys_and_wrong_types(tmp_path: Path) -> None:
    path = toml(tmp_path, 'name = "a"\n[db]\nhost = "h"\n')
    store = ConfigStore(path, schema=Settings)
    cases = {
        'name = "a"\nnme = 1\n[db]\nhost = "h"\n': "field nme: unknown key",
        'name = "a"\n[db]\nhost = 3\n': "field db.host: expected str, got int",
        'name = "a"\nhosts = [1]\n[db]\nhost = "h"\n': r"field hosts\[0\]: expected str",
        'name = "a"\ndb = 1\n': "field db: expected a table",
    }
    for text, message in cases.items():
        path.write_text(text)
        error = store.reload().error
        assert error is not None
        assert re.search(message, error), error
    assert store.revision == 1


def test_environment_overlay_wins_over_the_file(tmp_path: Path) -> None:
    path = toml(tmp_path, 'name = "a"\n[db]\nhost = "file"\nport = 1\n')
    env = {"APP__DB__HOST": "env", "APP__DB__PORT": "6543", "APP__DEBUG": "true", "OTHER": "x"}
    store = ConfigStore(path, schema=Settings, env_prefix="APP", environ=env)
    assert store.current.db == Db(host="env", port=6543)
    assert store.current.debug is True
    # The overlay is part of the content: a changed variable is a new revision.
    env["APP__DB__PORT"] = "7000"
    result = store.reload()
    assert result.changed and store.current.db.port == 7000
    env["APP__NAME__X"] = "1"
    error = store.reload().error
    assert error is not None and "name is not a table in the file" in error


def test_an_error_in_a_value_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    # The file says port = 1; the environment overrides it. An error that named only the
    # field sent the reader to a file where the value is right.
    path = toml(tmp_path, 'name = "a"\n[db]\nhost = "file"\nport = 1\n')
    env = {"App__Db__Port": "x"}
    with pytest.raises(ConfigError) as first:
        ConfigStore(path, schema=Settings, env_prefix="App", environ=env)
    assert first.value.field == "db.port"
    assert str(first.value) == (
        f"config {path}: field db.port: expected int, got a string 'x'; "
        "set by the environment variable App__Db__Port, which wins over the file"
    )
    env["App__Db__Port"] = "2"
    store = ConfigStore(path, schema=Settings, env_prefix="App", environ=env)
    cases = {
        "App__Db__Portt": "field db.portt: unknown key .*; set by the environment variable "
        "App__Db__Portt,",
        "App__Name__X": "name is not a table in the file; set by the environment variable "
        "App__Name__X,",
    }
    for name, message in cases.items():
        env[name] = "1"
        error = store.reload().error
        assert error is not None and re.search(message, error), error
        del env[name]
    del env["App__Db__Port"]
    path.write_text('name = "a"\n[db]\nhost = "file"\nport = "y"\n')
    error = store.reload().error  # the file's own error: no variable to blame
    assert error == f"config {path}: field db.port: expected int, got a string 'y'", error


def test_a_veto_rolls_back_and_abandons_those_that_prepared(tmp_path: Path) -> None:
    path = toml(tmp_path, "n = 1\n")
    store: ConfigStore[Mapping[str, Any]] = ConfigStore(path)
    log: list[str] = []

    def veto(old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        log.append("prepare veto")
        if new["n"] > 5:
            raise RuntimeError(f"n={new['n']} exceeds the pool size 5")

    store.subscribe(
        lambda o, n: log.append("commit first"),
        prepare=lambda o, n: log.append("prepare first"),
        abandon=lambda o, n: log.append("abandon first"),
        name="first",
    )
    store.subscribe(lambda o, n: log.append("commit veto"), prepare=veto, name="pool")
    store.subscribe(lambda o, n: log.append("commit last"), prepare=lambda o, n: log.append("x"))
    before = store.current
    path.write_text("n = 9\n")
    result = store.reload()
    assert not result.ok and result.stage == "prepare"
    assert (
        result.error == f"config {path}: vetoed by pool: RuntimeError: n=9 exceeds the pool size 5"
    )
    assert log == ["prepare first", "prepare veto", "abandon first"]
    assert store.current is before and store.revision == 1
    # prepare returning False is a veto too
    unsubscribe = store.subscribe(prepare=lambda o, n: False, name="no")
    path.write_text("n = 2\n")
    assert store.reload().error == f"config {path}: vetoed by no: prepare returned False"
    unsubscribe()
    # Without a name, the veto names the prepare that vetoed, not the commit beside it.

    class Pool:
        def check(self, old: object, new: object) -> bool:
            return False

        def resize(self, old: object, new: object) -> None: ...

    pool = Pool()
    unsubscribe = store.subscribe(pool.resize, prepare=pool.check)
    path.write_text("n = 3\n")
    vetoed = store.reload().error
    assert vetoed is not None and "vetoed by " in vetoed and "Pool.check: " in vetoed, vetoed
    unsubscribe()
    log.clear()
    assert store.reload().changed
    assert log == [
        "prepare first",
        "prepare veto",
        "x",
        "commit first",
        "commit veto",
        "commit last",
    ]


def test_a_commit_that_raises_is_reported_and_the_others_still_run(tmp_path: Path) -> None:
    path = toml(tmp_path, "n = 1\n")
    store = ConfigStore(path)
    seen: list[int] = []

    def broken(old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        raise OSError("cannot resize the pool")

    store.subscribe(broken, name="pool")
    store.subscribe(lambda old, new: seen.append(new["n"]))
    path.write_text("n = 2\n")
    result = store.reload()
    assert result.ok and result.changed and result.revision == 2
    assert result.commit_errors == ("pool: OSError: cannot resize the pool",)
    assert seen == [2]


def test_bad_arguments_are_clear_errors(tmp_path: Path) -> None:
    path = toml(tmp_path, "a = 1\n")
    with pytest.raises(ConfigError, match="max_bytes=0 is not a positive integer"):
        ConfigStore(path, max_bytes=0)
    with pytest.raises(ConfigError, match="debounce=-1 is not a positive number"):
        ConfigStore(path, debounce=-1)
    with pytest.raises(ConfigError, match="format='ini' is not known"):
        ConfigStore(path, format="ini")
    with pytest.raises(ConfigError, match="is not a pydantic model, a dataclass or a callable"):
        ConfigStore(path, schema=3)  # type: ignore[call-overload]
