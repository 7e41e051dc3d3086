"""warden's own /metrics text against the reference: prometheus_client.

The same series are given to prometheus_client's ``generate_latest`` (through a collector
built from its metric families, as warden did before it wrote the text itself) and to
:func:`warden.observe._exposition.render`: the bytes must be equal, and prometheus_client's
parser must read back every sample, for awkward label values and floats too.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from warden.observe._exposition import PREFIX, go_float, render
from warden.observe._metrics import FAMILIES, Metrics


class _Reference(Collector):
    """The series of ``metrics`` as prometheus_client's own metric families."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        values, histograms = self._metrics.snapshot()
        for family in FAMILIES:
            name, labels = PREFIX + family.name, list(family.labels)
            if family.type == "histogram":
                hist = HistogramMetricFamily(name, family.help, labels=labels)
                for key, slot in sorted(histograms[family.name].items()):
                    running, buckets = 0.0, []
                    for bound, count in zip(family.buckets, slot, strict=False):
                        running += count
                        buckets.append((repr(float(bound)), running))
                    buckets.append(("+Inf", running + slot[len(family.buckets)]))
                    hist.add_metric(list(key), buckets, slot[-1])
                yield hist
                continue
            made: CounterMetricFamily | GaugeMetricFamily
            if family.type == "counter":
                made = CounterMetricFamily(name, family.help, labels=labels)
            else:
                made = GaugeMetricFamily(name, family.help, labels=labels)
            for key, value in sorted(values.get(family.name, {}).items()):
                made.add_metric(list(key), value)
            yield made


def reference(metrics: Metrics) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Reference(metrics))
    return generate_latest(registry)


def busy() -> Metrics:
    """Every family with series in it; label values and numbers that need care."""
    metrics = Metrics()
    awkward = ["plain", 'a "quoted" name', "back\\slash", "new\nline", "ünïcödé ✓", ""]
    for family in FAMILIES:
        for n, value in enumerate(awkward):
            labels = tuple(f"{value}{i}" for i in range(len(family.labels)))
            if family.type == "histogram":
                for seconds in (0.001, 0.3, 7.0, 1e4 * (n + 1)):
                    metrics.observe(family.name, seconds, labels)
            elif family.type == "counter":
                metrics.inc(family.name, labels, 10 ** (n + 2))
            else:
                metrics.set(family.name, [0.5, -3.25, 1e21, 1234567.0, 2**53, 1e-7][n], labels)
    return metrics


def test_the_text_is_prometheus_clients_byte_for_byte() -> None:
    for metrics in (Metrics(), busy()):
        assert render(metrics) == reference(metrics)


def test_prometheus_clients_parser_reads_every_sample_back() -> None:
    metrics = busy()
    text = render(metrics).decode()
    parsed = {family.name: family for family in text_string_to_metric_families(text)}
    values, histograms = metrics.snapshot()
    for family in FAMILIES:
        name = PREFIX + family.name.removesuffix("_total")
        assert parsed[name].type == family.type
        if family.type == "histogram":
            counts = {
                tuple(s.labels[label] for label in family.labels): s.value
                for s in parsed[name].samples
                if s.name.endswith("_count")
            }
            assert counts == {k: sum(v[:-1]) for k, v in histograms[family.name].items()}
            continue
        samples = {
            tuple(s.labels[label] for label in family.labels): s.value for s in parsed[name].samples
        }
        assert samples == values.get(family.name, {})


def test_floats_are_written_as_go_writes_them() -> None:
    cases = {
        0.0: "0.0",
        1.0: "1.0",
        -3.25: "-3.25",
        1234567.0: "1.234567e+06",
        123456.0: "123456.0",
        1e21: "1e+21",
        1e-7: "1e-07",
        math.inf: "+Inf",
        -math.inf: "-Inf",
        math.nan: "NaN",
    }
    for value, text in cases.items():
        assert go_float(value) == text


def test_a_scrape_loads_no_client_library_and_no_tls() -> None:
    """The first scrape imports nothing of prometheus_client, ssl or an HTTP client."""
    code = (
        "import sys, warden\n"
        "from warden.observe._health import Health\n"
        "lc = warden.Lifecycle(handle_signals=False)\n"
        "h = Health(lc)\n"
        "before = set(sys.modules)\n"
        "assert h.scrape().status == 200\n"
        "new = set(sys.modules) - before\n"
        "print(sorted(m for m in new if m.split('.')[0] in "
        "('prometheus_client', 'ssl', 'urllib', 'http', 'wsgiref', 'email')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=30
    )
    assert done.stdout.strip() == "[]", done.stderr
