"""``warden status``, ``upgrade``, ``reload`` and ``stop``: clients of a warden's control socket.

One blocking socket, one JSON line each way (see ``supervisor/control/_server.py``). Nothing here
imports asyncio or the supervisor: a status query should take milliseconds, not the time it
takes to load an event loop.

Exit codes: 0 done; 1 the warden answered no (or the upgrade failed); 2 bad usage; 3 no
warden answered.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import re
import shlex
import socket
import time
from collections.abc import Callable
from typing import NoReturn

from .._durations import parse_duration
from .._exceptions import ConfigurationError, UsageError, WardenError
from .._exitcodes import EXIT_NO_WARDEN, EXIT_OK, EXIT_REFUSED, EXIT_USAGE
from .._paths import default_control_path
from .._unix import peer_credentials, untrusted_path
from ._streams import say, show

__all__ = ["main_command", "request"]

_SHORT_TIMEOUT = 10.0  # status and stop answer at once
_LONG_TIMEOUT = 15 * 60.0  # an upgrade waits for the new child's readiness and the old one's drain
_REPLY_MAX = 16 * 1024 * 1024

_SUMMARIES = {
    "status": "show what warden and its program are doing",
    "upgrade": "replace the program by a new copy without dropping a connection",
    "reload": "what SIGHUP to warden does: an upgrade, or SIGHUP forwarded to the program",
    "stop": "stop the program and warden (the stop ladder, as on SIGTERM)",
}


class _NoWarden(WardenError):
    """No warden answered; the message says why and what to do."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def main_command(name: str, argv: list[str]) -> int:
    """Run the client command ``name`` with its arguments; returns the exit code."""
    try:
        options = _parser(name).parse_args(argv)
        timeout = options.timeout if name in ("upgrade", "reload") else _SHORT_TIMEOUT
    except UsageError as exc:
        say(f"warden {name}: error: {exc}\n")
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    path = options.control or os.environ.get("WARDEN_CONTROL") or default_control_path()
    try:
        hint = ", or give a longer --timeout" if name in ("upgrade", "reload") else ""
        reply = request(path, {"command": name}, timeout, hint=hint)
    except _NoWarden as exc:
        say(f"warden {name}: {exc}\n")
        return EXIT_NO_WARDEN
    code = EXIT_OK if reply.get("ok") is True else EXIT_REFUSED
    if options.json:
        show(json.dumps(reply, indent=2, sort_keys=True) + "\n")  # \u001b: inert
        return code
    upgrade = reply.get("upgrade")
    if isinstance(upgrade, dict):
        line = _upgrade_line(upgrade)
        if code == EXIT_OK:
            show(printable(line) + "\n")
        else:
            say(printable(line) + "\n")
    elif code != EXIT_OK:
        error = printable(str(reply.get("error") or "the warden refused"))
        say(f"warden {name}: {error}\n")
    else:
        show(printable(_RENDER[name](reply)))
    return code


#: C0 controls but tab and newline, DEL, C1 controls: a program's STATUS text may hold
#: terminal escape sequences (ESC [ ... clears a screen, retitles a window, moves the cursor).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with every control character but tab and newline shown as ``\\xNN``."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def _parser(name: str) -> argparse.ArgumentParser:
    parser = _Parser(prog=f"warden {name}", description=_SUMMARIES[name], allow_abbrev=False)
    parser.add_argument(
        "--control",
        metavar="PATH",
        help="the warden's control socket (default: $WARDEN_CONTROL, else "
        f"{default_control_path()})",
    )
    parser.add_argument("--json", action="store_true", help="print the reply as JSON, for scripts")
    if name in ("upgrade", "reload"):
        parser.add_argument(
            "--timeout",
            metavar="DURATION",
            type=_duration,
            default=_LONG_TIMEOUT,
            help="how long to wait for the outcome, e.g. 90s, 5m (default 15m)",
        )
    return parser


def _duration(text: str) -> float:
    try:
        return parse_duration(text, what="--timeout", allow_zero=False)
    except ConfigurationError:
        # argparse names the flag itself ("argument --timeout: ...").
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration above 0 and at most 596h (the longest the kernel "
            "waits); write seconds like 30, or 500ms, 90s, 5m, 1h"
        ) from None


def request(
    path: str, message: dict[str, object], timeout: float, *, hint: str = ""
) -> dict[str, object]:
    """Send ``message`` to the warden at ``path``; its reply. Raises :class:`_NoWarden`.

    ``hint`` ends the message of a timeout.
    """
    deadline = time.monotonic() + timeout
    data = b""
    me = os.geteuid()
    # Who answers on a path is decided by whoever may change what the path names: a fake
    # warden behind another user's symlink or directory would get our commands and answer
    # "ok". The kernel's word on the listener (SO_PEERCRED) is checked after connecting.
    problem = untrusted_path(path, uid=me)
    if problem is not None:
        raise _NoWarden(
            f"refusing the control socket {path}: {problem}, so another user could put a "
            "fake warden there; give a --control PATH in directories only you (or root) "
            "can write"
        )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.settimeout(timeout)
            sock.connect(path)
            pid, uid, _ = peer_credentials(sock)
            if uid not in (me, 0):
                raise _NoWarden(
                    f"what listens on {path} (pid {pid}) runs as uid {uid}, not as uid {me} "
                    f"or root: it is not your warden; run as uid {uid} to control it, or "
                    "give the --control PATH of your own warden"
                )
            # A warden that refuses our uid answers without reading the request and closes:
            # the send may fail (EPIPE) while its answer waits in our receive queue.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(json.dumps(message).encode() + b"\n")
            while b"\n" not in data and len(data) < _REPLY_MAX:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            raise _NoWarden(
                f"no reply from the warden on {path} within {_seconds(timeout)}; see its log{hint}"
            ) from None
        except OSError as exc:
            raise _NoWarden(_connect_error(path, exc)) from None
    line = data.partition(b"\n")[0]
    if not line:
        raise _NoWarden(f"the warden on {path} closed the connection without a reply; see its log")
    try:
        reply = json.loads(line)
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        raise _NoWarden(
            f"what answered on {path} is not a warden (its reply is not a JSON object); "
            "give the --control PATH of a warden"
        )
    return reply


def _connect_error(path: str, exc: OSError) -> str:
    if exc.errno in (errno.ENOENT, errno.ECONNREFUSED):
        return (
            f"no warden is listening on {path}; is it running? "
            "(give its --control PATH or set WARDEN_CONTROL)"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        try:
            owner = os.stat(path).st_uid  # noqa: PTH116 (pathlib costs the CLI 10 ms to import)
        except OSError:
            return (
                f"permission denied on {path}: its directory is closed to uid {os.geteuid()}; "
                "run as the user who runs warden, or root"
            )
        return (
            f"permission denied on {path}: the control socket is mode 0600, owned by uid "
            f"{owner}; run as uid {owner} or root"
        )
    return (
        f"cannot reach a warden on {path}: {exc.strerror or exc}; "
        "give the --control PATH of a running warden"
    )


# -- rendering -------------------------------------------------------------------------------


def _dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _pid(value: object) -> str:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else "?"


def _seconds(value: float) -> str:
    """A short span for a person: 0.81s, 45s, 12m03s, 3h12m, 2d04h."""
    if value < 10:
        return f"{value:.2f}s"
    whole = int(value)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def _upgrade_line(upgrade: dict[str, object]) -> str:
    old, new = _pid(upgrade.get("old_pid")), _pid(upgrade.get("new_pid"))
    if upgrade.get("result") != "ok":
        # The detail says whether the old release still serves: warden knows, we do not.
        verdict = "rolled back" if upgrade.get("result") == "rolled back" else "failed"
        return f"upgrade {verdict}: {upgrade.get('detail') or 'no detail given'}"
    parts = [f"upgraded: pid {old} -> {new}"]
    ready = _number(upgrade.get("ready_after"))
    if ready is not None:
        parts.append(f"ready in {_seconds(ready)}")
    duration = _number(upgrade.get("duration"))
    if duration is not None:
        parts.append(f"done in {_seconds(duration)}")
    line = ", ".join(parts)
    return line + " (joined the upgrade already running)" if upgrade.get("coalesced") else line


def _render_status(reply: dict[str, object]) -> str:
    status = _dict(reply.get("status"))
    rows: list[tuple[str, str]] = []
    warden = _dict(status.get("warden"))
    if warden:
        parts = [f"pid {_pid(warden.get('pid'))}"]
        uptime = _number(warden.get("uptime"))
        if uptime is not None:
            parts.append(f"up {_seconds(uptime)}")
        if warden.get("state"):
            parts.append(str(warden["state"]))
        if warden.get("control"):
            parts.append(f"control {warden['control']}")
        rows.append(("warden", ", ".join(parts)))
    program = _dict(status.get("program"))
    if program:
        parts = [f"pid {_pid(program.get('pid'))}" if program.get("pid") is not None else "no pid"]
        if program.get("state"):
            parts.append(str(program["state"]))
        uptime = _number(program.get("uptime"))
        if uptime is not None:
            parts.append(f"up {_seconds(uptime)}")
        restart_in = _number(program.get("restart_in"))
        if restart_in is not None:
            parts.append(f"starting again in {_seconds(restart_in)}")
        restarts = _number(program.get("restarts"))
        if restarts:
            parts.append(f"{restarts:g} restart{'s' if restarts != 1 else ''}")
        if program.get("status"):
            parts.append(f"STATUS: {program['status']}")
        rows.append(("program", ", ".join(parts)))
        command = program.get("command")
        if isinstance(command, list) and command:
            rows.append(("command", shlex.join(str(arg) for arg in command)))
        if program.get("last_exit"):
            rows.append(("last exit", _last_exit(program)))
    if "upgrade" in status:
        rows.append(("upgrades", _upgrades(_dict(status.get("upgrade")))))
    sockets = status.get("sockets")
    if isinstance(sockets, list):
        rows += [("sockets" if i == 0 else "", str(s)) for i, s in enumerate(sockets)]
    return "".join(f"{label:<9} {text}\n" for label, text in rows)


def _last_exit(program: dict[str, object]) -> str:
    """``oom-killed: working set 61 of 64 MiB; warned at 80 % 2.1 s before (exit 137, 12s
    ago)``: the words warden composed, else the bare reason."""
    text = str(program.get("last_exit_reason") or program["last_exit"])
    notes = []
    code = _number(program.get("last_exit_code"))
    if code is not None:
        notes.append(f"exit {code:g}")
    ago = _number(program.get("last_exit_ago"))
    if ago is not None:
        notes.append(f"{_seconds(ago)} ago")
    return f"{text} ({', '.join(notes)})" if notes else text


_RESULTS = ("ok", "failed", "rolled back")


def _upgrades(upgrade: dict[str, object]) -> str:
    ok, failed = _number(upgrade.get("ok")) or 0, _number(upgrade.get("failed")) or 0
    last = _dict(upgrade.get("last"))
    running = _under_way(_dict(upgrade.get("current"))) if upgrade.get("running") else ""
    if not (ok or failed or last):
        return f"none yet{running}"
    rolled_back = _number(upgrade.get("rolled_back")) or 0
    text = f"{ok:g} ok, {failed:g} failed" + (
        f", {rolled_back:g} rolled back" if rolled_back else ""
    )
    if last:
        result = str(last.get("result")) if last.get("result") in _RESULTS else "failed"
        text += f"; last: {result}"
        duration = _number(last.get("duration"))
        if duration is not None:
            text += f" in {_seconds(duration)}"
        text += f" (pid {_pid(last.get('old_pid'))} -> {_pid(last.get('new_pid'))})"
        if result != "ok" and last.get("detail"):
            text += f": {last['detail']}"
        ago = _number(last.get("finished_ago"))
        if ago is not None:
            text += f", {_seconds(ago)} ago"
    return text + running


#: What the upgrade under way is doing, by step (``{new}``, ``{old}``: pids; ``{since}``).
_STEPS = {
    "check": "running --upgrade-check for {since}",
    "gate": "new release pid {new} waiting for its readiness gate for {since}",
    "confirming": "new release pid {new} confirming beside pid {old} for {since}",
    "draining": "pid {new} promoted, old release pid {old} draining for {since}",
}


def _under_way(current: dict[str, object]) -> str:
    """``; running now: new release pid 4790 confirming beside pid 4711 for 1.20s``."""
    words = _STEPS.get(str(current.get("step")))
    if words is None:
        return "; one is running now"
    since = _number(current.get("for"))
    text = words.format(
        new=_pid(current.get("new_pid")),
        old=_pid(current.get("old_pid")),
        since="?" if since is None else _seconds(since),
    )
    return f"; running now: {text}"


def _render_reload(reply: dict[str, object]) -> str:
    reload = _dict(reply.get("reload"))
    signal = reload.get("signal") or "SIGHUP"
    return f"reloaded: {signal} sent to pid {_pid(reload.get('pid'))}\n"


def _render_stop(reply: dict[str, object]) -> str:
    return f"stopping warden pid {_pid(_dict(reply.get('stop')).get('pid'))}\n"


_RENDER: dict[str, Callable[[dict[str, object]], str]] = {
    "status": _render_status,
    "upgrade": lambda reply: "upgrade: done\n",  # a reply without its "upgrade" object
    "reload": _render_reload,
    "stop": _render_stop,
}
