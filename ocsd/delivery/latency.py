"""The POST latency histogram: observed on every POST, read at scrape time.

prometheus-client's ``Histogram`` takes a lock for the sum and for the bucket of each
observation and finds the bucket with a Python loop over the bounds; at saturation that
was about 2 % of the CPU per notification (py-spy profile of the daemon under
python bench/saturation.py). The daemon observes from one thread, its event loop, so
this histogram keeps plain counts (the bucket found by bisection) and exposes them
through the collector interface with the same samples a prometheus-client histogram
has: ``_bucket`` (cumulative, ``le``), ``_count``, ``_sum`` and ``_created``.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import cast

from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

#: How prometheus-client writes a bound (``1.0``, ``0.005``, ``+Inf``).
_bound_text = cast(Callable[[float], str], floatToGoString)


class LatencyChild:
    """The counts of one label value; ``observe`` is the hot path."""

    __slots__ = ("_bounds", "counts", "created", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound (+Inf)
        self.sum = 0.0
        self.created = time.time()

    def observe(self, amount: float) -> None:
        # bisect_left: the first bound >= amount, as Prometheus's ``le`` (less or equal)
        self.counts[bisect_left(self._bounds, amount)] += 1
        self.sum += amount


class LatencyHistogram(Collector):
    """A labelled histogram for one event loop's observations (no locks)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.bounds = tuple(float(b) for b in buckets)
        self._children: dict[tuple[str, ...], LatencyChild] = {}
        if registry is not None:
            registry.register(self)

    def labels(self, *values: str) -> LatencyChild:
        key = tuple(str(v) for v in values)
        if len(key) != len(self.labelnames):
            raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {key}")
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = LatencyChild(self.bounds)
        return child

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        created = GaugeMetricFamily(
            f"{self.name}_created", self.documentation, labels=self.labelnames
        )
        bounds = [*(_bound_text(b) for b in self.bounds), "+Inf"]
        for key, child in list(self._children.items()):
            cumulative, running = [], 0.0
            for bound, count in zip(bounds, child.counts, strict=True):
                running += count
                cumulative.append((bound, running))
            family.add_metric(list(key), cumulative, child.sum)
            created.add_metric(list(key), child.created)
        yield family
        yield created
