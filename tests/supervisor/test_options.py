"""``warden run``'s options, declared once: the parser, the variables and the value agree."""

from __future__ import annotations

import dataclasses
import signal
from typing import Any

import pytest

from warden import ConfigurationError
from warden.cli._run import _build_parser
from warden.supervisor import SupervisorOptions
from warden.supervisor._declare import declared, fill, option, paths, size
from warden.supervisor._options import OPTIONS

#: A valid text for options, each other than the default.
SAMPLES = {
    "stop_signal": "QUIT",
    "stop_timeout": "1.5s",
    "group": "1",
    "restart": "on-failure",
    "backoff_initial": "250ms",
    "backoff_max": "1m",
    "backoff_jitter": "50%",
    "min_uptime": "3",
    "max_restarts": "unlimited",
    "listen": "tcp://127.0.0.1:0",
    "ready": "notify",
    "ready_timeout": "5s",
    "notify_access": "all",
    "watchdog": "10s",
    "on_hup": "forward",
    "drain_timeout": "20s",
    "upgrade_check": "./check.sh --quick",
    "upgrade_confirm": "30s",
    "upgrade_confirm_url": "http://127.0.0.1:8000/healthz",
    "memory_limit": "512M",
    "memory_warn_signal": "USR1",
    "recycle_at": "high",
    "control": "/run/app/control.sock",
    "pid_file": "/run/app.pid",
}


def test_the_samples_name_options() -> None:
    # Not every option needs a sample (the rule is the same for all), but a renamed one is
    # noticed, and most of the table is exercised.
    names = {name for name, _ in OPTIONS}
    assert set(SAMPLES) <= names
    assert len(SAMPLES) >= len(names) * 3 // 4


@pytest.mark.parametrize("name", [name for name, _ in OPTIONS])
def test_the_flag_names_the_variable_and_both_are_in_the_help(name: str) -> None:
    option = dict(OPTIONS)[name]
    assert option.flag == "--" + name.replace("_", "-")
    assert option.env == "WARDEN_" + name.upper()
    text = _build_parser().format_help()
    assert option.flag in text
    assert f"[{option.env}" in text


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_flag_and_the_variable_give_the_same_value(name: str) -> None:
    option = dict(OPTIONS)[name]
    given: object = [SAMPLES[name]] if option.repeat else SAMPLES[name]
    if option.switch:
        given = True
    # --recycle-at asks for upgrades, which need a gate (given as a flag: not the one tested).
    gate = {"ready": "notify"} if name == "recycle_at" else {}
    from_flag = SupervisorOptions.from_inputs(["x"], {**gate, name: given}, {})
    from_env = SupervisorOptions.from_inputs(["x"], gate, {option.env: SAMPLES[name]})
    assert getattr(from_flag, name) == getattr(from_env, name)
    assert getattr(from_flag, name) != getattr(SupervisorOptions(command=("x",)), name)


def test_without_flags_the_value_has_the_fields_defaults_but_the_control_path() -> None:
    parsed = SupervisorOptions.from_inputs(["x"], {}, {})
    direct = SupervisorOptions(command=("x",))
    assert dataclasses.replace(parsed, control=None, control_optional=False) == direct
    assert parsed.control is not None and parsed.control_optional
    assert SupervisorOptions.from_inputs(["x"], {}, {"WARDEN_CONTROL": "none"}).control is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("stop_timeout", -1, "stop_timeout=-1 is negative"),
        ("ready_timeout", 0, "ready_timeout=0 must be more than 0 seconds"),
        ("watchdog", 0.0, "watchdog=0.0 must be more than 0 seconds"),
        ("backoff_jitter", 2, "backoff_jitter=2 is not a fraction from 0 to 1"),
        ("max_restarts", -1, "max_restarts=-1 is not a number of restarts"),
        ("notify_access", "some", "notify_access='some' is not a notify access"),
        ("on_hup", "restart", "on_hup='restart' is not a SIGHUP action"),
        ("stop_signal", signal.SIGSTOP, "SIGSTOP freezes a program"),
        ("backoff_initial", 60, "backoff initial 60s is above its maximum 30s"),
        (
            "upgrade_confirm_url",
            "https://127.0.0.1/",
            "upgrade_confirm_url='https://127.0.0.1/' is not an http:// URL",
        ),
        ("upgrade_confirm_url", "http://127.0.0.1/", "needs a host and a port"),
    ],
)
def test_a_value_built_directly_is_checked_as_its_flag_is(
    field: str, value: object, message: str
) -> None:
    values: dict[str, Any] = {field: value}
    with pytest.raises(ConfigurationError, match=message):
        SupervisorOptions(command=("x",), **values)


def test_a_confirm_url_needs_a_window() -> None:
    values: dict[str, Any] = {"upgrade_confirm": 0, "upgrade_confirm_url": "http://[::1]:80/"}
    with pytest.raises(ConfigurationError, match="checked in the --upgrade-confirm window"):
        SupervisorOptions(command=("x",), **values)


@pytest.mark.parametrize(
    ("variables", "words"),
    [
        ({"WARDEN_ON_HUP": "upgrade"}, ["--on-hup upgrade needs a readiness gate", "forward"]),
        ({"WARDEN_RECYCLE_AT": "high"}, ["--recycle-at high", "readiness gate"]),
        ({"WARDEN_RECYCLE_AT": "400M"}, ["--recycle-at 400 MiB", "--memory-warn-signal"]),
    ],
)
def test_what_asks_for_upgrades_without_a_gate_is_refused_at_start(
    variables: dict[str, str], words: list[str]
) -> None:
    # Else it is accepted, and every SIGHUP, or memory climbing at night, meets "an upgrade
    # needs a readiness gate" when it is too late to add one.
    with pytest.raises(ConfigurationError) as raised:
        SupervisorOptions.from_inputs(["x"], {}, variables)
    for word in words:
        assert word in str(raised.value)
    with_a_gate = SupervisorOptions.from_inputs(["x"], {"ready": "notify"}, variables)
    assert with_a_gate.hup_action == "upgrade"


def test_a_value_built_directly_is_converted() -> None:
    # As a library caller (or a config file) may give them: text, not the field's type.
    texts: dict[str, Any] = {"stop_signal": "hup", "stop_timeout": "2m"}
    options = SupervisorOptions(command=("x",), **texts)
    assert (options.stop_signal, options.stop_timeout) == (signal.SIGHUP, 120.0)


def test_a_new_option_is_one_declaration() -> None:
    @dataclasses.dataclass(frozen=True)
    class Options:
        memory_limit: int | None = option(
            "--memory-limit", default=None, convert=size, metavar="SIZE", help="the limit"
        )
        watch: tuple[str, ...] = option(
            "--reload-on-change", default=(), convert=paths, repeat=True, help="files"
        )

    table = declared(Options)
    assert [(name, o.env) for name, o in table] == [
        ("memory_limit", "WARDEN_MEMORY_LIMIT"),
        ("watch", "WARDEN_RELOAD_ON_CHANGE"),
    ]
    assert table[1][1].help_text == "files [WARDEN_RELOAD_ON_CHANGE, space-separated]"
    values = fill(table, {"memory_limit": "512M"}, {"WARDEN_RELOAD_ON_CHANGE": "a.yaml b.yaml"})
    assert Options(**values) == Options(memory_limit=512 << 20, watch=("a.yaml", "b.yaml"))
