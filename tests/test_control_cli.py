"""``warden status|upgrade|reload|stop`` as a user runs them, against a real control socket.

The server is the real :class:`ControlServer` on its own loop in a thread, with a handler that
answers with the replies the supervisor gives (the schemas in ``cli/_control.py``); the
clients are real ``python -m warden`` processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from warden.supervisor.control._server import ControlError, ControlServer

DEADLINE = 10.0

STATUS: dict[str, object] = {
    "warden": {
        "pid": 812,
        "version": "0.1.0",
        "state": "running",
        "uptime": 11_532.4,
        "control": "/run/warden/control.sock",
    },
    "program": {
        "pid": 4711,
        "state": "ready",
        "uptime": 723.2,
        "restarts": 2,
        "status": "serving 14 req/s",
        "command": ["gunicorn", "-w", "2", "app:wsgi"],
        "last_exit": "exited(3)",
    },
    "upgrade": {
        "running": False,
        "ok": 7,
        "failed": 1,
        "last": {
            "result": "ok",
            "detail": "",
            "old_pid": 4702,
            "new_pid": 4711,
            "ready_after": 0.81,
            "duration": 1.42,
            "finished_ago": 725.0,
        },
    },
    "sockets": ["web tcp://127.0.0.1:8000 (fd 3)", "unix:/run/app.sock (fd 4)"],
}

STATUS_TABLE = """\
warden    pid 812, up 3h12m, running, control /run/warden/control.sock
program   pid 4711, ready, up 12m03s, 2 restarts, STATUS: serving 14 req/s
command   gunicorn -w 2 app:wsgi
last exit exited(3)
upgrades  7 ok, 1 failed; last: ok in 1.42s (pid 4702 -> 4711), 12m05s ago
sockets   web tcp://127.0.0.1:8000 (fd 3)
          unix:/run/app.sock (fd 4)
"""

UPGRADED: dict[str, object] = {
    "result": "ok",
    "detail": "",
    "old_pid": 4702,
    "new_pid": 4711,
    "ready_after": 0.81,
    "duration": 1.42,
    "finished_ago": 0.0,
    "coalesced": False,
}


class Served:
    """A :class:`ControlServer` on a loop in a thread, answering with ``replies[command]``.

    A reply that is an exception is raised; the command ``"hang"`` waits until the end.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.replies: dict[str, dict[str, object] | Exception] = {}
        self.requests: list[dict[str, object]] = []
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        commands = ("status", "upgrade", "reload", "stop")
        self.server = ControlServer(str(path), self._handle, commands=commands)
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(DEADLINE)

    async def _handle(self, command: str, request: Mapping[str, object]) -> dict[str, object]:
        self.requests.append(dict(request))
        reply = self.replies[command]
        if isinstance(reply, Exception):
            raise reply
        if reply.get("hang"):
            await asyncio.Event().wait()  # cancelled by close()
        return reply

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(DEADLINE)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(DEADLINE)
        self.loop.close()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory under /tmp: an AF_UNIX path holds 107 bytes, pytest's tmp_path may not."""
    directory = Path(tempfile.mkdtemp(prefix="warden-cli-", dir="/tmp"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def served(short_dir: Path) -> Iterator[Served]:
    s = Served(short_dir / "control.sock")
    yield s
    s.close()


def warden(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "WARDEN_CONTROL"}
    return subprocess.run(
        [sys.executable, "-m", "warden", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**environ, **(env or {})},
    )


# -- status ------------------------------------------------------------------------------------


def test_status_is_a_table_for_people(served: Served) -> None:
    served.replies["status"] = {"status": STATUS}
    result = warden("status", "--control", str(served.path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == STATUS_TABLE
    assert result.stderr == ""
    assert served.requests == [{"command": "status"}]


def test_status_json_is_the_reply_as_is(served: Served) -> None:
    served.replies["status"] = {"status": STATUS}
    result = warden("status", "--json", "--control", str(served.path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"ok": True, "status": STATUS}
    assert (
        result.stdout == json.dumps({"ok": True, "status": STATUS}, indent=2, sort_keys=True) + "\n"
    )


def test_status_leaves_out_what_it_does_not_know(served: Served) -> None:
    served.replies["status"] = {
        "status": {
            "warden": {"pid": 9, "state": "starting", "uptime": 3.5, "control": None},
            "program": {
                "pid": None,
                "state": "restarting",
                "uptime": None,
                "restarts": 1,
                "status": None,
                "command": [],
                "last_exit": None,
            },
            "upgrade": {"running": True, "ok": 0, "failed": 0, "last": None},
            "sockets": [],
        }
    }
    result = warden("status", "--control", str(served.path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "warden    pid 9, up 3.50s, starting\n"
        "program   no pid, restarting, 1 restart\n"
        "upgrades  none yet; one is running now\n"
    )


@pytest.mark.parametrize(
    ("current", "words"),
    [
        ({"step": "check", "for": 0.5, "old_pid": 7}, "running --upgrade-check for 0.50s"),
        (
            {"step": "gate", "for": 12.3, "old_pid": 7, "new_pid": 8},
            "new release pid 8 waiting for its readiness gate for 12s",
        ),
        (
            {"step": "confirming", "for": 1.2, "old_pid": 7, "new_pid": 8},
            "new release pid 8 confirming beside pid 7 for 1.20s",
        ),
        (
            {"step": "draining", "for": 75, "old_pid": 7, "new_pid": 8},
            "pid 8 promoted, old release pid 7 draining for 1m15s",
        ),
    ],
)
def test_status_says_where_the_upgrade_under_way_is(
    served: Served, current: dict[str, object], words: str
) -> None:
    served.replies["status"] = {
        "status": {
            "program": {"pid": 7, "state": "upgrading", "restart_in": None},
            "upgrade": {"running": True, "ok": 0, "failed": 0, "last": None, "current": current},
        }
    }
    result = warden("status", "--control", str(served.path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(f"upgrades  none yet; running now: {words}\n"), result.stdout


def test_status_says_when_a_program_in_its_backoff_starts_again(served: Served) -> None:
    served.replies["status"] = {
        "status": {"program": {"pid": 7, "state": "restarting", "restart_in": 4.25, "restarts": 1}}
    }
    result = warden("status", "--control", str(served.path))
    assert result.stdout == "program   pid 7, restarting, starting again in 4.25s, 1 restart\n"


def test_status_survives_a_reply_with_nothing_in_it(served: Served) -> None:
    served.replies["status"] = {"status": {"warden": "?", "upgrade": None, "sockets": None}}
    result = warden("status", "--control", str(served.path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "upgrades  none yet\n"


def test_the_control_path_comes_from_warden_control(served: Served) -> None:
    served.replies["status"] = {"status": STATUS}
    result = warden("status", env={"WARDEN_CONTROL": str(served.path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout == STATUS_TABLE


# -- upgrade, reload, stop ---------------------------------------------------------------------


def test_upgrade_reports_the_new_pid_and_timings(served: Served) -> None:
    served.replies["upgrade"] = {"upgrade": UPGRADED}
    result = warden("upgrade", "--control", str(served.path), "--timeout", "1m")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "upgraded: pid 4702 -> 4711, ready in 0.81s, done in 1.42s\n"
    assert served.requests == [{"command": "upgrade"}]


def test_an_upgrade_that_joined_a_running_one_says_so(served: Served) -> None:
    served.replies["upgrade"] = {"upgrade": {**UPGRADED, "coalesced": True}}
    result = warden("upgrade", "--control", str(served.path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(", done in 1.42s (joined the upgrade already running)\n")


def test_a_failed_upgrade_exits_1_with_warden_s_detail(served: Served) -> None:
    # Whether the old release keeps serving is warden's to say (it may have died meanwhile).
    failed = {
        **UPGRADED,
        "result": "failed",
        "detail": "pid 4711 was not ready within 30s; pid 4702 keeps serving",
        "ready_after": None,
    }
    served.replies["upgrade"] = {"ok": False, "upgrade": failed}
    result = warden("upgrade", "--control", str(served.path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "upgrade failed: pid 4711 was not ready within 30s; pid 4702 keeps serving\n"
    )
    result = warden("upgrade", "--json", "--control", str(served.path))
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"ok": False, "upgrade": failed}


def test_a_rolled_back_upgrade_says_rolled_back_first(served: Served) -> None:
    # As the log and `warden status` say it: the verdict first, and "rolled back" tells the
    # old release was never told to stop.
    rolled_back = {
        **UPGRADED,
        "result": "rolled back",
        "detail": (
            "new release pid 4711 exited(1) 0.694s after it was ready; pid 4702 keeps serving"
        ),
    }
    served.replies["upgrade"] = {"ok": False, "upgrade": rolled_back}
    result = warden("upgrade", "--control", str(served.path))
    assert result.returncode == 1
    assert result.stderr == (
        "upgrade rolled back: new release pid 4711 exited(1) 0.694s after it was ready; "
        "pid 4702 keeps serving\n"
    )


def test_reload_that_upgrades_and_reload_that_forwards(served: Served) -> None:
    served.replies["reload"] = {"upgrade": UPGRADED}
    result = warden("reload", "--control", str(served.path))
    assert (result.returncode, result.stdout) == (
        0,
        "upgraded: pid 4702 -> 4711, ready in 0.81s, done in 1.42s\n",
    )
    served.replies["reload"] = {"reload": {"action": "forward", "signal": "SIGHUP", "pid": 4711}}
    result = warden("reload", "--control", str(served.path))
    assert (result.returncode, result.stdout) == (0, "reloaded: SIGHUP sent to pid 4711\n")


def test_stop(served: Served) -> None:
    served.replies["stop"] = {"stop": {"pid": 812}}
    result = warden("stop", "--control", str(served.path))
    assert (result.returncode, result.stdout, result.stderr) == (0, "stopping warden pid 812\n", "")


def test_a_refusal_is_one_line_and_exit_1(served: Served) -> None:
    served.replies["stop"] = ControlError("warden is stopping already; wait for it to exit")
    result = warden("stop", "--control", str(served.path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "warden stop: warden is stopping already; wait for it to exit\n"


# -- no warden ---------------------------------------------------------------------------------


def test_no_socket_is_exit_3_with_the_fix(short_dir: Path) -> None:
    path = short_dir / "control.sock"
    result = warden("status", "--control", str(path))
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr == (
        f"warden status: no warden is listening on {path}; is it running? "
        "(give its --control PATH or set WARDEN_CONTROL)\n"
    )


def test_a_stale_socket_is_the_same_as_none(short_dir: Path) -> None:
    path = short_dir / "control.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))
    result = warden("upgrade", "--control", str(path))
    assert result.returncode == 3
    assert "no warden is listening on" in result.stderr


def test_no_reply_in_time_is_exit_3(served: Served) -> None:
    served.replies["upgrade"] = {"hang": True}
    result = warden("upgrade", "--control", str(served.path), "--timeout", "300ms")
    assert result.returncode == 3
    assert result.stderr == (
        f"warden upgrade: no reply from the warden on {served.path} within 0.30s; "
        "see its log, or give a longer --timeout\n"
    )


def test_something_else_on_the_socket_is_not_a_warden(short_dir: Path) -> None:
    path = short_dir / "control.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen()
        listener.settimeout(DEADLINE)

        def answer_nonsense() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

        thread = threading.Thread(target=answer_nonsense, daemon=True)
        thread.start()
        result = warden("status", "--control", str(path))
        thread.join(DEADLINE)
    assert result.returncode == 3
    assert "is not a warden" in result.stderr


# -- usage -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["status", "--bogus"], "unrecognized arguments: --bogus (see warden status --help)"),
        (["upgrade", "--timeout", "soon"], "'soon' is not a duration above 0"),
        (["reload", "--timeout", "0"], "'0' is not a duration above 0"),
        (["stop", "--timeout", "5"], "unrecognized arguments: --timeout 5"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = warden(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"warden {args[0]}: error: ")
    assert message in result.stderr


def test_help() -> None:
    result = warden("upgrade", "--help")
    assert result.returncode == 0
    assert "--control PATH" in result.stdout
    assert "--timeout DURATION" in result.stdout
    listing = warden("--help").stdout
    for command in ("status", "upgrade", "reload", "stop"):
        assert f"\n  {command} " in listing


def test_the_client_does_not_load_asyncio() -> None:
    code = (
        "import sys, warden.cli._control; print(sorted(m for m in sys.modules if 'asyncio' in m))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


# -- exit codes whatever stderr is (issue 19, item 8) ------------------------------------------


def warden_stderr(stderr: str, *args: str) -> int:
    """The exit code of ``warden ARGS`` with its stderr closed (``2>&-``) or full."""
    environ = {k: v for k, v in os.environ.items() if k != "WARDEN_CONTROL"}
    argv = [sys.executable, "-m", "warden", *args]
    if stderr == "closed":  # as a shell does it: the command starts without a descriptor 2
        argv = ["sh", "-c", 'exec "$@" 2>&-', "sh", *argv]
    with open(os.devnull if stderr == "closed" else "/dev/full", "w") as sink:
        result = subprocess.run(
            argv, stdout=subprocess.DEVNULL, stderr=sink, timeout=30, check=False, env=environ
        )
    return result.returncode


@pytest.mark.parametrize("stderr", ["closed", "full"])
@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["status", "--control", "/missing/c.sock"], 3),
        (["upgrade", "--control", "/missing/c.sock"], 3),
        (["reload", "--control", "/missing/c.sock"], 3),
        (["stop", "--control", "/missing/c.sock"], 3),
        (["status", "--json", "--control", "/missing/c.sock"], 3),
        (["status", "--bogus"], 2),
        (["upgrade", "--timeout", "soon"], 2),
        (["no-such-command"], 2),
        ([], 2),
        (["run", "--bogus", "--", "true"], 2),
        (["run"], 2),
        (["run", "--stop-timeout", "soon", "--", "true"], 2),
    ],
)
def test_the_exit_code_holds_with_stderr_closed_or_full(
    stderr: str, args: list[str], code: int
) -> None:
    assert warden_stderr(stderr, *args) == code


@pytest.mark.parametrize("stderr", ["closed", "full"])
def test_a_refusal_is_1_with_stderr_closed_or_full(served: Served, stderr: str) -> None:
    served.replies["stop"] = ControlError("warden is stopping already; wait for it to exit")
    assert warden_stderr(stderr, "stop", "--control", str(served.path)) == 1
    assert served.requests == [{"command": "stop"}]


# -- and whatever stdout is ---------------------------------------------------------------------


def warden_streams(streams: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``warden ARGS`` with stdout (and, for "both closed", stderr) closed or full."""
    environ = {k: v for k, v in os.environ.items() if k != "WARDEN_CONTROL"}
    argv = [sys.executable, "-m", "warden", *args]
    redirect = {"stdout closed": ">&-", "both closed": ">&- 2>&-", "stdout full": ">/dev/full"}
    argv = ["sh", "-c", f'exec "$@" {redirect[streams]}', "sh", *argv]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=30, check=False, env=environ
    )


@pytest.mark.parametrize("streams", ["stdout closed", "stdout full", "both closed"])
@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_an_answer_keeps_its_exit_code_whatever_stdout_is(
    served: Served, streams: str, json_flag: list[str]
) -> None:
    served.replies["status"] = {"status": STATUS}
    served.replies["stop"] = {"stop": {"pid": 1}}
    for command in ("status", "stop"):
        result = warden_streams(streams, command, *json_flag, "--control", str(served.path))
        assert result.returncode == 0, (command, result.stderr)
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("streams", ["stdout closed", "stdout full"])
def test_help_and_version_keep_their_exit_code_whatever_stdout_is(streams: str) -> None:
    for args in (["--help"], ["--version"]):
        result = warden_streams(streams, *args)
        assert (result.returncode, "Traceback" in result.stderr) == (0, False), result.stderr
