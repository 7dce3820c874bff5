"""The summary of a run: what was offered, sent, failed and dropped, how fast the receiver
answered, how late the ticks ran, and each threshold's verdict.

Read from the daemon's own :class:`~ocsd.service.metrics.Metrics` histograms and delivery
counters, the ones ``/metrics`` exposes, so the summary and a scrape never disagree.
Printed as a table on stderr when ``ocsd run`` stops, written as JSON with
``--summary-json``; the exit code says whether every threshold held.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import Histogram

from ocsd.core.verdict import (
    METRICS,
    Threshold,
    ThresholdResult,
    check,
    format_value,
    histogram_quantile,
    ratio,
)
from ocsd.delivery.latency import LatencyHistogram
from ocsd.delivery.notifier import DeliveryCounters

KINDS = ("state", "periodic")
#: The latency figures of each kind, and of all POSTs ("all").
QUANTILES = {"p50": 0.50, "p90": 0.90, "p99": 0.99}


@dataclass(frozen=True)
class RunSummary:
    """One run's figures, by kind and reason, and the verdict of its thresholds."""

    duration_s: float
    sent: dict[str, int]
    failed: dict[str, dict[str, int]]  # kind -> reason -> count
    dropped: dict[str, dict[str, int]]
    latency_s: dict[str, dict[str, float | None]]  # kind or "all" -> p50/p90/p99/max
    tick_lateness_s: dict[str, float | None]  # p50/p99
    figures: dict[str, float | None]  # by threshold metric name
    thresholds: tuple[ThresholdResult, ...]
    faults: dict[str, int]  # injected on purpose, by kind

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.thresholds)

    def as_json(self) -> dict[str, Any]:
        """The summary as ``--summary-json`` writes it (seconds and fractions, not ms or %)."""
        return {
            "duration_s": round(self.duration_s, 3),
            "passed": self.passed,
            "offered": {kind: self.offered(kind) for kind in KINDS},
            "sent": self.sent,
            "failed": self.failed,
            "dropped": self.dropped,
            "latency_s": self.latency_s,
            "tick_lateness_s": self.tick_lateness_s,
            "faults_injected": self.faults,
            "figures": self.figures,
            "thresholds": [
                {
                    "threshold": result.threshold.text,
                    "metric": result.threshold.metric,
                    "value": result.value,
                    "passed": result.passed,
                }
                for result in self.thresholds
            ],
        }

    def offered(self, kind: str) -> int:
        """Notifications produced of ``kind``: sent, failed or dropped."""
        return (
            self.sent.get(kind, 0)
            + sum(self.failed.get(kind, {}).values())
            + sum(self.dropped.get(kind, {}).values())
        )


def summarize(
    counters: DeliveryCounters,
    post_latency: Histogram | LatencyHistogram,
    tick_lateness: Histogram,
    duration_s: float,
    thresholds: Sequence[Threshold] = (),
) -> RunSummary:
    """The summary of what ``counters`` and the histograms hold after ``duration_s``."""
    sent = {kind: counters.sent.get(kind, 0) for kind in KINDS}
    failed = _by_kind(counters.failed)
    dropped = _by_kind(counters.dropped)
    buckets = _buckets(post_latency)
    latency: dict[str, dict[str, float | None]] = {}
    for kind in (*KINDS, "all"):
        cumulative = buckets.get(kind, [])
        slowest = counters.slowest
        top = max(slowest.values(), default=None) if kind == "all" else slowest.get(kind)
        figures = {
            name: _at_most(histogram_quantile(q, cumulative), top) for name, q in QUANTILES.items()
        }
        figures["max"] = top
        latency[kind] = figures
    lateness = _buckets(tick_lateness).get("all", [])
    tick = {name: histogram_quantile(q, lateness) for name, q in (("p50", 0.5), ("p99", 0.99))}
    total_sent = sum(sent.values())
    total_failed = sum(sum(reasons.values()) for reasons in failed.values())
    total_dropped = sum(sum(reasons.values()) for reasons in dropped.values())
    offered = total_sent + total_failed + total_dropped
    values: dict[str, float | None] = {
        **{f"post_latency_{name}": value for name, value in latency["all"].items()},
        "post_failed_rate": ratio(total_failed, total_sent + total_failed),
        "delivered_rate": ratio(total_sent, offered),
        "dropped_rate": ratio(total_dropped, offered),
        "tick_lateness_p99": tick["p99"],
        "throughput": ratio(total_sent, duration_s),
        "notifications_sent": total_sent,
        "notifications_failed": total_failed,
        "notifications_dropped": total_dropped,
    }
    assert set(values) == set(METRICS), "every metric a threshold may name has a value"
    faults = {kind.replace("_", "-"): count for kind, count in sorted(counters.faults.items())}
    return RunSummary(
        duration_s, sent, failed, dropped, latency, tick, values, check(thresholds, values), faults
    )


def _at_most(estimate: float | None, top: float | None) -> float | None:
    """A percentile interpolated within its bucket never above the slowest POST seen."""
    if estimate is None or top is None:
        return estimate
    return min(estimate, top)


def _by_kind(counter: Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
    result: dict[str, dict[str, int]] = {kind: {} for kind in KINDS}
    for (kind, reason), count in sorted(counter.items()):
        if count:
            result.setdefault(kind, {})[reason] = count
    return result


def _buckets(histogram: Histogram | LatencyHistogram) -> dict[str, list[tuple[float, float]]]:
    """Cumulative (bound, count) per ``kind`` label and summed over them ("all")."""
    per_label: dict[str, dict[float, float]] = {}
    for metric in histogram.collect():
        for sample in metric.samples:
            if not sample.name.endswith("_bucket"):
                continue
            bound = float(sample.labels["le"])
            for label in {sample.labels.get("kind", "all"), "all"}:
                counts = per_label.setdefault(label, {})
                counts[bound] = counts.get(bound, 0.0) + sample.value
    return {label: sorted(counts.items()) for label, counts in per_label.items()}


def render_table(summary: RunSummary) -> str:
    """The summary as the table ``ocsd run`` prints on stderr when it stops."""
    rows: list[tuple[str, str]] = [("duration", f"{summary.duration_s:,.1f} s")]
    for kind in KINDS:
        rows.append(
            (f"{kind}: offered / sent", f"{summary.offered(kind):,} / {summary.sent[kind]:,}")
        )
        for reason, count in summary.failed.get(kind, {}).items():
            rows.append((f"{kind}: failed, {reason}", f"{count:,}"))
        for reason, count in summary.dropped.get(kind, {}).items():
            rows.append((f"{kind}: dropped, {reason}", f"{count:,}"))
        latency = summary.latency_s[kind]
        rows.append((f"{kind}: latency p50 / p90 / p99 / max", _latencies(latency)))
    rows.append(("throughput", format_value("throughput", summary.figures["throughput"])))
    tick = summary.tick_lateness_s
    rows.append(("tick lateness p50 / p99", f"{_ms(tick['p50'])} / {_ms(tick['p99'])}"))
    for fault, count in summary.faults.items():
        rows.append((f"fault injected: {fault}", f"{count:,}"))
    for result in summary.thresholds:
        verdict = "pass" if result.passed else "FAIL"
        value = format_value(result.threshold.metric, result.value)
        rows.append((f"threshold {result.threshold.text}", f"{value}  {verdict}"))
    width = max(len(label) for label, _ in rows)
    lines = ["ocsd run summary", *(f"  {label:<{width}}  {value}" for label, value in rows)]
    if summary.thresholds:
        failed = sum(not result.passed for result in summary.thresholds)
        lines.append(
            f"  {len(summary.thresholds) - failed} of {len(summary.thresholds)} thresholds held"
            + ("" if not failed else f"; {failed} failed")
        )
    return "\n".join(lines)


def _latencies(figures: dict[str, float | None]) -> str:
    return " / ".join(_ms(figures[name]) for name in ("p50", "p90", "p99", "max"))


def _ms(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value * 1000:,.1f} ms"
