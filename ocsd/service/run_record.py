"""What a bounded run's HTML report draws: the delivery counters sampled over time.

:class:`RunRecorder` takes a :class:`Sample` of the daemon's own counters and latency
histogram (those ``/metrics`` exposes) every second; the report draws the differences
between samples. :class:`GroupGaps` keeps, per group, the longest wall time between two
accepted notifications. Both exist only in a run asked for ``--report``: a daemon run
until stopped pays nothing for them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ocsd.delivery.latency import LatencyHistogram
from ocsd.delivery.notifier import DeliveryCounters, GroupGaps

#: Samples kept at most: past it every other one is let go (the counters are cumulative,
#: so nothing is lost but resolution), which bounds the memory of a run of any length.
MAX_SAMPLES = 2000


@dataclass(frozen=True, slots=True)
class Sample:
    """The cumulative counters at one instant (seconds since the run began)."""

    at: float
    sent: int
    failed: dict[str, int]  # by reason, every kind
    dropped: int
    latency_buckets: tuple[float, ...]  # cumulative counts per bound, every kind, +inf last
    longest_gap: float  # the longest gap of one group that ended since the last sample


@dataclass
class RunRecorder:
    """Samples of one run, every ``every`` seconds, at most :data:`MAX_SAMPLES`."""

    counters: DeliveryCounters
    latency: LatencyHistogram
    gaps: GroupGaps
    clock: Callable[[], float] = time.monotonic
    every: float = 1.0
    samples: list[Sample] = field(default_factory=list)
    bounds: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        self._started = self.clock()
        self.sample()

    def sample(self) -> None:
        counters = self.counters
        failed: dict[str, int] = {}
        for (_kind, reason), count in counters.failed.items():
            failed[reason] = failed.get(reason, 0) + count
        bounds, buckets = self._buckets()
        self.bounds = bounds
        self.samples.append(
            Sample(
                self.clock() - self._started,
                sum(counters.sent.values()),
                failed,
                sum(counters.dropped.values()),
                buckets,
                self.gaps.take_window_max(),
            )
        )
        if len(self.samples) > MAX_SAMPLES:
            self.samples[:] = [*self.samples[:-1:2], self.samples[-1]]

    def _buckets(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Cumulative counts per upper bound, summed over the ``kind`` labels."""
        counts: dict[float, float] = {}
        for metric in self.latency.collect():
            for sample in metric.samples:
                if sample.name.endswith("_bucket"):
                    bound = float(sample.labels["le"])
                    counts[bound] = counts.get(bound, 0.0) + sample.value
        ordered = sorted(counts.items())
        return tuple(b for b, _ in ordered), tuple(c for _, c in ordered)

    async def run(self) -> None:
        """Sample every ``every`` seconds until cancelled (a supervised task)."""
        while True:
            await asyncio.sleep(self.every)
            self.sample()
