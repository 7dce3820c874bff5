"""A bounded run's verdict: thresholds in the spirit of k6, checked against the run's figures.

A threshold is ``METRIC OP VALUE[UNIT]``, e.g. ``post_latency_p99 < 200ms``,
``post_failed_rate < 0.1%``, ``delivered_rate >= 0.99``. The figures are those of
:class:`RunFigures`, computed from the same counters and histograms as ``/metrics``.
Pure: parsing, percentiles from histogram buckets, and the pass/fail of each threshold.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

#: What each metric a threshold may name measures, and so which units it takes.
Unit = Literal["seconds", "fraction", "count", "per_second"]

#: Every metric a threshold may name, with what it measures (also the summary's rows).
METRICS: dict[str, tuple[Unit, str]] = {
    "post_latency_p50": ("seconds", "receiver latency, median of every POST"),
    "post_latency_p90": ("seconds", "receiver latency, 90th percentile of every POST"),
    "post_latency_p99": ("seconds", "receiver latency, 99th percentile of every POST"),
    "post_latency_max": ("seconds", "receiver latency, slowest POST"),
    "post_failed_rate": ("fraction", "failed POSTs / POSTs"),
    "delivered_rate": ("fraction", "notifications the receiver accepted / offered"),
    "dropped_rate": ("fraction", "notifications dropped unsent / offered"),
    "tick_lateness_p99": ("seconds", "how late the periodic ticks ran, 99th percentile"),
    "throughput": ("per_second", "notifications accepted per second of the run"),
    "notifications_sent": ("count", "notifications the receiver accepted"),
    "notifications_failed": ("count", "POSTs that failed (no answer, or not 2xx)"),
    "notifications_dropped": ("count", "notifications dropped unsent"),
}

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "<": operator.lt,
    ">": operator.gt,
}
_SCALE = {"ms": 0.001, "s": 1.0, "%": 0.01, "": 1.0}
_ALLOWED_UNITS: dict[Unit, tuple[str, ...]] = {
    "seconds": ("ms", "s", ""),
    "fraction": ("%", ""),
    "count": ("",),
    "per_second": ("",),
}
_THRESHOLD = re.compile(
    r"\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op><=|>=|==|<|>)\s*"
    r"(?P<number>[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+)\s*(?P<unit>ms|s|%)?\s*"
)


class ThresholdError(ValueError):
    """A threshold that cannot be read; the message names it and the accepted form."""


@dataclass(frozen=True, slots=True)
class Threshold:
    """``metric op limit``; ``limit`` in the metric's base unit (seconds, a fraction)."""

    text: str
    metric: str
    op: str
    limit: float

    def holds(self, value: float | None) -> bool:
        """Whether ``value`` meets the threshold; a metric with no data never does."""
        return value is not None and _OPERATORS[self.op](value, self.limit)


@dataclass(frozen=True, slots=True)
class ThresholdResult:
    threshold: Threshold
    value: float | None
    passed: bool


def parse_threshold(text: str) -> Threshold:
    """``post_latency_p99 < 200ms`` -> Threshold; ThresholdError naming what is wrong."""
    match = _THRESHOLD.fullmatch(text)
    if match is None:
        raise ThresholdError(
            f"threshold {text.strip()!r}: expected METRIC OP VALUE, "
            "e.g. 'post_latency_p99 < 200ms' or 'delivered_rate >= 0.99' "
            "(OP one of < <= > >= ==; units ms, s, %)"
        )
    metric, unit = match["metric"], match["unit"] or ""
    if metric not in METRICS:
        close = difflib.get_close_matches(metric, METRICS, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ThresholdError(
            f"threshold {text.strip()!r}: unknown metric {metric!r}{hint} "
            f"(known: {', '.join(METRICS)})"
        )
    kind = METRICS[metric][0]
    if unit not in _ALLOWED_UNITS[kind]:
        allowed = " or ".join(repr(u) if u else "no unit" for u in _ALLOWED_UNITS[kind])
        raise ThresholdError(
            f"threshold {text.strip()!r}: {metric} is a {kind.replace('_', ' ')} "
            f"measure; unit {unit!r} does not fit (use {allowed})"
        )
    limit = float(match["number"]) * _SCALE[unit]
    if not math.isfinite(limit):
        raise ThresholdError(
            f"threshold {text.strip()!r}: {match['number'][:40]!r} is too large to compare "
            "with (a finite number, e.g. 'post_latency_p99 < 200ms')"
        )
    return Threshold(" ".join(text.split()), metric, match["op"], limit)


def parse_thresholds(texts: Sequence[str]) -> tuple[Threshold, ...]:
    """Every threshold of ``texts``, each entry possibly several separated by commas."""
    return tuple(
        parse_threshold(part) for text in texts for part in text.split(",") if part.strip()
    )


def check(
    thresholds: Sequence[Threshold], figures: Mapping[str, float | None]
) -> tuple[ThresholdResult, ...]:
    """Each threshold with the run's value of its metric and whether it holds."""
    results = []
    for threshold in thresholds:
        value = figures.get(threshold.metric)
        results.append(ThresholdResult(threshold, value, threshold.holds(value)))
    return tuple(results)


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of a cumulative histogram, as Prometheus's ``histogram_quantile``
    estimates it: linear within the bucket it falls in. ``buckets``: (upper bound,
    cumulative count) in increasing bounds, the last one ``+inf``. None with no
    observations; the highest finite bound when it falls in the ``+inf`` bucket."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound


def ratio(part: float, whole: float) -> float | None:
    """``part / whole``; None when there is nothing to divide (no data)."""
    return part / whole if whole > 0 else None


def format_value(metric: str, value: float | None) -> str:
    """A figure as a person reads it: ms for latencies, % for rates."""
    if value is None:
        return "no data"
    kind = METRICS[metric][0] if metric in METRICS else "count"
    if kind == "seconds":
        return f"{value * 1000:,.1f} ms"
    if kind == "fraction":
        return f"{value * 100:.3g} %"
    if kind == "per_second":
        return f"{value:,.1f}/s"
    return f"{value:,.0f}"


_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``10m``, ``1h30m``, ``1.5h``, ``500ms`` -> seconds; ValueError
    naming the accepted form."""
    stripped = text.strip().lower()
    try:
        return float(stripped)
    except ValueError:
        pass
    total, end = 0.0, 0
    for match in _DURATION_PART.finditer(stripped):
        if stripped[end : match.start()].strip():
            break
        total += float(match[1]) * _DURATION_UNITS[match[2]]
        end = match.end()
    else:
        if end and not stripped[end:].strip():
            return total
    raise ValueError(
        f"{text.strip()[:40]!r} is not a duration: expected seconds or a number with a "
        "unit, e.g. 90, 90s, 10m, 1h30m, 500ms"
    )
