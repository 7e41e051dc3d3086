"""The Prometheus text format (0.0.4) of a :class:`~warden.observe._metrics.Metrics`.

Written here, in the standard library, rather than by prometheus_client: its package imports
its push gateway's and its HTTP server's modules with it (``ssl``, ``urllib.request``,
``http.server``), 7-8 MiB resident in ``warden run`` at the first scrape (measured,
docs/benchmarks.md), for text that is a few lines per family. The output is the one
prometheus_client's ``generate_latest`` gives for the same series, byte for byte
(``tests/observe/test_exposition.py`` compares them, and parses it with prometheus_client's
parser): families in :data:`FAMILIES` order, series sorted, labels sorted by name (``le``
among them), values in Go's float formatting.

Single-process on purpose: prometheus_client's multiprocess mode keeps a file per pid, which a
supervisor that restarts its program would leak.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ._metrics import FAMILIES, Family, Labels

if TYPE_CHECKING:
    from ._metrics import Metrics

PREFIX = "warden_"


def renderer(metrics: Metrics) -> Callable[[], bytes]:
    """A function returning the text format of ``metrics`` at each call."""
    return lambda: render(metrics)


def render(metrics: Metrics) -> bytes:
    """Every family of :data:`FAMILIES`, with the series of one :meth:`Metrics.snapshot`."""
    values, histograms = metrics.snapshot()
    out: list[str] = []
    for family in FAMILIES:
        if family.type == "histogram":
            _histogram(out, family, histograms[family.name].items())
        else:
            _simple(out, family, values.get(family.name, {}).items())
    return "".join(out).encode()


def _header(out: list[str], name: str, family: Family) -> None:
    help_text = family.help.replace("\\", r"\\").replace("\n", r"\n")
    out.append(f"# HELP {name} {help_text}\n# TYPE {name} {family.type}\n")


def _simple(out: list[str], family: Family, series: Iterable[tuple[Labels, float]]) -> None:
    name = PREFIX + family.name
    if family.type == "counter":
        name = name.removesuffix("_total") + "_total"
    _header(out, name, family)
    for key, value in sorted(series):
        out.append(f"{name}{_labels(zip(family.labels, key, strict=False))} {go_float(value)}\n")


def _histogram(
    out: list[str], family: Family, series: Iterable[tuple[Labels, list[float]]]
) -> None:
    name = PREFIX + family.name
    _header(out, name, family)
    for key, slot in sorted(series):
        pairs = list(zip(family.labels, key, strict=False))
        running = 0.0
        for bound, count in zip(family.buckets, slot, strict=False):
            running += count
            le = repr(float(bound))
            out.append(f"{name}_bucket{_labels([*pairs, ('le', le)])} {go_float(running)}\n")
        running += slot[len(family.buckets)]
        out.append(f"{name}_bucket{_labels([*pairs, ('le', '+Inf')])} {go_float(running)}\n")
        out.append(f"{name}_count{_labels(pairs)} {go_float(running)}\n")
        out.append(f"{name}_sum{_labels(pairs)} {go_float(slot[-1])}\n")


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{name}="{_escape(value)}"' for name, value in sorted(pairs))
    return f"{{{inner}}}" if inner else ""


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def go_float(value: float) -> str:
    """A sample value as Prometheus' Go code writes it (``+Inf``, ``NaN``, ``1e+06``)."""
    value = float(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    text = repr(value)
    dot = text.find(".")
    if value > 0 and dot > 6:  # Go turns to an exponent sooner than Python
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text
