"""The Prometheus text of a :class:`~warden.observe._metrics.Metrics`, by prometheus_client.

Imported on the first scrape only. Each scrape reads one snapshot through a collector
registered in a registry of warden's own (never the process-wide default registry, which the
application may use for its own metrics). Single-process on purpose: prometheus_client's
multiprocess mode keeps a file per pid, which a supervisor that restarts its program would
leak.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

# `warden run` keeps asyncio from loading ssl (a PID 1 that never speaks TLS saves its
# memory) by a None in sys.modules; prometheus_client imports ssl for its push gateway.
if sys.modules.get("ssl", sys) is None:  # typeshed says modules are never None; they may be
    del sys.modules["ssl"]

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ._metrics import FAMILIES

if TYPE_CHECKING:
    from ._metrics import Metrics

PREFIX = "warden_"


class _Collector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        values, histograms = self._metrics.snapshot()
        for family in FAMILIES:
            name = PREFIX + family.name
            labels = list(family.labels)
            if family.type == "histogram":
                hist = HistogramMetricFamily(name, family.help, labels=labels)
                for key, slot in sorted(histograms[family.name].items()):
                    running, buckets = 0.0, []
                    for bound, count in zip(family.buckets, slot, strict=False):
                        running += count
                        buckets.append((_bound(bound), running))
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


def _bound(bound: float) -> str:
    return repr(float(bound))


def renderer(metrics: Metrics) -> Callable[[], bytes]:
    """A function returning the text format of ``metrics`` at each call."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(metrics))
    return lambda: generate_latest(registry)
