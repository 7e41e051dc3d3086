"""The control socket server against real UNIX sockets, real clients and a real other uid."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import pytest

from tests._proc import ROOT
from warden import ConfigurationError
from warden.lifecycle import Clock, ManualClock
from warden.supervisor.control._server import (
    ControlError,
    ControlInUseError,
    ControlServer,
    Handler,
)

DEADLINE = 10.0
COMMANDS = ("status", "stop", "upgrade")
NOBODY = 65534


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory under /tmp (an AF_UNIX path holds 107 bytes), traversable by every uid."""
    directory = Path(tempfile.mkdtemp(prefix="warden-ctl-", dir="/tmp"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


async def status_handler(command: str, request: Mapping[str, object]) -> dict[str, object]:
    return {"status": {"command": command}}


@contextlib.asynccontextmanager
async def serving(
    path: Path,
    handler: Handler = status_handler,
    commands: tuple[str, ...] = COMMANDS,
    clock: Clock | None = None,
) -> AsyncIterator[ControlServer]:
    server = ControlServer(str(path), handler, commands=commands, clock=clock)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def ask(path: Path, data: bytes, *, eof: bool = True) -> dict[str, object]:
    """Send ``data`` as one client; the reply's JSON (exactly one line)."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write(data)
        if eof:
            writer.write_eof()
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), DEADLINE)
        assert line.endswith(b"\n")
        # Then it closes; with bytes of ours unread (a request over the limit) as a reset.
        with contextlib.suppress(ConnectionResetError):
            assert await asyncio.wait_for(reader.read(), DEADLINE) == b""
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    reply = json.loads(line)
    assert isinstance(reply, dict)
    return reply


async def status(path: Path) -> dict[str, object]:
    return await ask(path, b'{"command": "status"}\n')


# -- the socket file ---------------------------------------------------------------------------


async def test_socket_is_0600_in_new_0755_directories_and_removed_at_close(
    short_dir: Path,
) -> None:
    path = short_dir / "run" / "warden" / "control.sock"
    umask = os.umask(0o022)
    try:
        async with serving(path) as server:
            mode = path.lstat().st_mode
            assert stat.S_ISSOCK(mode)
            assert stat.S_IMODE(mode) == 0o600
            for directory in (path.parent, path.parent.parent):
                assert stat.S_IMODE(directory.stat().st_mode) == 0o755
            assert server.path == str(path)
            assert await status(path) == {"ok": True, "status": {"command": "status"}}
        assert not path.exists()
        # The directories it made for the socket go with it (a --control PATH of the user's).
        assert not (short_dir / "run").exists()
        await server.close()  # idempotent
    finally:
        os.umask(umask)


async def test_the_directories_it_made_stay_when_not_empty_or_not_tidy(short_dir: Path) -> None:
    path = short_dir / "run" / "warden" / "control.sock"
    async with serving(path):
        (path.parent / "other.sock").touch()  # another's file in the directory it made
    assert path.parent.is_dir() and not path.exists()
    shutil.rmtree(short_dir / "run")
    server = ControlServer(str(path), status_handler, commands=COMMANDS, tidy=False)
    await server.start()
    await server.close()
    assert path.parent.is_dir()  # the default path's directory is every warden's


async def test_the_socket_is_0600_even_under_a_permissive_umask(short_dir: Path) -> None:
    path = short_dir / "control.sock"
    umask = os.umask(0)
    try:
        async with serving(path):
            assert stat.S_IMODE(path.lstat().st_mode) == 0o600
            assert os.umask(0) == 0  # restored after bind
    finally:
        os.umask(umask)


async def test_a_stale_socket_is_replaced(short_dir: Path) -> None:
    path = short_dir / "control.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))  # closed without unlink: a warden that was killed
    path.chmod(0o644)  # to tell it from ours (the inode number may well be reused)
    async with serving(path):
        assert stat.S_IMODE(path.lstat().st_mode) == 0o600
        assert (await status(path))["ok"] is True


async def test_a_live_warden_on_the_path_is_a_one_line_error(short_dir: Path) -> None:
    path = short_dir / "control.sock"
    async with serving(path):
        second = ControlServer(str(path), status_handler, commands=COMMANDS)
        with pytest.raises(ControlInUseError) as caught:
            await second.start()
        message = str(caught.value)
        assert isinstance(caught.value, ConfigurationError)
        assert "\n" not in message
        assert str(path) in message
        assert "give each warden its own --control PATH" in message
        await second.close()  # never started: must leave the live one's file alone
        assert path.exists()
        assert (await status(path))["ok"] is True  # the probe did not disturb it


async def test_a_file_that_is_not_a_socket_is_left_alone(short_dir: Path) -> None:
    path = short_dir / "control.sock"
    path.write_text("precious\n")
    server = ControlServer(str(path), status_handler, commands=COMMANDS)
    with pytest.raises(ConfigurationError, match="exists and is not a socket") as caught:
        await server.start()
    assert str(path) in str(caught.value)
    await server.close()
    assert path.read_text() == "precious\n"


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("file/control.sock", "cannot check the control socket path"),
        ("x" * 120 + ".sock", "over the 107 an AF_UNIX address holds"),
    ],
)
async def test_an_unusable_path_is_a_one_line_error(
    short_dir: Path, where: str, message: str
) -> None:
    (short_dir / "file").write_text("")
    path = short_dir / where
    with pytest.raises(ConfigurationError, match=message) as caught:
        await ControlServer(str(path), status_handler, commands=COMMANDS).start()
    assert "\n" not in str(caught.value)
    assert "--control PATH" in str(caught.value)


async def test_close_keeps_a_socket_file_that_is_no_longer_ours(short_dir: Path) -> None:
    path = short_dir / "control.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        async with serving(path):
            path.unlink()
            other.bind(str(path))  # someone else's now
        assert stat.S_ISSOCK(path.lstat().st_mode)


# -- requests ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"status\n", r"^request 'status' is not JSON \(.*\); send one JSON object on one line"),
        (b"\xff\xfe{\n", r"is not JSON"),
        (b"[1, 2]\n", r"^request is a JSON list, not an object; send one JSON object"),
        (
            b'{"cmd": "status"}\n',
            r'^request has no "command"; .*\(commands: status, stop, upgrade\)',
        ),
        (b'{"command": 7}\n', r'^request "command" is 7, not a string; use one of: status, stop'),
        (
            b'{"command": "dance"}\n',
            r"^unknown command 'dance'; use one of: status, stop, upgrade$",
        ),
        (b"x" * 70_000, r"^request is over 65536 bytes without a newline; send one JSON object"),
        (b"\n", r"^request '' is not JSON"),
    ],
    ids=["word", "not-utf8", "list", "no-command", "int-command", "unknown", "long", "empty"],
)
async def test_a_bad_request_gets_a_clear_error_and_the_server_keeps_serving(
    short_dir: Path, data: bytes, error: str
) -> None:
    path = short_dir / "control.sock"
    calls: list[str] = []

    async def handler(command: str, request: Mapping[str, object]) -> dict[str, object]:
        calls.append(command)
        return {}

    async with serving(path, handler):
        reply = await ask(path, data)
        assert reply["ok"] is False
        assert isinstance(reply["error"], str)
        assert "\n" not in reply["error"]
        assert re.search(error, reply["error"]), reply["error"]
        assert calls == []
        assert await status(path) == {"ok": True}
        assert calls == ["status"]


async def test_the_request_is_passed_whole_and_eof_may_end_it(short_dir: Path) -> None:
    path = short_dir / "control.sock"
    seen: list[tuple[str, dict[str, object]]] = []

    async def handler(command: str, request: Mapping[str, object]) -> dict[str, object]:
        seen.append((command, dict(request)))
        return {"upgrade": {"result": "ok"}}

    async with serving(path, handler):
        reply = await ask(path, b'{"command": "upgrade", "why": "deploy"}', eof=True)
        assert reply == {"ok": True, "upgrade": {"result": "ok"}}
        assert seen == [("upgrade", {"command": "upgrade", "why": "deploy"})]


async def test_a_client_that_sends_nothing_is_told_after_the_request_timeout(
    short_dir: Path,
) -> None:
    path = short_dir / "control.sock"
    clock = ManualClock(autojump_threshold=0)  # the request timeout passes by a jump
    async with serving(path, clock=clock) as server:
        server.request_timeout = 0.2
        reply = await ask(path, b"", eof=False)
        assert clock.now() == 1000.2
        assert reply == {
            "ok": False,
            "error": "no request within 0.2s of connecting; send one JSON object on one line, "
            'e.g. {"command": "status"}',
        }


async def test_handler_refusals_and_failures(
    short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = short_dir / "control.sock"

    async def handler(command: str, request: Mapping[str, object]) -> dict[str, object]:
        if command == "stop":
            raise ControlError("warden is stopping already; wait for it to exit")
        if command == "upgrade":
            raise RuntimeError("boom")
        if request.get("bad") == "json":
            return {"value": object()}
        return {"ok": False, "upgrade": {"result": "failed"}}  # its own "ok" wins

    async with serving(path, handler):
        assert await ask(path, b'{"command": "stop"}\n') == {
            "ok": False,
            "error": "warden is stopping already; wait for it to exit",
        }
        with caplog.at_level(logging.ERROR, logger="warden"):
            assert await ask(path, b'{"command": "upgrade"}\n') == {
                "ok": False,
                "error": "internal error: RuntimeError: boom",
            }
            reply = await ask(path, b'{"command": "status", "bad": "json"}\n')
            assert reply["ok"] is False
            assert str(reply["error"]).startswith("internal error: TypeError: ")
        failures = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(failures) == 2
        assert all(r.exc_info is not None for r in failures)
        assert "'upgrade' request failed" in failures[0].getMessage()
        assert await status(path) == {"ok": False, "upgrade": {"result": "failed"}}


async def test_slow_requests_are_served_concurrently(short_dir: Path) -> None:
    path = short_dir / "control.sock"
    clients = 5
    waiting: list[int] = []
    all_waiting = asyncio.Event()
    release = asyncio.Event()

    async def handler(command: str, request: Mapping[str, object]) -> dict[str, object]:
        if command == "upgrade":
            waiting.append(1)
            if len(waiting) == clients:
                all_waiting.set()
            await release.wait()
            return {"upgrade": {"n": len(waiting)}}
        return {}

    async with serving(path, handler):
        upgrades = [
            asyncio.create_task(ask(path, b'{"command": "upgrade"}\n')) for _ in range(clients)
        ]
        await asyncio.wait_for(all_waiting.wait(), DEADLINE)
        assert await status(path) == {"ok": True}  # not held up by the five
        release.set()
        replies = await asyncio.wait_for(asyncio.gather(*upgrades), DEADLINE)
        assert replies == [{"ok": True, "upgrade": {"n": clients}}] * clients


async def test_clients_that_leave_early_break_nothing(
    short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = short_dir / "control.sock"
    entered = asyncio.Event()
    release = asyncio.Event()
    finished = asyncio.Event()

    async def handler(command: str, request: Mapping[str, object]) -> dict[str, object]:
        if command == "upgrade":
            entered.set()
            await release.wait()
            finished.set()  # the upgrade a client asked for is finished without it
        return {"done": True}

    with caplog.at_level(logging.DEBUG, logger="warden"):
        async with serving(path, handler):
            # Connects and leaves without a word (what the stale-socket probe does).
            _, writer = await asyncio.open_unix_connection(str(path))
            writer.close()
            await writer.wait_closed()
            # Leaves half-way through a request line.
            _, writer = await asyncio.open_unix_connection(str(path))
            writer.write(b'{"command": "sta')
            await writer.drain()
            writer.close()
            await writer.wait_closed()
            # Leaves while its request is being handled: the reply goes nowhere.
            _, writer = await asyncio.open_unix_connection(str(path))
            writer.write(b'{"command": "upgrade"}\n')
            await writer.drain()
            await asyncio.wait_for(entered.wait(), DEADLINE)
            writer.close()
            await writer.wait_closed()
            release.set()
            await asyncio.wait_for(finished.wait(), DEADLINE)
            assert await status(path) == {"ok": True, "done": True}
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_close_cancels_waiting_requests_and_leaves_no_task(short_dir: Path) -> None:
    path = short_dir / "control.sock"
    entered = asyncio.Event()
    cancelled = asyncio.Event()

    async def handler(command: str, request: Mapping[str, object]) -> dict[str, object]:
        entered.set()
        try:
            await asyncio.Event().wait()  # an upgrade that never ends
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return {}

    server = ControlServer(str(path), handler, commands=COMMANDS)
    await server.start()
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write(b'{"command": "upgrade"}\n')
        await writer.drain()
        await asyncio.wait_for(entered.wait(), DEADLINE)
        await server.close()
        assert cancelled.is_set()
        assert asyncio.all_tasks() == {asyncio.current_task()}
        assert await asyncio.wait_for(reader.read(), DEADLINE) == b""  # closed, no reply
        assert not path.exists()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def test_a_handler_may_close_the_server_and_still_reply(short_dir: Path) -> None:
    path = short_dir / "control.sock"
    servers: list[ControlServer] = []

    async def handler(command: str, request: Mapping[str, object]) -> dict[str, object]:
        await servers[0].close()
        return {"stop": {"pid": os.getpid()}}

    async with serving(path, handler) as server:
        servers.append(server)
        assert await ask(path, b'{"command": "stop"}\n') == {
            "ok": True,
            "stop": {"pid": os.getpid()},
        }
        assert not path.exists()


async def test_an_idle_server_has_no_timer(short_dir: Path) -> None:
    path = short_dir / "control.sock"
    loop = asyncio.get_running_loop()
    async with serving(path):
        await status(path)
        await asyncio.sleep(0)  # one loop iteration drops the cancelled request deadline
        timers = [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]
        assert timers == []


# -- another uid -------------------------------------------------------------------------------

SETPRIV = shutil.which("setpriv")


@pytest.fixture
def nobody_python() -> str:
    """A Python 3.11+ that uid 65534 may execute (``sys.executable`` may sit under /root)."""
    if os.geteuid() != 0 or SETPRIV is None:
        pytest.skip("needs root and setpriv (util-linux) to run a client as another uid")
    for candidate in (sys.executable, "/usr/bin/python3"):
        result = subprocess.run(
            [*as_nobody(), candidate, "-c", "import sys; sys.exit(sys.version_info < (3, 11))"],
            capture_output=True,
            timeout=30,
            check=False,
            env=nobody_env(),
        )
        if result.returncode == 0:
            return candidate
    pytest.skip("no Python 3.11+ that uid 65534 may execute")


def as_nobody(*caps: str) -> list[str]:
    assert SETPRIV is not None
    argv = [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    for cap in caps:
        argv += [f"--inh-caps=+{cap}", f"--ambient-caps=+{cap}"]
    return argv


def nobody_env() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT / "src"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }


async def warden_status_as_nobody(
    python: str, path: Path, *caps: str
) -> subprocess.CompletedProcess[str]:
    argv = [*as_nobody(*caps), python, "-m", "warden", "status", "--control", str(path)]
    return await asyncio.to_thread(
        subprocess.run,
        argv,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=nobody_env(),
        cwd="/",
    )


async def test_another_uid_is_stopped_by_the_file_mode(short_dir: Path, nobody_python: str) -> None:
    path = short_dir / "control.sock"
    async with serving(path) as server:
        result = await warden_status_as_nobody(nobody_python, path)
        assert result.returncode == 3, result.stderr
        assert result.stderr == (
            f"warden status: permission denied on {path}: the control socket is mode 0600, "
            f"owned by uid {os.geteuid()}; run as uid {os.geteuid()} or root\n"
        )
        assert server.refused == 0  # the kernel refused it; the server never saw it


async def test_another_uid_past_the_file_mode_is_refused_by_its_credentials(
    short_dir: Path, nobody_python: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = short_dir / "control.sock"
    calls: list[str] = []

    async def handler(command: str, request: Mapping[str, object]) -> dict[str, object]:
        calls.append(command)
        return {}

    with caplog.at_level(logging.WARNING, logger="warden"):
        async with serving(path, handler) as server:
            result = await warden_status_as_nobody(nobody_python, path, "dac_override")
            assert result.returncode == 1, result.stderr
            uid = os.geteuid()
            assert result.stderr == (
                f"warden status: uid {NOBODY} may not control this warden: only uid {uid} and "
                "root may; run as one of them\n"
            )
            assert server.refused == 1
            assert calls == []
            assert (await status(path))["ok"] is True  # and it keeps serving its own
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"of uid {NOBODY}" in warnings[0]
