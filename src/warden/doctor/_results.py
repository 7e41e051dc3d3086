"""What a check says: one result per check and subject, and the report they make together.

A result is ``ok`` (the arithmetic holds, and says so), a ``warning`` or an ``error`` (a
finding: the arithmetic that fails, and the fix). The report's verdict is the worst of its
results: ``errors`` exits 1, ``warnings`` and ``clean`` exit 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Literal

Status = Literal["ok", "warning", "error"]
Verdict = Literal["clean", "warnings", "errors"]


@dataclasses.dataclass(frozen=True, slots=True)
class Where:
    """Where a number or a mistake is: a file, a line in it (or None), and what it is about
    (``Deployment/app, container app``; ``app.service``)."""

    file: str
    line: int | None = None
    subject: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    """One check's word on one subject.

    Attributes:
        check: the check's stable id (``grace-budget``), documented in docs/doctor.md.
        status: ``ok``, ``warning`` or ``error``.
        where: the file and line that decide it.
        message: what holds or not, with the arithmetic.
        fix: what to change (empty when ``ok``).
    """

    check: str
    status: Status
    where: Where
    message: str
    fix: str = ""

    @property
    def finding(self) -> bool:
        return self.status != "ok"


def ok(check: str, where: Where, message: str) -> Result:
    return Result(check, "ok", where, message)


def error(check: str, where: Where, message: str, fix: str) -> Result:
    return Result(check, "error", where, message, fix)


def warning(check: str, where: Where, message: str, fix: str) -> Result:
    return Result(check, "warning", where, message, fix)


@dataclasses.dataclass(frozen=True, slots=True)
class Report:
    """Every result of one run of ``warden doctor``, in the order they were found.

    Attributes:
        results: the checks' results.
        notes: what a person should know that is no finding ("no warden in the command of
            container x: its stop numbers are not checked"), by file.
        title: what was checked (``3 files``, ``this machine``).
    """

    results: tuple[Result, ...]
    notes: tuple[tuple[str, str], ...] = ()
    title: str = ""

    @classmethod
    def of(
        cls, results: Iterable[Result], notes: Sequence[tuple[str, str]] = (), title: str = ""
    ) -> Report:
        return cls(tuple(results), tuple(notes), title)

    @property
    def findings(self) -> tuple[Result, ...]:
        return tuple(result for result in self.results if result.finding)

    @property
    def errors(self) -> int:
        return sum(1 for result in self.results if result.status == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for result in self.results if result.status == "warning")

    @property
    def verdict(self) -> Verdict:
        if self.errors:
            return "errors"
        return "warnings" if self.warnings else "clean"

    @property
    def exit_code(self) -> int:
        """0 when clean or warnings only, 1 when any finding is an error."""
        return 1 if self.errors else 0
