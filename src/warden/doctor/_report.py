"""A report for people (``linkerd check``'s shape) and for scripts (``--json``).

For people: the verdict first, with a glyph and a word, then each file, each subject in it,
and one line per check: glyph, word, id, the line it is about, the arithmetic; a finding's
fix below it. For scripts: one JSON object, ``{"verdict": ..., "findings": [{"check",
"severity", "file", "line", "message", "fix"}]}``.
"""

from __future__ import annotations

import json

from ._results import Report, Result

GLYPHS = {"ok": "✓", "warning": "‼", "error": "✗"}
_VERDICT_GLYPH = {"clean": "✓", "warnings": "‼", "errors": "✗"}


def verdict_line(report: Report) -> str:
    """``✗ errors: 2 errors, 1 warning; 11 checks passed (3 files)``."""
    passed = len(report.results) - report.errors - report.warnings
    parts = []
    if report.errors:
        parts.append(_count(report.errors, "error"))
    if report.warnings:
        parts.append(_count(report.warnings, "warning"))
    if not parts:
        parts.append("no findings")
    text = f"{_VERDICT_GLYPH[report.verdict]} {report.verdict}: {', '.join(parts)}"
    if passed:
        text += f"; {_count(passed, 'check')} passed"
    return f"{text} ({report.title})" if report.title else text


def render_text(report: Report) -> str:
    """The report for a person."""
    lines = [f"warden doctor: {verdict_line(report)}"]
    files: dict[str, dict[str, list[Result]]] = {}
    for result in report.results:
        files.setdefault(result.where.file, {}).setdefault(result.where.subject, []).append(result)
    notes: dict[str, list[str]] = {}
    for file, note in report.notes:
        notes.setdefault(file, []).append(note)
        files.setdefault(file, {})
    for file, subjects in files.items():
        lines += ["", file]
        for subject, results in subjects.items():
            indent = "  "
            if subject:
                lines.append(f"  {subject}")
                indent = "    "
            lines += [_line(result, indent) for result in results]
        lines += [f"  · note: {note}" for note in notes.get(file, [])]
    return "\n".join(lines) + "\n"


def _line(result: Result, indent: str) -> str:
    at = f" (line {result.where.line})" if result.where.line is not None else ""
    text = f"{indent}{GLYPHS[result.status]} {result.status:<8}{result.check}{at}: {result.message}"
    if result.fix:
        text += f"\n{indent}  {'':<8}fix: {result.fix}"
    return text


def render_json(report: Report) -> str:
    """The report for a script: the verdict and every finding."""
    findings = [
        {
            "check": result.check,
            "severity": result.status,
            "file": result.where.file,
            "line": result.where.line,
            "message": f"{result.where.subject}: {result.message}"
            if result.where.subject
            else result.message,
            "fix": result.fix,
        }
        for result in report.findings
    ]
    return json.dumps({"verdict": report.verdict, "findings": findings}, indent=2) + "\n"


def _count(number: int, word: str) -> str:
    return f"{number} {word}{'' if number == 1 else 's'}"
