"""Prometheus metrics of one daemon, on its own registry.

Counters live where the work happens (the notifier's DeliveryCounters, the ticker,
the reload count) as plain integers; this collector reads them at scrape time, so
the hot path pays nothing for metrics. Histograms are prometheus-client's own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ocsd.core.genesys import GroupStatus, status_name
from ocsd.delivery.notifier import DeliveryCounters, DeliveryFigures

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
LATENESS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)


class Metrics:
    """The registry of one daemon, its histograms, and the collector of its counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.post_latency = Histogram(
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
        sent = CounterMetricFamily(
            "ocsd_notifications_sent", "Notifications the receiver accepted (2xx)", labels=["kind"]
        )
        for kind in ("state", "periodic"):
            sent.add_metric([kind], figures.counters.sent.get(kind, 0))
        yield sent
        failed = CounterMetricFamily(
            "ocsd_notifications_failed",
            "Notifications posted but not accepted, by reason (refused, timeout, HTTP status, "
            "internal error, ...)",
            labels=["kind", "reason"],
        )
        for (kind, reason), count in sorted(figures.counters.failed.items()):
            failed.add_metric([kind, reason], count)
        yield failed
        dropped = CounterMetricFamily(
            "ocsd_notifications_dropped",
            "Notifications never posted: backlog full, superseded, or shutdown",
            labels=["kind", "reason"],
        )
        for (kind, reason), count in sorted(figures.counters.dropped.items()):
            dropped.add_metric([kind, reason], count)
        yield dropped
        groups = GaugeMetricFamily(
            "ocsd_campaign_groups", "Campaign Groups by status", labels=["status"]
        )
        for status in GroupStatus:
            if status != GroupStatus.UNKNOWN:
                groups.add_metric([status_name(status)], figures.statuses.get(status, 0))
        yield groups
        yield GaugeMetricFamily(
            "ocsd_notifications_pending",
            "Notifications queued or in flight",
            value=figures.delivery.pending,
        )
        reloads = CounterMetricFamily(
            "ocsd_config_reloads", "Configuration reloads, by result", labels=["result"]
        )
        for result in ("applied", "refused"):
            reloads.add_metric([result], figures.reloads.get(result, 0))
        yield reloads
        yield CounterMetricFamily(
            "ocsd_ticks_skipped",
            "Periodic phase slots skipped because the loop was a whole interval late",
            value=figures.ticks_skipped,
        )
        retried = CounterMetricFamily(
            "ocsd_notifications_retried",
            "Failed attempts planned again (reliable delivery mode)",
            labels=["kind"],
        )
        for kind in ("state", "periodic"):
            retried.add_metric([kind], figures.counters.retried.get(kind, 0))
        yield retried
        dead = CounterMetricFamily(
            "ocsd_notifications_dead_lettered",
            "State notifications given up and written to the dead-letter file, by reason",
            labels=["reason"],
        )
        for reason, count in sorted(figures.counters.dead_lettered.items()):
            dead.add_metric([reason], count)
        yield dead
        yield GaugeMetricFamily(
            "ocsd_outbox_pending",
            "State notifications in the outbox, not yet delivered (reliable delivery mode)",
            value=figures.delivery.outbox_pending,
        )
        yield GaugeMetricFamily(
            "ocsd_dead_letters",
            "Dead letters in the dead-letter file waiting for a re-send",
            value=figures.delivery.dead_letters,
        )
        yield GaugeMetricFamily(
            "ocsd_delivery_stopped",
            "1 when the receiver answered 410 Gone: nothing is sent until the configuration changes",
            value=1 if figures.delivery.stopped else 0,
        )
        mode = GaugeMetricFamily(
            "ocsd_delivery_mode",
            "The delivery mode in use (1 for the current one)",
            labels=["mode"],
        )
        for name in ("ocs", "reliable"):
            mode.add_metric([name], 1 if figures.delivery_mode == name else 0)
        yield mode
        restarts = CounterMetricFamily(
            "ocsd_task_restarts",
            "Supervised tasks (senders, ticker, stepper, scheduler, file watcher) that died "
            "and were restarted",
            labels=["task"],
        )
        for task, count in sorted(figures.task_restarts.items()):
            restarts.add_metric([task], count)
        yield restarts
