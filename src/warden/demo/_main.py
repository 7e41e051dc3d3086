"""``warden demo`` from start to end: the directories, the steps, the summary, the cleanup.

Whatever happens (a broken step, an error of the demo's own, a signal: ^C, SIGTERM, SIGHUP,
SIGQUIT; its output closed), warden and its program are stopped, the clients end, warden's
memory cgroup is gone, and the demo's directories are removed unless ``--keep DIR`` asked to
keep one. Killed outright (SIGKILL), the demo cannot do that itself: its warden is tied to it
(:mod:`._tether`), and a watcher does it.

Where the demo cannot write its files (a full or tiny ``$TMPDIR``) it says so in one line
before anything starts, shows every step as not run, and exits 2.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .._exceptions import ConfigurationError
from ._cgroup import remove_leftovers, why_no_memory_cgroup
from ._clients import write_csv
from ._interrupts import EXIT_OUTPUT_CLOSED, Interrupted, Interrupts, OutputClosed, Sink, say
from ._judge import PROMISES
from ._present import Live, Style, progress_sink, summary, to_json
from ._report import Report, StepReport, not_run
from ._room import NoRoom, make_files_dir, make_runtime_dir
from ._scenario import Stage, steps
from ._tether import Tie
from ._workspace import Workspace

#: The confirmation window of the demo's warden: release 3 shows its fault at once, and a
#: leaking release keeps leaking for as long as the window lasts.
DEFAULT_UPGRADE_CONFIRM = 1.0

#: 0 every promise that ran held; 1 one broke; 2 bad usage, or the demo could not run here.
EXIT_HELD, EXIT_BROKEN, EXIT_USAGE = 0, 1, 2


def run_demo(
    *,
    json_output: bool = False,
    keep: Path | None = None,
    upgrade_confirm: float = DEFAULT_UPGRADE_CONFIRM,
) -> int:
    """Run the demo; print the summary (or JSON); 0 when every promise that ran held."""
    began = time.monotonic()
    output = Sink(sys.stdout, vital=True)
    with Interrupts() as interrupts:
        try:
            space, runtime = _directories(keep)
        except NoRoom as exc:
            return _could_not_run(str(exc), output, json_output, began)
        except ConfigurationError as exc:
            say(sys.stderr, f"warden demo: error: {exc}\n")
            return EXIT_USAGE
        tie = Tie([runtime] if keep else [runtime, space.root])
        live = Live(progress_sink(output, json_output))
        stage: Stage | None = None
        reports: list[StepReport] = []
        ended: int | None = None  # the exit code of a demo ended early
        try:
            with interrupts.raising():
                port, health_port = _free_ports(2)
                stage = Stage(
                    space=space,
                    runtime=runtime,
                    port=port,
                    health_port=health_port,
                    upgrade_confirm=upgrade_confirm,
                    progress=live,
                    memory=why_no_memory_cgroup(),
                    tie=tie,
                    launching=interrupts.deferred,
                )
                live.open(
                    f"warden demo: a real warden run of a bundled service on 127.0.0.1:{port}, "
                    f"{len(PROMISES)} promises under real traffic"
                )
                for name, step in steps():
                    reports.append(_run_step(stage, name, step))
                    live.end(reports[-1])
        except Interrupted as exc:
            ended = exc.exit_code
        except OutputClosed:
            ended = EXIT_OUTPUT_CLOSED
        finally:
            live.close()
            try:
                if stage is not None:
                    _tear_down(stage, interrupts)
                shutil.rmtree(runtime, ignore_errors=True)
                if not keep:
                    space.remove()
            finally:
                tie.release()
        if ended is None and interrupts.received is not None:  # during the cleanup
            ended = 128 + interrupts.received
        if ended == EXIT_OUTPUT_CLOSED:
            return ended  # no one reads: nothing to say
        if ended is not None or stage is None:
            kept = f"its logs are in {space.root}" if keep else "its directory removed"
            say(sys.stderr, f"warden demo: interrupted; warden and its service stopped, {kept}\n")
            return ended or EXIT_BROKEN
        report = Report(
            tuple(reports),
            time.monotonic() - began,
            str(space.root) if keep else None,
            stage.command,
        )
        if keep:
            _keep_logs(stage, report)
        try:
            output.write(to_json(report) if json_output else summary(report, Style(sys.stdout)))
        except OutputClosed:
            return EXIT_OUTPUT_CLOSED
        return EXIT_HELD if report.verdict == "held" else EXIT_BROKEN


def _directories(keep: Path | None) -> tuple[Workspace, Path]:
    """The demo's files (``keep``, else a new directory) and its sockets' directory, both
    checked for room; :class:`NoRoom` (one line) where it cannot write."""
    files = make_files_dir(keep.absolute() if keep else None)
    try:
        space = Workspace.create(files)
    except OSError as exc:  # the check passed, the disk filled meanwhile
        raise NoRoom(f"cannot write in {files}: {exc.strerror or exc}") from None
    except ConfigurationError:
        if keep is None:
            shutil.rmtree(files, ignore_errors=True)
        raise
    try:
        return space, make_runtime_dir()
    except NoRoom:
        space.discard()
        raise


def _could_not_run(why: str, output: Sink, json_output: bool, began: float) -> int:
    """Nothing ran: the reason in one line on stderr, every step not run on stdout; exit 2."""
    say(sys.stderr, f"warden demo: error: {why}\n")
    shown = "the demo cannot write its files here (its error line says where it can)"
    report = Report(
        tuple(not_run(name, promise, shown) for name, promise in PROMISES.items()),
        time.monotonic() - began,
        None,
        error=why,
    )
    with contextlib.suppress(OutputClosed):
        output.write(to_json(report) if json_output else summary(report, Style(sys.stdout)))
    return EXIT_USAGE


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


def _tear_down(stage: Stage, interrupts: Interrupts) -> None:
    if stage.traffic is not None:
        stage.traffic.stop()
    if stage.warden is not None:
        stage.warden.end(interrupts.hurry)
        remove_leftovers(stage.warden.pid)


def _keep_logs(stage: Stage, report: Report) -> None:
    logs = stage.space.logs
    if stage.traffic is not None:
        write_csv(stage.traffic.requests, logs / "requests.csv")
    (logs / "summary.json").write_text(to_json(report))
    (logs / "command.json").write_text(json.dumps(list(stage.command), indent=2) + "\n")


def _free_ports(count: int) -> list[int]:
    """Ports free now on loopback, all different (warden binds them at once; a program that
    takes one meanwhile makes warden's start fail, and the start step says why)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
