"""What a person sees: a live line per step, then the summary, verdict first; or JSON.

On a terminal each step is one line that says what is happening and counts the requests so
far, redrawn in place, and resolves to ``✓ held`` or ``✗ broken``; piped, only the resolved
lines are printed. Then the summary, as ``k6`` and ``linkerd check`` give theirs: the verdict,
one line per promise (a glyph *and* a word, so it reads without colour), the checks of a
broken one, a table of figures per step, and warden's own words. Plain ANSI; colour only on
a terminal and without ``NO_COLOR``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from typing import TextIO

from ._clients import Figures, Traffic
from ._interrupts import OutputClosed, Sink
from ._report import Report, StepReport, Verdict

_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_REDRAW = 0.1  # seconds between redraws of the live line
_NAME_WIDTH = 15
_GLYPHS: dict[Verdict, str] = {"held": "✓", "broken": "✗", "not run": "-"}
_PLAIN_GLYPHS: dict[Verdict, str] = {"held": "+", "broken": "x", "not run": "-"}
_COLOURS: dict[Verdict, str] = {"held": "32", "broken": "31", "not run": "33"}
_ASCII = str.maketrans({"→": "->", "·": "-", "…": "...", "—": "--"})


class Style:
    """Glyphs and colours for one stream."""

    def __init__(self, stream: TextIO | None) -> None:
        tty = _isatty(stream)
        self.colour = tty and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
        self.encoding = getattr(stream, "encoding", None) or "ascii"
        self.unicode = self.encoding.lower().replace("-", "") in ("utf8", "utf16", "utf32")
        self.live = tty

    def fit(self, text: str) -> str:
        """``text`` as the stream can write it: arrows and dots in ASCII where it is not
        UTF-8, and anything else it cannot encode as ``?`` (never an encoding error)."""
        if self.unicode:
            return text
        ascii_text = text.translate(_ASCII)
        return ascii_text.encode(self.encoding, "replace").decode(self.encoding)

    def glyph(self, verdict: Verdict) -> str:
        """The glyph and the word, so a verdict reads without colour (and without UTF-8)."""
        return self.paint(f"{self._glyph(verdict)} {verdict:<7}", _COLOURS[verdict])

    def mark(self, verdict: Verdict) -> str:
        """The glyph alone, coloured (for a line whose words say the verdict)."""
        return self.paint(self._glyph(verdict), _COLOURS[verdict])

    def _glyph(self, verdict: Verdict) -> str:
        return (_GLYPHS if self.unicode else _PLAIN_GLYPHS)[verdict]

    def paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour else text

    def bold(self, text: str) -> str:
        return self.paint(text, "1")

    def dim(self, text: str) -> str:
        return self.paint(text, "2")

    @property
    def spinner(self) -> str:
        return _SPINNER if self.unicode else "|/-\\"


def step_line(style: Style, step: StepReport) -> str:
    return f"  {style.glyph(step.verdict)}  {step.name:<{_NAME_WIDTH}} {step.summary}"


class Live:
    """The steps as they run: one line each, redrawn on a terminal, plain when piped.

    ``sink`` None: say nothing (``--json`` to a pipe). A sink that closes under it (a
    vital one raises :class:`OutputClosed` in the steps' thread) stops the redraws.
    """

    def __init__(self, sink: Sink | None) -> None:
        self.stream = sink
        self.style = Style(sink.stream) if sink is not None else None
        self._lock = threading.Lock()
        self._name = ""
        self._doing = ""
        self._traffic: Traffic | None = None
        self._mark = (0, 0)
        self._began = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self, title: str) -> None:
        if self.stream is None or self.style is None:
            return
        self.stream.write(self.style.fit(self.style.bold(title)) + "\n\n")
        if self.style.live:
            self._thread = threading.Thread(target=self._redraw, name="demo-live", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the redraws and clear the live line (quietly: this runs in the cleanup)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1)
        with contextlib.suppress(OutputClosed):
            self._clear()

    def begin(self, name: str, doing: str, traffic: Traffic | None) -> None:
        if self.stream is not None and self.stream.closed and self.stream.vital:
            raise OutputClosed  # the redraws found no one reads any more
        with self._lock:
            if name != self._name:
                self._began = time.monotonic()
                self._traffic = None
            self._name, self._doing = name, doing
            if traffic is not None and traffic is not self._traffic:
                self._traffic, self._mark = traffic, traffic.mark()

    def doing(self, text: str) -> None:
        with self._lock:
            self._doing = text

    def end(self, report: StepReport) -> None:
        if self.stream is None or self.style is None:
            return
        with self._lock:
            self._name = ""
            self._clear()
            self.stream.write(self.style.fit(step_line(self.style, report)) + "\n")

    def _clear(self) -> None:
        if self.stream is not None and self.style is not None and self.style.live:
            self.stream.write("\r\x1b[2K")

    def _redraw(self) -> None:
        assert self.stream is not None and self.style is not None
        spinner = self.style.spinner
        tick = 0
        while not self._stop.wait(_REDRAW):
            tick += 1
            with self._lock:
                if not self._name:
                    continue
                line = f"  {spinner[tick % len(spinner)]}  {self._name:<{_NAME_WIDTH}} "
                line += self._doing
                counts = f"{time.monotonic() - self._began:4.1f} s"
                if self._traffic is not None:
                    served, failed = self._traffic.since(self._mark)
                    counts = f"{served:,} served · {failed} failed · {counts}"
                width = _columns(self.stream)
                room = width - len(line) - len(counts) - 5
                if room < 0:
                    line = line[: max(0, len(line) + room - 1)] + "…"
                text = f"\r\x1b[2K{line}  {self.style.dim('· ' + counts)}"
                try:
                    self.stream.write(self.style.fit(text))
                except OutputClosed:  # the steps' thread hears of it at its next line
                    return
                if self.stream.closed:
                    return


def _columns(sink: Sink) -> int:
    try:
        assert sink.stream is not None
        columns = os.get_terminal_size(sink.stream.fileno()).columns
    except (AssertionError, OSError, ValueError):
        columns = 0
    return columns if columns >= 40 else 100  # a terminal that does not say its size


# -- the summary -------------------------------------------------------------------------


def summary(report: Report, style: Style) -> str:
    """The whole summary: verdict, one line per promise, figures, warden's words, the logs."""
    lines = ["", _headline(report, style), ""]
    for step in report.steps:
        lines.append(step_line(style, step))
        for check in step.checks:
            if not check.held:
                lines.append(f"{'':14}{style.mark('broken')} {check.what}: {check.measured}")
    if report.verdict == "not run":  # nothing ran: no figures, no words, no logs
        return style.fit("\n".join(lines) + "\n")
    lines += ["", *_figures_table(report, style)]
    said = _said(report, style)
    if said:
        lines += ["", *said]
    lines.append("")
    lines.append(
        f"logs kept in {report.logs}"
        if report.logs
        else style.dim("logs removed with the demo's directory (--keep DIR keeps them)")
    )
    return style.fit("\n".join(lines) + "\n")


def _headline(report: Report, style: Style) -> str:
    ran = report.held + report.broken
    if report.verdict == "held":
        text = f"warden demo: every promise held ({report.held} of {ran})"
    elif report.verdict == "broken":
        text = f"warden demo: {report.broken} of {ran} promises broken"
    else:
        text = "warden demo: could not run here"
    if report.not_run:
        text += f", {report.not_run} not run"
    return f"{style.mark(report.verdict)} {style.bold(text)} in {report.seconds:.1f} s"


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _figures_table(report: Report, style: Style) -> list[str]:
    head = (
        f"  {'step':<{_NAME_WIDTH}} {'served':>8} {'failed':>7} {'p50':>9} {'p99':>9} "
        f"{'duration':>9}  by release"
    )
    rows = [style.bold(head)]
    served = failed = 0
    for step in report.steps:
        f = step.figures
        if f is None:
            rows.append(
                f"  {step.name:<{_NAME_WIDTH}} {'-':>8} {'-':>7} {'-':>9} {'-':>9} {'-':>9}"
            )
            continue
        served, failed = served + f.served, failed + f.failed
        rows.append(_figures_row(step.name, f))
    rows.append(f"  {'total':<{_NAME_WIDTH}} {served:>8,} {failed:>7,}")
    return rows


def _figures_row(name: str, f: Figures) -> str:
    releases = ", ".join(f"v{k}: {v:,}" for k, v in sorted(f.by_release.items()))
    return (
        f"  {name:<{_NAME_WIDTH}} {f.served:>8,} {f.failed:>7,} {_ms(f.p50):>9} {_ms(f.p99):>9} "
        f"{f.duration:>7.2f} s  {releases}"
    )


def _said(report: Report, style: Style) -> list[str]:
    lines = [style.bold("  what warden said")]
    for step in report.steps:
        for n, text in enumerate(step.said):
            lines.append(f"  {step.name if n == 0 else '':<{_NAME_WIDTH}} {text}")
    return lines if len(lines) > 1 else []


def to_json(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2) + "\n"


def progress_sink(output: Sink, json_output: bool) -> Sink | None:
    """Where the live lines go: the output (stdout); with --json, stderr if it is a
    terminal (not vital: the JSON is), else nowhere."""
    if not json_output:
        return output
    return Sink(sys.stderr, vital=False) if _isatty(sys.stderr) else None


def _isatty(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (OSError, ValueError):
        return False
