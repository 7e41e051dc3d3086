"""doctor reads warden's options as ``warden run`` does: the same parser, the same variables,
the same converters, from the one option table."""

from __future__ import annotations

import pytest

from tests.supervisor.test_options import SAMPLES
from warden.cli._run import parse
from warden.doctor._env import EnvVar
from warden.doctor._results import Where
from warden.doctor._warden import READ, read_warden
from warden.supervisor._options import OPTIONS

HERE = Where("test")


@pytest.mark.parametrize("name", [name for name in READ if name in SAMPLES])
def test_a_flag_reads_as_warden_run_reads_it(name: str) -> None:
    option = dict(OPTIONS)[name]
    argv = [option.flag] if option.switch else [option.flag, SAMPLES[name]]
    gate = ["--ready", "notify"] if name == "recycle_at" else []  # warden run wants one
    ours = read_warden([*argv, "--", "x"], {}, HERE)
    theirs = parse([*gate, *argv, "--", "x"], {})
    assert ours[name].value == getattr(theirs, name)
    assert not ours[name].default and ours.problems == ()
    assert ours.command == ("x",)


@pytest.mark.parametrize("name", [name for name in READ if name in SAMPLES])
def test_a_variable_reads_as_warden_run_reads_it(name: str) -> None:
    option = dict(OPTIONS)[name]
    env = {option.env: SAMPLES[name]}
    ours = read_warden(["--", "x"], {k: EnvVar(v, HERE) for k, v in env.items()}, HERE)
    gate = ["--ready", "notify"] if name == "recycle_at" else []  # warden run wants one
    assert ours[name].value == getattr(parse([*gate, "--", "x"], env), name)
    assert ours[name].label == f"{option.env}={SAMPLES[name]}"


def test_the_flag_wins_over_the_variable() -> None:
    env = {"WARDEN_STOP_TIMEOUT": EnvVar("40s", HERE)}
    ours = read_warden(["--stop-timeout", "5", "--", "x"], env, HERE)
    assert ours["stop_timeout"].value == 5.0
    assert ours["stop_timeout"].label == "--stop-timeout 5"


def test_every_option_doctor_reads_is_in_the_table() -> None:
    assert set(READ) <= {name for name, _ in OPTIONS}


def test_reload_on_change_is_taken_as_written_not_checked_on_this_machine() -> None:
    # warden run's converter wants the directory to exist here; the manifest is for a pod.
    ours = read_warden(["--reload-on-change", "/etc/nowhere/app.conf", "--", "x"], {}, HERE)
    assert ours.reload_on_change == ("/etc/nowhere/app.conf",)
    assert ours.problems == ()
