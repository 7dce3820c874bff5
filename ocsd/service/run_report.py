"""The HTML report of a bounded run (``ocsd run --report FILE.html``): one self-contained
page, inline CSS and SVG, no script and nothing fetched when it is opened.

Pure: built from the run's :class:`~ocsd.service.run_summary.RunSummary` and the samples
of :class:`~ocsd.service.run_record.RunRecorder`; the charts are the differences between
consecutive samples (per second), the latency percentiles estimated from the histogram
buckets of each interval as the summary's are.
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from ocsd.core.verdict import format_value, histogram_quantile
from ocsd.service.run_record import Sample
from ocsd.service.run_summary import KINDS, RunSummary

#: Chart size in SVG user units (the page scales it to its width).
WIDTH, HEIGHT, MARGIN = 720, 220, 48
#: Line colours, in order (colour-blind safe: Okabe-Ito).
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000")
#: Groups listed in the table of the longest gaps.
TOP_GAPS = 10

Point = tuple[float, float]


@dataclass(frozen=True)
class Series:
    name: str
    points: list[Point]


def series_of(
    samples: Sequence[Sample], bounds: Sequence[float], slowest: float | None = None
) -> dict[str, list[Series]]:
    """Chart id -> its lines, from consecutive samples; a percentile interpolated within
    its bucket is drawn no higher than the slowest POST of the run (``slowest``, s)."""
    latency = {name: Series(name, []) for name in ("p50", "p90", "p99")}
    throughput, dropped, gaps = Series("sent/s", []), Series("dropped/s", []), Series("gap", [])
    reasons = sorted({reason for sample in samples for reason in sample.failed})
    failed = {reason: Series(reason, []) for reason in reasons}
    for before, after in itertools.pairwise(samples):
        span = after.at - before.at
        if span <= 0:
            continue
        x = after.at
        throughput.points.append((x, (after.sent - before.sent) / span))
        dropped.points.append((x, (after.dropped - before.dropped) / span))
        for reason, line in failed.items():
            count = after.failed.get(reason, 0) - before.failed.get(reason, 0)
            line.points.append((x, count / span))
        gaps.points.append((x, after.longest_gap))
        window = [
            (bound, a - b)
            for bound, a, b in zip(
                bounds, after.latency_buckets, before.latency_buckets, strict=False
            )
        ]
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
            value = histogram_quantile(q, window)
            if value is not None:
                if slowest is not None:
                    value = min(value, slowest)
                latency[name].points.append((x, value * 1000))
    return {
        "latency": list(latency.values()),
        "throughput": [throughput],
        "failures": [*failed.values(), dropped],
        "gaps": [gaps],
    }


def render_report(
    summary: RunSummary,
    samples: Sequence[Sample],
    bounds: Sequence[float],
    longest_gaps: dict[int, tuple[str, float]],
    title: str = "ocsd run report",
) -> str:
    """The whole page."""
    charts = series_of(samples, bounds, summary.latency_s["all"]["max"])
    verdict = "passed" if summary.passed else "FAILED"
    if not summary.thresholds:
        verdict = "no thresholds"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="verdict {verdict.split()[0].lower()}" id="verdict">Verdict: {verdict}</p>',
        _summary_table(summary),
        _chart("latency", "Receiver latency per second (ms)", charts["latency"]),
        _chart("throughput", "Notifications accepted per second", charts["throughput"]),
        _chart("failures", "Failures by reason, and drops, per second", charts["failures"]),
        _chart("gaps", "Longest gap between two deliveries of one group (s)", charts["gaps"]),
        _gap_table(longest_gaps),
        "</body></html>",
    ]
    return "\n".join(parts)


def _summary_table(summary: RunSummary) -> str:
    rows = [("duration", f"{summary.duration_s:,.1f} s")]
    for kind in KINDS:
        rows.append(
            (f"{kind}: offered / sent", f"{summary.offered(kind):,} / {summary.sent[kind]:,}")
        )
        for reason, count in summary.failed.get(kind, {}).items():
            rows.append((f"{kind}: failed, {reason}", f"{count:,}"))
        for reason, count in summary.dropped.get(kind, {}).items():
            rows.append((f"{kind}: dropped, {reason}", f"{count:,}"))
        latency = summary.latency_s[kind]
        figures = " / ".join(
            format_value("post_latency_p50", latency[name]) for name in ("p50", "p90", "p99", "max")
        )
        rows.append((f"{kind}: latency p50 / p90 / p99 / max", figures))
    rows.append(("throughput", format_value("throughput", summary.figures["throughput"])))
    tick = summary.tick_lateness_s
    rows.append(
        (
            "tick lateness p50 / p99",
            " / ".join(format_value("tick_lateness_p99", tick[name]) for name in ("p50", "p99")),
        )
    )
    for fault, count in summary.faults.items():
        rows.append((f"fault injected: {fault}", f"{count:,}"))
    cells = [f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows]
    for result in summary.thresholds:
        state = "pass" if result.passed else "fail"
        value = format_value(result.threshold.metric, result.value)
        cells.append(
            f'<tr class="threshold {state}"><th>threshold {html.escape(result.threshold.text)}'
            f"</th><td>{html.escape(value)} <b>{state}</b></td></tr>"
        )
    return f'<table id="summary">{"".join(cells)}</table>'


def _gap_table(longest_gaps: dict[int, tuple[str, float]]) -> str:
    worst = sorted(longest_gaps.items(), key=lambda item: -item[1][1])[:TOP_GAPS]
    rows = "".join(
        f"<tr><td>{dbid}</td><td>{html.escape(name)}</td><td>{gap:,.2f} s</td></tr>"
        for dbid, (name, gap) in worst
    )
    return (
        f"<h2>The {TOP_GAPS} groups with the longest gap</h2>"
        '<table id="gaps"><tr><th>DBID</th><th>group</th><th>longest gap</th></tr>'
        f"{rows}</table>"
    )


def _chart(chart_id: str, title: str, lines: list[Series]) -> str:
    """A line chart: x in seconds of the run, y from 0 to the highest point."""
    points = [point for line in lines for point in line.points]
    x_max = max((x for x, _ in points), default=1.0) or 1.0
    y_max = max((y for _, y in points), default=1.0) or 1.0
    plot_w, plot_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN

    def place(point: Point) -> str:
        x, y = point
        return f"{MARGIN + plot_w * x / x_max:.1f},{MARGIN + plot_h * (1 - y / y_max):.1f}"

    body = [
        f'<rect x="{MARGIN}" y="{MARGIN}" width="{plot_w}" height="{plot_h}" class="plot"/>',
        f'<text x="{MARGIN - 4}" y="{MARGIN + 4}" class="axis end">{y_max:,.3g}</text>',
        f'<text x="{MARGIN - 4}" y="{HEIGHT - MARGIN}" class="axis end">0</text>',
        f'<text x="{WIDTH - MARGIN}" y="{HEIGHT - MARGIN + 16}" class="axis end">{x_max:,.0f} s</text>',
    ]
    legend = []
    for index, line in enumerate(lines):
        colour = COLOURS[index % len(COLOURS)]
        coordinates = " ".join(place(point) for point in line.points)
        body.append(
            f'<polyline points="{coordinates}" stroke="{colour}" data-series="{html.escape(line.name)}" '
            f'data-points="{len(line.points)}" class="line"/>'
        )
        legend.append(f'<span style="color:{colour}">■</span> {html.escape(line.name)}')
    total = sum(len(line.points) for line in lines)
    return (
        f'<section class="chart"><h2>{html.escape(title)}</h2>'
        f'<svg id="chart-{chart_id}" data-points="{total}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{html.escape(title)}">{"".join(body)}</svg>'
        f'<p class="legend">{" &nbsp; ".join(legend)}</p></section>'
    )


_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}th,td{text-align:left;padding:.2rem .8rem;
border-bottom:1px solid #ddd}.verdict{font-size:1.3rem;font-weight:bold}.verdict.passed{color:#09773a}
.verdict.failed{color:#b00020}.threshold.fail td b{color:#b00020}.threshold.pass td b{color:#09773a}
svg{width:100%;height:auto}.plot{fill:#fafafa;stroke:#bbb}.line{fill:none;stroke-width:1.6}
.axis{font-size:11px;fill:#555}.end{text-anchor:end}.legend{font-size:.9rem}
"""
