"""What the demo found: one verdict per promise, the checks behind it, and the figures.

Plain data, filled by the judge (:mod:`._judge`) and read by the presentation
(:mod:`._present`) and by ``--json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ._clients import Figures

Verdict = Literal["held", "broken", "not run"]


@dataclass(frozen=True, slots=True)
class Check:
    """One clause of a promise, and what was measured for it."""

    what: str  # the clause, e.g. "0 failed"
    held: bool
    measured: str  # e.g. "0 of 2,345 requests failed"

    def to_json(self) -> dict[str, object]:
        return {"what": self.what, "held": self.held, "measured": self.measured}


@dataclass(frozen=True, slots=True)
class StepReport:
    """A step of the demo: its promise, the verdict, and how it was reached."""

    name: str  # "upgrade"
    promise: str  # what warden promises here, in a sentence
    verdict: Verdict
    summary: str  # what happened, measured, in one line
    checks: tuple[Check, ...] = ()
    figures: Figures | None = None
    said: tuple[str, ...] = ()  # warden's own words: reasons and details from its facts
    measured: dict[str, object] = field(default_factory=dict)  # the step's own figures

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "promise": self.promise,
            "verdict": self.verdict,
            "summary": self.summary,
            "checks": [check.to_json() for check in self.checks],
            "figures": None if self.figures is None else self.figures.to_json(),
            "warden_said": list(self.said),
            "measured": self.measured,
        }


def verdict_of(checks: tuple[Check, ...]) -> Verdict:
    return "held" if all(check.held for check in checks) else "broken"


def not_run(name: str, promise: str, why: str) -> StepReport:
    """A step this machine (or an earlier step) could not run: said why, never simulated."""
    return StepReport(name, promise, "not run", f"not run: {why}")


@dataclass(frozen=True, slots=True)
class Report:
    """The whole demo."""

    steps: tuple[StepReport, ...]
    seconds: float
    logs: str | None  # the directory kept with --keep
    command: tuple[str, ...] = ()  # the warden run command line the demo used
    error: str | None = None  # why the demo could not run at all (then no step ran)

    @property
    def held(self) -> int:
        return sum(1 for step in self.steps if step.verdict == "held")

    @property
    def broken(self) -> int:
        return sum(1 for step in self.steps if step.verdict == "broken")

    @property
    def not_run(self) -> int:
        return sum(1 for step in self.steps if step.verdict == "not run")

    @property
    def verdict(self) -> Verdict:
        """held: every promise that ran held (and at least one ran); not run: none ran."""
        if self.broken:
            return "broken"
        return "held" if self.held else "not run"

    def to_json(self) -> dict[str, object]:
        return {
            "verdict": self.verdict,
            "held": self.held,
            "broken": self.broken,
            "not_run": self.not_run,
            "seconds": round(self.seconds, 3),
            "steps": [step.to_json() for step in self.steps],
            "logs": self.logs,
            "command": list(self.command),
            "error": self.error,
        }
