"""The verdict of a bounded run: thresholds read as k6 users write them, percentiles
estimated from the same histogram buckets as ``/metrics``, and the summary's figures."""

from __future__ import annotations

import bisect
import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from ocsd.core.verdict import (
    ThresholdError,
    check,
    histogram_quantile,
    parse_duration,
    parse_threshold,
    parse_thresholds,
)
from ocsd.delivery.notifier import DeliveryCounters
from ocsd.service.metrics import LATENCY_BUCKETS
from ocsd.service.run_summary import render_table, summarize


@pytest.mark.parametrize(
    ("text", "metric", "op", "limit"),
    [
        ("post_latency_p99 < 200ms", "post_latency_p99", "<", 0.2),
        ("post_failed_rate<0.1%", "post_failed_rate", "<", 0.001),
        ("delivered_rate >= 0.99", "delivered_rate", ">=", 0.99),
        ("tick_lateness_p99 <= 1.5s", "tick_lateness_p99", "<=", 1.5),
        ("  throughput > 1e3 ", "throughput", ">", 1000.0),
        ("notifications_failed == 0", "notifications_failed", "==", 0.0),
    ],
)
def test_thresholds_read_as_written(text, metric, op, limit):
    threshold = parse_threshold(text)
    assert (threshold.metric, threshold.op) == (metric, op)
    assert threshold.limit == pytest.approx(limit)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("post_latency_p99 200ms", "expected METRIC OP VALUE"),
        ("post_latency_p99 < fast", "expected METRIC OP VALUE"),
        ("latency_p99 < 1s", "did you mean post_latency_p99?"),
        ("delivered_rate > 5ms", "unit 'ms' does not fit (use '%' or no unit)"),
        ("throughput > 5%", "unit '%' does not fit"),
        # read as infinity, it passed every run (or failed every one) without a word
        ("post_latency_p99 < 1e999ms", "'1e999' is too large to compare with"),
    ],
)
def test_a_bad_threshold_names_the_problem(text, says):
    with pytest.raises(ThresholdError) as caught:
        parse_threshold(text)
    assert says in str(caught.value)


def test_a_metric_without_data_fails_its_threshold():
    (result,) = check(parse_thresholds(["post_failed_rate < 1%"]), {"post_failed_rate": None})
    assert result.passed is False and result.value is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("10m", 600), ("1h30m", 5400), ("1.5h", 5400), ("500ms", 0.5)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "10x", "m", "10m five"])
def test_a_bad_duration_says_the_accepted_form(text):
    with pytest.raises(ValueError, match=re.escape("e.g. 90, 90s, 10m, 1h30m, 500ms")):
        parse_duration(text)


def _histogram(samples):
    histogram = Histogram("h", "h", buckets=LATENCY_BUCKETS, registry=CollectorRegistry())
    for sample in samples:
        histogram.observe(sample)
    return histogram


@given(
    st.lists(st.floats(0.0001, 40.0), min_size=1, max_size=200),
    st.sampled_from([0.5, 0.9, 0.99]),
)
def test_an_estimated_percentile_lies_in_the_bucket_of_the_true_one(samples, q):
    histogram = _histogram(samples)
    (metric,) = histogram.collect()
    buckets = [
        (float(s.labels["le"]), s.value) for s in metric.samples if s.name.endswith("_bucket")
    ]
    estimate = histogram_quantile(q, buckets)
    ordered = sorted(samples)
    true = ordered[max(0, math.ceil(q * len(ordered)) - 1)]
    bounds = (0.0, *LATENCY_BUCKETS)
    index = bisect.bisect_left(LATENCY_BUCKETS, true)
    low = bounds[index]
    high = LATENCY_BUCKETS[index] if index < len(LATENCY_BUCKETS) else LATENCY_BUCKETS[-1]
    assert estimate is not None and low <= estimate <= high


def test_the_summary_counts_what_the_counters_hold():
    counters = DeliveryCounters()
    counters.sent.update(state=8, periodic=90)
    counters.failed[("periodic", "timeout")] = 2
    counters.dropped[("periodic", "superseded by a newer periodic notification")] = 100
    counters.slowest.update(state=0.0041, periodic=0.300)
    latency = Histogram("l", "l", ["kind"], buckets=LATENCY_BUCKETS, registry=CollectorRegistry())
    for _ in range(8):
        latency.labels("state").observe(0.004)
    for _ in range(92):
        latency.labels("periodic").observe(0.012)
    lateness = _histogram([0.001] * 10)
    summary = summarize(counters, latency, lateness, 10.0, parse_thresholds(["dropped_rate < 1%"]))

    assert summary.offered("periodic") == 192 and summary.offered("state") == 8
    assert summary.figures["post_failed_rate"] == pytest.approx(2 / 100)
    assert summary.figures["delivered_rate"] == pytest.approx(98 / 200)
    assert summary.figures["throughput"] == pytest.approx(9.8)
    assert summary.latency_s["all"]["max"] == 0.300
    assert 0.003 <= summary.latency_s["state"]["p50"] <= 0.0041
    # interpolated in its bucket (3-5 ms), a percentile is never above the slowest POST
    assert summary.latency_s["state"]["p99"] == 0.0041
    assert 0.010 <= summary.latency_s["periodic"]["p99"] <= 0.015
    assert summary.passed is False
    table = render_table(summary)
    assert "periodic: dropped, superseded by a newer periodic notification  100" in table
    assert "threshold dropped_rate < 1%" in table and "FAIL" in table
