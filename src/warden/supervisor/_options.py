"""The supervisor's options: the one table of ``warden run``'s options, a frozen value.

Each option is declared once, on its field below (:func:`._declare.option`): flag, variable
(``WARDEN_`` + the flag), converter, default and help. ``warden run``'s parser is built from
these declarations, :meth:`SupervisorOptions.from_inputs` fills the value from what it parsed
and the environment, and every field is converted (so validated) the same way when the value
is built directly. A new option is one more field here.
"""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Mapping, Sequence
from typing import Literal, cast, get_args

from .._durations import MAX_DURATION
from .._exceptions import ConfigurationError
from .._paths import default_control_path
from ..memory import _MIN_LIMIT as MIN_LIMIT
from ..memory import Level, Thresholds
from ._declare import (
    Option,
    boolean,
    command_line,
    convert_fields,
    declared,
    duration,
    fill,
    fraction,
    option,
    optional,
    path,
    positive_duration,
    restarts,
    size,
)
from ._reload_on_change import watched_files
from .notify._server import Access
from .process._signals import parse_signal
from .release._readiness import ReadySpec, parse_check_url, parse_ready
from .release._restart import Backoff, RestartPolicy
from .sockets._listenspec import ListenSpec, parse_listen

#: The confirmation window of an upgrade. gunicorn says READY=1 before its workers import
#: the app; a release that fails to import exits 0.16-0.39 s after READY=1 (measured, gunicorn
#: 23, -w 2): 5 s covers that more than ten times over, and a crash in the first seconds of
#: serving, for the cost of two releases' memory for 5 s.
DEFAULT_UPGRADE_CONFIRM = 5.0

#: Added to ``stop_timeout`` to get the lifecycle's hard shutdown deadline: the SIGKILL step of
#: the ladder and the reaping after it must fit in it, so the deadline guard (exit 124) only
#: fires when a process cannot be killed at all (stuck in uninterruptible sleep).
KILL_MARGIN = 5.0

#: The shortest ``--watchdog``: the program pings every half interval, and a runnable process
#: can wait a few milliseconds for a CPU on a loaded machine (the scheduler's latency target
#: is 6-24 ms): a shorter watchdog kills programs that were only not scheduled (and one below
#: 1 µs reaches the program as WATCHDOG_USEC=0, "no watchdog").
MIN_WATCHDOG = 0.01


# -- converters of the supervisor's own types ----------------------------------------------


def _signal(value: object, what: str) -> signal.Signals:
    text = value.name if isinstance(value, signal.Signals) else str(value)
    return parse_signal(text, what=what)


def _policy(value: object, what: str) -> RestartPolicy:
    if isinstance(value, RestartPolicy):
        return value
    try:
        return RestartPolicy(str(value).strip().lower())
    except ValueError:
        choices = ", ".join(p.value for p in RestartPolicy)
        raise ConfigurationError(
            f"{what}={value!r} is not a restart policy; use one of: {choices}"
        ) from None


def _ready(value: object, what: str) -> ReadySpec:
    return value if isinstance(value, ReadySpec) else parse_ready(str(value).strip())


def _check_url(value: object, what: str) -> ReadySpec:
    if isinstance(value, ReadySpec) and value.kind == "http":
        return value
    return parse_check_url(str(value).strip(), what)


def _listens(value: object, what: str) -> tuple[ListenSpec, ...]:
    items = [value] if isinstance(value, str | ListenSpec) else value
    if not isinstance(items, Sequence):
        raise ConfigurationError(f"{what}={value!r} is not a list of --listen addresses")
    specs = tuple(
        item if isinstance(item, ListenSpec) else parse_listen(str(item)) for item in items
    )
    seen: dict[str, ListenSpec] = {}
    for spec in specs:
        if spec.scheme == "tcp" and spec.port == 0:
            continue  # each gets a free port of its own
        first = seen.setdefault(spec.address, spec)
        if first is not spec:
            raise ConfigurationError(
                f"--listen {spec.text!r}: the same address as --listen {first.text!r} "
                "earlier in the command line; give each address once"
            )
    return specs


def _access(value: object, what: str) -> Access:
    text = str(value).strip().lower()
    for access in get_args(Access):
        if text == access:
            return cast(Access, access)
    raise ConfigurationError(
        f"{what}={value!r} is not a notify access; use main, descendants or all"
    )


def _memory_limit(value: object, what: str) -> int:
    limit = size(value, what)
    if limit < MIN_LIMIT:
        raise ConfigurationError(
            f"{what}={value!r} is below 4 MiB, too little for any program to start in (its "
            "exec is charged to the limit: a bare python3 needs 3 MiB); give e.g. 256M"
        )
    return limit


def _recycle_at(value: object, what: str) -> Level | int:
    if isinstance(value, Level):
        return value
    text = str(value).strip().lower()
    if text in ("warn", "high"):
        return Level(text)
    if text in ("ok", "critical"):
        raise ConfigurationError(
            f"{what}={value!r}: recycling at {text} is too late or too early; use warn, high "
            "or a size such as 400M"
        )
    at = size(value, what)
    if at < MIN_LIMIT:
        raise ConfigurationError(
            f"{what}={value!r} is below 4 MiB, less than any program holds once started: "
            "every fresh copy would be recycled again; give a size such as 400M"
        )
    return at


def _stop_timeout(value: object, what: str) -> float:
    seconds = duration(value, what)
    if seconds > MAX_DURATION - KILL_MARGIN:
        raise ConfigurationError(
            f"{what}={value!r} leaves no room for the SIGKILL step within the longest wait "
            f"the kernel allows ({MAX_DURATION:.0f}s); give at most "
            f"{MAX_DURATION - KILL_MARGIN:.0f}s"
        )
    return seconds


def _watchdog(value: object, what: str) -> float:
    seconds = positive_duration(value, what)
    if seconds < MIN_WATCHDOG:
        raise ConfigurationError(
            f"{what}={value!r} is shorter than 10ms: a program that was only waiting for a "
            "CPU would be killed; give e.g. 10s"
        )
    return seconds


def _health_address(value: object, what: str) -> str:
    text = str(value).strip()
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigurationError(
            f"{what}={value!r} is not HOST:PORT; give e.g. 127.0.0.1:9000 or [::1]:9000"
        )
    if not 0 < int(port) < 65536:
        raise ConfigurationError(
            f"{what}={value!r}: port {port} is not one a probe can be sent to; give a port "
            "from 1 to 65535, e.g. 127.0.0.1:9000"
        )
    return text


def _on_hup(value: object, what: str) -> Literal["upgrade", "forward"]:
    text = str(value).strip().lower()
    if text == "upgrade":
        return "upgrade"
    if text == "forward":
        return "forward"
    raise ConfigurationError(
        f"{what}={value!r} is not a SIGHUP action; use upgrade (a zero-downtime upgrade) "
        "or forward (SIGHUP to the program)"
    )


def _control(value: object, what: str) -> str | None:
    return None if value is None or value == "none" else path(value, what)


def _control_help() -> str:
    return (
        "the control socket for warden status/upgrade/reload/stop, mode 0600, or none "
        f"(default {default_control_path()})"
    )


def _default_control() -> Mapping[str, object]:
    # Without --control, a warden whose default path another warden holds runs without one.
    return {"control": default_control_path(), "control_optional": True}


def _mib(value: int) -> str:
    return f"{value / 2**20:.4g} MiB"


# -- the table -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SupervisorOptions:
    """Everything ``warden run`` was told; the CLI builds it, the supervisor reads it.

    Every field but ``command`` and ``control_optional`` is a ``warden run`` option; its help
    says what it does. Built directly, each field is checked as its flag is.

    Attributes:
        command: the program and its arguments; ``command[0]`` is searched in ``PATH``.
        control_optional: the control path is a default, not the user's choice: when another
            warden holds it, run without a control socket instead of failing.
    """

    command: tuple[str, ...]
    stop_signal: signal.Signals = option(  # noqa: RUF009 (a field declaration, like field())
        "--stop-signal",
        default=signal.SIGTERM,
        convert=_signal,
        metavar="SIGNAL",
        help="first signal of the stop ladder (default TERM)",
    )
    stop_timeout: float = option(
        "--stop-timeout",
        default=10.0,
        convert=_stop_timeout,
        metavar="DURATION",
        help="from the stop signal to SIGKILL, e.g. 10, 500ms, 1m (default 10s)",
    )
    group: bool = option(
        "--group",
        default=False,
        convert=boolean,
        switch=True,
        help="forward signals, the stop signal included, to the program's whole process "
        "group (default --no-group: to the program only; SIGKILL always goes to the "
        "group). If warden itself is SIGKILLed, only the program's main process is told "
        "(PR_SET_PDEATHSIG): its workers outlive it",
    )
    restart: RestartPolicy = option(  # noqa: RUF009 (a field declaration, like field())
        "--restart",
        default=RestartPolicy.NO,
        convert=_policy,
        metavar="POLICY",
        help="no | on-failure | always: start the program again when it ends on its own "
        "(default no)",
    )
    backoff_initial: float = option(
        "--backoff-initial",
        default=1.0,
        convert=duration,
        metavar="DURATION",
        help="delay before the first restart of a crash loop; doubles each time (default 1s)",
    )
    backoff_max: float = option(
        "--backoff-max",
        default=30.0,
        convert=duration,
        metavar="DURATION",
        help="the longest delay between restarts (default 30s)",
    )
    backoff_jitter: float = option(
        "--backoff-jitter",
        default=0.2,
        convert=fraction,
        metavar="FRACTION",
        help="random share taken off each delay, 0 to 1 (default 0.2)",
    )
    min_uptime: float = option(
        "--min-uptime",
        default=10.0,
        convert=duration,
        metavar="DURATION",
        help="a run at least this long is healthy and resets the crash loop (default 10s)",
    )
    max_restarts: int | None = option(
        "--max-restarts",
        default=5,
        convert=restarts,
        metavar="N",
        help="restarts of a crash loop before giving up, 0 to 1000000, or 'unlimited' (default 5)",
    )
    listen: tuple[ListenSpec, ...] = option(
        "--listen",
        default=(),
        convert=_listens,
        repeat=True,
        metavar="[NAME=]ADDRESS",
        help="bind and hold a socket for the program, handed over as LISTEN_FDS (fd 3, 4, ...): "
        "tcp://0.0.0.0:8000, tcp://[::1]:8000, unix:/run/app.sock?mode=0660; repeatable",
    )
    ready: ReadySpec = option(  # noqa: RUF009 (a field declaration, like field())
        "--ready",
        default=ReadySpec("none"),
        convert=_ready,
        metavar="GATE",
        help="when the program is ready: notify (READY=1 to NOTIFY_SOCKET), "
        "http://HOST:PORT/PATH (200-399), tcp, tcp://HOST:PORT, exec:CMD, none "
        "(default none)",
    )
    ready_timeout: float = option(
        "--ready-timeout",
        default=30.0,
        convert=positive_duration,
        metavar="DURATION",
        help="a program not ready by then is killed: reason 'failed to become ready within' "
        "(default 30s)",
    )
    notify_access: Access = option(  # noqa: RUF009 (a field declaration, like field())
        "--notify-access",
        default="descendants",
        convert=_access,
        metavar="WHO",
        help="main | descendants | all: whose sd_notify messages count (default descendants: "
        "the program and the processes it started, checked by the kernel's credentials)",
    )
    watchdog: float | None = option(
        "--watchdog",
        default=None,
        convert=optional(_watchdog),
        metavar="DURATION",
        help="give the program WATCHDOG_USEC (at least 10ms); a missed WATCHDOG=1 ping gets "
        "SIGABRT, then "
        "SIGKILL, reason 'watchdog timeout'",
    )
    on_hup: Literal["upgrade", "forward"] | None = option(
        "--on-hup",
        default=None,
        convert=optional(_on_hup),
        metavar="ACTION",
        help="upgrade | forward: SIGHUP to warden (and `warden reload`) starts a "
        "zero-downtime upgrade, or is forwarded to the program (default: upgrade with a "
        "--ready gate, forward without one)",
    )
    reload_on_change: tuple[str, ...] = option(
        "--reload-on-change",
        default=(),
        convert=watched_files,
        repeat=True,
        metavar="PATH",
        help="when this file's content changes (sha256, after a 50 ms quiet window; an "
        "editor's rename and a ConfigMap ..data swap included), do what SIGHUP does "
        "(--on-hup); the file may appear later, its directory must exist; repeatable",
    )
    drain_timeout: float | None = option(
        "--drain-timeout",
        default=None,
        convert=optional(duration),
        metavar="DURATION",
        help="during an upgrade, from the old release's stop signal to SIGKILL to its group "
        "(default: --stop-timeout)",
    )
    upgrade_check: tuple[str, ...] = option(
        "--upgrade-check",
        default=(),
        convert=command_line,
        metavar="COMMAND",
        help="run before each upgrade, within --ready-timeout; a non-zero exit (or no exit in "
        "time) cancels it and the old release keeps serving",
    )
    upgrade_confirm: float = option(
        "--upgrade-confirm",
        default=DEFAULT_UPGRADE_CONFIRM,
        convert=duration,
        metavar="DURATION",
        help="after the gate passes, the new release serves beside the old one this long "
        "(and gets no client's connection); if it ends, any process of it ends, it misses its "
        "watchdog or fails its health check meanwhile, it is stopped and the old release, "
        "never told to stop, keeps serving (default 5s; 0: no window)",
    )
    upgrade_confirm_url: ReadySpec | None = option(  # noqa: RUF009
        "--upgrade-confirm-url",
        default=None,
        convert=optional(_check_url),
        metavar="URL",
        help="in the --upgrade-confirm window, GET this http://HOST:PORT/PATH of the new "
        "release alone too (200-399; two failed checks roll back): a health check for "
        "gates that have none of their own, such as --ready notify",
    )
    memory_limit: int | None = option(
        "--memory-limit",
        default=None,
        convert=optional(_memory_limit),
        metavar="SIZE",
        help="run the program in a memory cgroup of its own with this limit (512M, 1G; "
        "at least 4M); "
        "its OOM kills are then its own, and named",
    )
    memory_warn_signal: signal.Signals | None = option(  # noqa: RUF009
        "--memory-warn-signal",
        default=None,
        convert=optional(_signal),
        metavar="SIGNAL",
        help="send the program this signal when its memory reaches 'high' (~90%% of the "
        "limit); at 'critical' it gets its stop signal, to exit cleanly before an OOM kill",
    )
    recycle_at: Level | int | None = option(  # noqa: RUF009
        "--recycle-at",
        default=None,
        convert=optional(_recycle_at),
        metavar="LEVEL|SIZE",
        help="replace the program by a zero-downtime upgrade when its working set reaches "
        "this level (warn, high) or size, if the limit leaves room for a second copy",
    )
    health: str | None = option(
        "--health",
        default=None,
        convert=optional(_health_address),
        metavar="HOST:PORT",
        help="serve /livez, /readyz and /metrics there (e.g. 127.0.0.1:9000; loopback unless "
        "you name another address); answered from a thread, no idle wake-ups",
    )
    control: str | None = option(
        "--control",
        default=None,
        convert=_control,
        metavar="PATH",
        help=_control_help,
        absent=_default_control,
    )
    control_optional: bool = False
    pid_file: str | None = option(
        "--pid-file",
        default=None,
        convert=optional(path),
        metavar="PATH",
        help="write warden's pid there (atomically); removed at exit",
    )
    termination_log: str | None = option(
        "--termination-log",
        default=None,
        convert=optional(path),
        metavar="PATH",
        help="write why warden exits there at exit (at most 4096 bytes), as `kubectl "
        "describe pod` shows it (default: /dev/termination-log when it exists and is "
        "writable, as in a Kubernetes container)",
    )

    def __post_init__(self) -> None:
        if not self.command or not self.command[0]:
            raise ConfigurationError(
                "no command to run; give it after '--', e.g. warden run -- python -m http.server"
            )
        convert_fields(self, OPTIONS)
        if self.upgrade_confirm_url is not None and self.upgrade_confirm <= 0:
            raise ConfigurationError(
                f"--upgrade-confirm-url {self.upgrade_confirm_url} is checked in the "
                "--upgrade-confirm window, which is 0; give the window a length (e.g. 5s) or "
                "drop the URL"
            )
        if self.backoff_initial > self.backoff_max:
            raise ConfigurationError(
                f"backoff initial {self.backoff_initial:g}s is above its maximum "
                f"{self.backoff_max:g}s; raise the maximum or lower the initial delay"
            )
        self._check_recycle_below_critical()
        self._check_upgrades_have_a_gate()

    def _check_upgrades_have_a_gate(self) -> None:
        """``--on-hup upgrade`` and ``--recycle-at`` ask for upgrades, and an upgrade without
        a readiness gate is refused: said at start, not at the first SIGHUP or the first time
        memory climbs."""
        if self.ready.kind != "none":
            return
        gates = "--ready notify, http://HOST:PORT/PATH, tcp or exec:CMD"
        if self.on_hup == "upgrade":
            raise ConfigurationError(
                "--on-hup upgrade needs a readiness gate (an upgrade is refused without one): "
                f"add {gates}, or use --on-hup forward to pass SIGHUP to the program"
            )
        at = self.recycle_at
        if at is not None:
            value = _mib(at) if isinstance(at, int) else at.value
            raise ConfigurationError(
                f"--recycle-at {value} replaces the program by an upgrade, which needs a "
                f"readiness gate: add {gates}, or use --memory-warn-signal to warn the "
                "program instead"
            )

    def _check_recycle_below_critical(self) -> None:
        """A recycle size at or above ``critical`` of the limit is never reached: the program
        gets its stop signal there first (and the kernel's kill at the limit)."""
        limit, at = self.memory_limit, self.recycle_at
        if limit is None or not isinstance(at, int):
            return
        critical = Thresholds().critical
        ceiling = int(critical * limit)
        if at >= ceiling:
            raise ConfigurationError(
                f"--recycle-at {_mib(at)} is at or above critical ({critical:.0%} of "
                f"--memory-limit {_mib(limit)} = {_mib(ceiling)}), where the program gets its "
                "stop signal first: it would never be recycled; give a size well below "
                f"{_mib(ceiling)}, leaving room for a second copy, or raise --memory-limit"
            )

    @classmethod
    def from_inputs(
        cls, command: Sequence[str], given: Mapping[str, object], environ: Mapping[str, str]
    ) -> SupervisorOptions:
        """The options from parsed flags (``given``: field name -> text, list or bool; None
        for a flag not given) and ``WARDEN_*`` variables; the flag wins.

        Raises :class:`ConfigurationError` naming the flag or the variable.
        """
        return cls(command=tuple(command), **fill(OPTIONS, given, environ))

    @property
    def backoff(self) -> Backoff:
        """The delay between restarts of a crash loop."""
        return Backoff(
            initial=self.backoff_initial, maximum=self.backoff_max, jitter=self.backoff_jitter
        )

    @property
    def hup_action(self) -> Literal["upgrade", "forward"]:
        """What SIGHUP does, the default decided: upgrade when there is a readiness gate (an
        upgrade needs one), forward otherwise (as tini does)."""
        if self.on_hup is not None:
            return self.on_hup
        return "forward" if self.ready.kind == "none" else "upgrade"

    @property
    def drain_seconds(self) -> float:
        """How long the old release may drain during an upgrade."""
        return self.stop_timeout if self.drain_timeout is None else self.drain_timeout

    @property
    def shutdown_timeout(self) -> float:
        """The lifecycle's hard deadline: the ladder's timeout plus room for SIGKILL."""
        return self.stop_timeout + KILL_MARGIN


#: ``(field name, option)`` of every ``warden run`` option, in ``--help`` order.
OPTIONS: tuple[tuple[str, Option], ...] = declared(SupervisorOptions)
