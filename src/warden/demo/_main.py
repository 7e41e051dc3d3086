"""``warden demo`` from start to end: the directory, the steps, the summary, the cleanup.

Whatever happens (a broken step, an error of the demo's own, ^C or SIGTERM), warden and its
program are stopped, the clients end, warden's memory cgroup is gone, and the demo's
directory is removed unless ``--keep DIR`` asked to keep it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

from .._exceptions import ConfigurationError
from ._cgroup import remove_leftovers, why_no_memory_cgroup
from ._clients import write_csv
from ._judge import PROMISES
from ._present import Live, Style, progress_stream, summary, to_json
from ._report import Report, StepReport, not_run
from ._scenario import Stage, steps, watchfiles_installed
from ._workspace import Workspace

#: The confirmation window of the demo's warden: release 3 shows its fault at once, and a
#: leaking release keeps leaking for as long as the window lasts.
DEFAULT_UPGRADE_CONFIRM = 1.0

EXIT_HELD, EXIT_BROKEN, EXIT_USAGE = 0, 1, 2


def run_demo(
    *,
    json_output: bool = False,
    keep: Path | None = None,
    upgrade_confirm: float = DEFAULT_UPGRADE_CONFIRM,
) -> int:
    """Run the demo; print the summary (or JSON); 0 when every promise that ran held."""
    began = time.monotonic()
    try:
        space = Workspace.create(
            keep.absolute() if keep else Path(tempfile.mkdtemp(prefix="warden-demo-"))
        )
    except ConfigurationError as exc:
        sys.stderr.write(f"warden demo: error: {exc}\n")
        return EXIT_USAGE
    live = Live(progress_stream(json_output))
    runtime = Path(tempfile.mkdtemp(prefix="warden-demo-run-", dir=_short_temp()))
    stage: Stage | None = None
    reports: list[StepReport] = []
    interrupted: int | None = None
    try:
        with _sigterm_as_exit():
            port, health_port = _free_ports(2)
            stage = Stage(
                space=space,
                runtime=runtime,
                port=port,
                health_port=health_port,
                upgrade_confirm=upgrade_confirm,
                progress=live,
                memory=why_no_memory_cgroup(),
                watch=watchfiles_installed(),
            )
            live.open(
                f"warden demo: a real warden run of a bundled service on 127.0.0.1:{port}, "
                f"{len(PROMISES)} promises under real traffic"
            )
            for name, step in steps():
                reports.append(_run_step(stage, name, step))
                live.end(reports[-1])
    except KeyboardInterrupt:
        interrupted = 128 + signal.SIGINT
    except SystemExit as exc:  # SIGTERM
        interrupted = exc.code if isinstance(exc.code, int) else 128 + signal.SIGTERM
    finally:
        live.close()
        if stage is not None:
            _tear_down(stage)
        shutil.rmtree(runtime, ignore_errors=True)
        if not keep:
            space.remove()
    if interrupted is not None or stage is None:
        kept = f"its logs are in {space.root}" if keep else "its directory removed"
        sys.stderr.write(f"warden demo: interrupted; warden and its service stopped, {kept}\n")
        return interrupted or EXIT_BROKEN
    report = Report(
        tuple(reports),
        time.monotonic() - began,
        str(space.root) if keep else None,
        stage.command,
    )
    if keep:
        _keep_logs(stage, report)
    if json_output:
        sys.stdout.write(to_json(report))
    else:
        sys.stdout.write(summary(report, Style(sys.stdout)))
    sys.stdout.flush()
    return EXIT_HELD if report.verdict == "held" else EXIT_BROKEN


def _run_step(stage: Stage, name: str, step: Callable[[Stage], StepReport]) -> StepReport:
    why = stage.gone() if name != "start" else None
    if why is not None:
        return not_run(name, PROMISES[name], why)
    try:
        return step(stage)
    except Exception as exc:  # the demo's own failure: the promise was not shown to hold
        return StepReport(
            name,
            PROMISES[name],
            "broken",
            f"the demo could not finish this step: {type(exc).__name__}: {exc}",
        )


def _tear_down(stage: Stage) -> None:
    if stage.traffic is not None:
        stage.traffic.stop()
    if stage.warden is not None:
        stage.warden.end()
        remove_leftovers(stage.warden.pid)


def _keep_logs(stage: Stage, report: Report) -> None:
    logs = stage.space.logs
    if stage.traffic is not None:
        write_csv(stage.traffic.requests, logs / "requests.csv")
    (logs / "summary.json").write_text(to_json(report))
    (logs / "command.json").write_text(json.dumps(list(stage.command), indent=2) + "\n")


#: The longest temporary directory the sockets' paths fit under: AF_UNIX takes 107 bytes,
#: and warden's notify socket adds about 60 (warden-demo-run-XXXXXXXX/warden-XXXXXXXXXXXX/notify).
_SHORT = 40


def _short_temp() -> str:
    """A temporary directory short enough for socket paths: $TMPDIR, else /tmp."""
    given = tempfile.gettempdir()
    return given if len(given) <= _SHORT or not os.access("/tmp", os.W_OK) else "/tmp"


def _free_ports(count: int) -> list[int]:
    """Ports free now on loopback, all different (warden binds them at once; a program that
    takes one meanwhile makes warden's start fail, and the start step says why)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """SIGTERM ends the demo as ^C does: through the cleanup, not around it."""

    def handle(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
