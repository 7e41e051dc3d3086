"""``warden run`` arguments and WARDEN_* variables: good input parsed, bad input one line + 2."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.supervisor._systemd_peers import closing_reason
from warden.cli import main
from warden.cli._run import UsageError, parse
from warden.supervisor import RestartPolicy


def test_defaults() -> None:
    options = parse(["--", "sleep", "1"], {})
    assert options.command == ("sleep", "1")
    assert options.stop_signal == signal.SIGTERM
    assert options.stop_timeout == 10.0
    assert options.group is False
    assert options.restart is RestartPolicy.NO
    assert options.max_restarts == 5


def test_every_option() -> None:
    options = parse(
        [
            "--stop-signal",
            "quit",
            "--stop-timeout",
            "1.5s",
            "--group",
            "--restart",
            "on-failure",
            "--backoff-initial",
            "250ms",
            "--backoff-max",
            "1m",
            "--backoff-jitter",
            "50%",
            "--min-uptime",
            "3",
            "--max-restarts",
            "unlimited",
            "--",
            "python",
            "-m",
            "http.server",
            "--",
            "x",
        ],
        {},
    )
    assert options.command == ("python", "-m", "http.server", "--", "x")
    assert options.stop_signal == signal.SIGQUIT
    assert options.stop_timeout == 1.5
    assert options.group is True
    assert options.restart is RestartPolicy.ON_FAILURE
    assert (options.backoff.initial, options.backoff.maximum) == (0.25, 60.0)
    assert options.backoff.jitter == 0.5
    assert options.min_uptime == 3.0
    assert options.max_restarts is None


def test_command_without_double_dash() -> None:
    assert parse(["--group", "sleep", "-x"], {}).command == ("sleep", "-x")


def test_environment_supplies_every_option_and_the_command_line_wins() -> None:
    env = {
        "WARDEN_STOP_SIGNAL": "INT",
        "WARDEN_STOP_TIMEOUT": "7",
        "WARDEN_GROUP": "yes",
        "WARDEN_RESTART": "always",
        "WARDEN_BACKOFF_INITIAL": "2s",
        "WARDEN_BACKOFF_MAX": "4s",
        "WARDEN_BACKOFF_JITTER": "0",
        "WARDEN_MIN_UPTIME": "1m",
        "WARDEN_MAX_RESTARTS": "9",
    }
    options = parse(["--", "true"], env)
    assert options.stop_signal == signal.SIGINT
    assert options.stop_timeout == 7.0
    assert options.group is True
    assert options.restart is RestartPolicy.ALWAYS
    backoff = options.backoff
    assert (backoff.initial, backoff.maximum, backoff.jitter) == (2.0, 4.0, 0.0)
    assert options.min_uptime == 60.0
    assert options.max_restarts == 9
    overridden = parse(["--stop-timeout", "1", "--no-group", "--", "true"], env)
    assert overridden.stop_timeout == 1.0
    assert overridden.group is False


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        ([], {}, "no command to run; give it after '--'"),
        (["--"], {}, "no command to run"),
        (["--stop-timeout", "5"], {}, "no command to run"),
        (["--bogus", "--", "true"], {}, "unrecognized arguments: --bogus"),
        (["--stop-signal", "FOO", "--", "true"], {}, "--stop-signal='FOO' is not a signal name"),
        (["--stop-signal", "STOP", "--", "true"], {}, "SIGSTOP freezes"),
        (["--stop-timeout", "-1", "--", "true"], {}, "--stop-timeout='-1' is negative"),
        (["--stop-timeout", "ten", "--", "true"], {}, "--stop-timeout='ten' is not a duration"),
        (["--stop-timeout", "nan", "--", "true"], {}, "--stop-timeout='nan' is not a duration"),
        (["--restart", "sometimes", "--", "true"], {}, "not a restart policy"),
        (["--max-restarts", "-2", "--", "true"], {}, "--max-restarts='-2' is not a number"),
        (["--backoff-jitter", "2", "--", "true"], {}, "not a fraction from 0 to 1"),
        (["--backoff-initial", "1m", "--backoff-max", "1s", "--", "x"], {}, "above its maximum"),
        (["--", "true"], {"WARDEN_STOP_TIMEOUT": "-3"}, "WARDEN_STOP_TIMEOUT='-3' is negative"),
        (["--", "true"], {"WARDEN_GROUP": "maybe"}, "WARDEN_GROUP='maybe' is not a boolean"),
        (["--", "true"], {"WARDEN_STOP_SIGNAL": "SIGFOO"}, "WARDEN_STOP_SIGNAL='SIGFOO'"),
        (
            ["--", "true"],
            {"WARDEN_STOPTIMEOUT": "30"},
            "WARDEN_STOPTIMEOUT='30' is not a warden variable, so it would be ignored; did you "
            "mean WARDEN_STOP_TIMEOUT?",
        ),
        (["--", "true"], {"WARDEN_MAX_RESTART": "3"}, "did you mean WARDEN_MAX_RESTARTS?"),
        (["--", "true"], {"WARDEN_PIDFILE": "/run/a.pid"}, "did you mean WARDEN_PID_FILE?"),
    ],
)
def test_bad_input_is_one_clear_line(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse(argv, env)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_other_warden_variables_are_left_alone() -> None:
    # The program's own (sharing a prefix is not a misspelling), and the library's.
    env = {
        "WARDEN_READY_URL": "x",
        "WARDEN_HEALTH_PORT": "9",
        "WARDEN_CONTROL_SOCKET": "y",
        "WARDEN_SHUTDOWN_TIMEOUT": "5",
        "WARDEN_STOP_TIMEOUT": "7",
    }
    assert parse(["--", "true"], env).stop_timeout == 7.0


def _run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "warden", *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_usage_error_exits_2_with_one_line() -> None:
    result = _run_cli("run", "--stop-timeout=-1", "--", "true")
    assert result.returncode == 2
    assert result.stderr == (
        "warden run: error: --stop-timeout='-1' is negative; give 0 or more seconds\n"
    )


@pytest.mark.parametrize(
    ("command", "code", "message"),
    [
        ("no-such-command-for-warden", 127, "command not found in PATH"),
        ("/nonexistent/dir/prog", 127, "no such file"),
    ],
)
def test_exec_failure_exits_127(command: str, code: int, message: str) -> None:
    result = _run_cli("run", "--", command)
    assert result.returncode == code
    assert closing_reason(result.stderr).startswith(f"cannot run {command!r}: {message}")


def test_not_executable_is_126(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("#!/bin/sh\necho hi\n")
    plain.chmod(0o644)
    result = _run_cli("run", "--", str(plain))
    assert result.returncode == 126
    assert closing_reason(result.stderr) == (
        f"cannot run {str(plain)!r}: permission denied (not an executable file? chmod +x)"
    )


def test_not_a_binary_is_126(tmp_path: Path) -> None:
    script = tmp_path / "no-shebang"
    script.write_text("echo hi\n")
    script.chmod(0o755)
    result = _run_cli("run", "--", str(script))
    assert result.returncode == 126
    assert "exec format error" in closing_reason(result.stderr)


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert "warden run -- python -m http.server" in out
    assert "WARDEN_STOP_TIMEOUT" in out


def test_top_level_dispatch(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "run" in capsys.readouterr().out
    assert main(["frobnicate"]) == 2
    assert "'frobnicate' is not a warden command" in capsys.readouterr().err
    assert main([]) == 2
