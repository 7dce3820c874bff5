"""Prometheus metrics of one daemon, on its own registry.

Counters live where the work happens (the notifier's DeliveryCounters, the ticker,
the reload count) as plain integers; this collector reads them at scrape time, so
the hot path pays nothing for metrics. The POST latency histogram is ocsd's own
(``ocsd.delivery.latency``: no locks on the hot path), the others prometheus-client's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ocsd.core.genesys import GroupStatus, status_name
from ocsd.delivery.latency import LatencyHistogram
from ocsd.delivery.notifier import DeliveryCounters, DeliveryFigures

#: Fine enough that a run's percentiles, interpolated within a bucket as Prometheus's
#: histogram_quantile does, land within ~25 % of the true value around the thresholds
#: people set (10 ms to 1 s): the run summary reads its percentiles from these.
LATENCY_BUCKETS = (
    0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
    0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 3, 5, 10, 30,
)  # fmt: skip
LATENESS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)


class Metrics:
    """The registry of one daemon, its histograms, and the collector of its counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.post_latency = LatencyHistogram(
            "ocsd_post_latency_seconds",
            "Time from the start of a POST to its answer (or failure)",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tick_lateness = Histogram(
            "ocsd_tick_lateness_seconds",
            "How late each periodic tick (one phase slot of the interval) ran after its due time",
            buckets=LATENESS_BUCKETS,
            registry=self.registry,
        )

    def collect_from(self, source: Callable[[], DaemonFigures]) -> None:
        self.registry.register(_DaemonCollector(source))


@dataclass(frozen=True)
class DaemonFigures:
    """What the collector reads from the daemon at scrape time."""

    counters: DeliveryCounters
    delivery: DeliveryFigures
    statuses: Counter[GroupStatus]
    reloads: Counter[str]
    ticks_skipped: int
    delivery_mode: str = "ocs"
    task_restarts: Counter[str] = field(default_factory=Counter)


class _DaemonCollector(Collector):
    def __init__(self, source: Callable[[], DaemonFigures]) -> None:
        self._source = source

    def describe(self) -> list[Any]:
        return []  # unchecked collector: its families are built at scrape time

    def collect(self) -> Iterator[Metric]:
        figures = self._source()
        yield from self._notifications(figures)
        yield from self._receiver(figures.counters)
        yield from self._daemon(figures)
        yield from self._delivery_gauges(figures)

    @staticmethod
    def _notifications(figures: DaemonFigures) -> Iterator[Metric]:
        counters = figures.counters
        kinds = ("state", "periodic")
        yield _labelled(
            CounterMetricFamily,
            "ocsd_notifications_sent",
            "Notifications the receiver accepted (2xx)",
            ["kind"],
            {(kind,): counters.sent.get(kind, 0) for kind in kinds}.items(),
        )
        yield _labelled(
            CounterMetricFamily,
            "ocsd_notifications_failed",
            "Notifications posted but not accepted, by reason (refused, timeout, HTTP status, "
            "internal error, ...)",
            ["kind", "reason"],
            counters.failed.items(),
        )
        yield _labelled(
            CounterMetricFamily,
            "ocsd_notifications_dropped",
            "Notifications never posted: backlog full, superseded, or shutdown",
            ["kind", "reason"],
            counters.dropped.items(),
        )
        yield GaugeMetricFamily(
            "ocsd_notifications_pending",
            "Notifications queued or in flight",
            value=figures.delivery.pending,
        )
        yield _labelled(
            CounterMetricFamily,
            "ocsd_notifications_retried",
            "Failed attempts planned again (reliable delivery mode)",
            ["kind"],
            {(kind,): counters.retried.get(kind, 0) for kind in kinds}.items(),
        )
        yield _labelled(
            CounterMetricFamily,
            "ocsd_receiver_answers_cut",
            "Receiver answers whose body was not read to its end (too long: over 64 KiB; "
            "unfinished: not ended within http-response-timeout; broken): the status code "
            "counted, the connection closed",
            ["reason"],
            (((reason,), count) for reason, count in counters.answers_cut.items()),
        )
        yield _labelled(
            CounterMetricFamily,
            "ocsd_notifications_dead_lettered",
            "State notifications given up and written to the dead-letter file, by reason",
            ["reason"],
            (((reason,), count) for reason, count in counters.dead_lettered.items()),
        )

    @staticmethod
    def _receiver(counters: DeliveryCounters) -> Iterator[Metric]:
        """What a run against a receiver under test adds: faults, the slowest POST."""
        kinds = ("state", "periodic")
        yield _labelled(
            CounterMetricFamily,
            "ocsd_faults_injected",
            "Faults injected on purpose ([faults]), by kind: drop, delay, reorder, "
            "duplicate, clock-skew, unknown-field, slow-send",
            ["fault"],
            (((fault.replace("_", "-"),), count) for fault, count in counters.faults.items()),
        )
        yield _labelled(
            GaugeMetricFamily,
            "ocsd_post_latency_max_seconds",
            "The slowest POST so far (start to answer or failure), by kind",
            ["kind"],
            (((kind,), counters.slowest[kind]) for kind in kinds if kind in counters.slowest),
        )

    @staticmethod
    def _daemon(figures: DaemonFigures) -> Iterator[Metric]:
        yield _labelled(
            GaugeMetricFamily,
            "ocsd_campaign_groups",
            "Campaign Groups by status",
            ["status"],
            (
                ((status_name(status),), figures.statuses.get(status, 0))
                for status in GroupStatus
                if status != GroupStatus.UNKNOWN
            ),
        )
        yield _labelled(
            CounterMetricFamily,
            "ocsd_config_reloads",
            "Configuration reloads, by result",
            ["result"],
            {
                (result,): figures.reloads.get(result, 0) for result in ("applied", "refused")
            }.items(),
        )
        yield CounterMetricFamily(
            "ocsd_ticks_skipped",
            "Periodic phase slots skipped because the loop was a whole interval late",
            value=figures.ticks_skipped,
        )
        yield _labelled(
            CounterMetricFamily,
            "ocsd_task_restarts",
            "Supervised tasks (senders, ticker, stepper, scheduler, file watcher) that died "
            "and were restarted",
            ["task"],
            (((task,), count) for task, count in figures.task_restarts.items()),
        )

    @staticmethod
    def _delivery_gauges(figures: DaemonFigures) -> Iterator[Metric]:
        delivery = figures.delivery
        yield GaugeMetricFamily(
            "ocsd_outbox_pending",
            "State notifications stored in the outbox, not yet delivered (reliable delivery mode)",
            value=delivery.outbox_pending,
        )
        yield GaugeMetricFamily(
            "ocsd_outbox_unstored",
            "State notifications produced but not stored: the outbox cannot write; they wait "
            "in memory, unsent, and a crash loses them (reliable delivery mode)",
            value=delivery.outbox_unstored,
        )
        yield GaugeMetricFamily(
            "ocsd_outbox_write_failing",
            "1 while the outbox cannot write (disk full, read-only): state changes are refused "
            "and /readyz answers 503 (reliable delivery mode)",
            value=0 if delivery.outbox_writable else 1,
        )
        yield GaugeMetricFamily(
            "ocsd_dead_letter_write_failing",
            "1 while the dead-letter file cannot be written (reliable delivery mode)",
            value=0 if delivery.dead_letters_writable else 1,
        )
        yield CounterMetricFamily(
            "ocsd_outbox_write_errors",
            "Outbox transactions that failed (each is tried again)",
            value=figures.counters.outbox_write_errors,
        )
        yield GaugeMetricFamily(
            "ocsd_dead_letters",
            "Dead letters in the dead-letter file waiting for a re-send",
            value=delivery.dead_letters,
        )
        yield GaugeMetricFamily(
            "ocsd_delivery_stopped",
            "1 when the receiver answered 410 Gone: nothing is sent until the configuration changes",
            value=1 if delivery.stopped else 0,
        )
        yield _labelled(
            GaugeMetricFamily,
            "ocsd_delivery_mode",
            "The delivery mode in use (1 for the current one)",
            ["mode"],
            (((name,), int(figures.delivery_mode == name)) for name in ("ocs", "reliable")),
        )


def _labelled(
    family: type[CounterMetricFamily] | type[GaugeMetricFamily],
    name: str,
    documentation: str,
    labels: list[str],
    samples: Iterable[tuple[tuple[str, ...], float]],
) -> Metric:
    """A metric family with one sample per label set, in a stable (sorted) order."""
    metric = family(name, documentation, labels=labels)
    for values, value in sorted(samples):
        metric.add_metric(list(values), value)
    return metric
