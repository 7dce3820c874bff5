"""A bounded run: ``ocsd run --duration 10m --threshold 'post_latency_p99 < 200ms'``.

The run stops by itself once ``duration`` has passed since start-up (or at SIGINT/SIGTERM),
prints the summary table on stderr, writes it as JSON when asked, and its exit code says
whether every threshold held (:data:`EXIT_THRESHOLD_FAILED` when one did not).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ocsd.config.settings import Settings
from ocsd.core.verdict import Threshold, parse_thresholds
from ocsd.delivery.notifier import DeliveryCounters
from ocsd.logs import get_logger
from ocsd.service.metrics import Metrics
from ocsd.service.run_record import RunRecorder
from ocsd.service.run_report import render_report
from ocsd.service.run_summary import RunSummary, render_table, summarize

log = get_logger("ocsd.run")

#: Exit code of a run that ended normally but with at least one threshold not met.
EXIT_THRESHOLD_FAILED = 4


@dataclass(frozen=True)
class RunBounds:
    """How a run ends and what it reports: ``--duration``, ``--threshold``,
    ``--summary-json`` on the command line, else ``[ocsd] duration`` / ``thresholds``."""

    duration: float | None = None
    thresholds: tuple[Threshold, ...] = ()
    summary_json: Path | None = None
    report: Path | None = None  # the HTML report

    @classmethod
    def of(
        cls,
        settings: Settings,
        duration: float | None = None,
        thresholds: tuple[Threshold, ...] = (),
        summary_json: Path | None = None,
        report: Path | None = None,
    ) -> RunBounds:
        """The command line's values over the configuration's."""
        return cls(
            duration if duration is not None else settings.duration,
            thresholds or parse_thresholds(settings.thresholds),
            summary_json,
            report,
        )

    @property
    def reports(self) -> bool:
        """Whether the run ends with a summary (a daemon run until stopped does not)."""
        return (
            self.duration is not None
            or bool(self.thresholds)
            or self.summary_json is not None
            or self.report is not None
        )


def report(
    bounds: RunBounds,
    metrics: Metrics,
    counters: DeliveryCounters,
    duration_s: float,
    recorder: RunRecorder | None = None,
    stream: TextIO = sys.stderr,
) -> RunSummary:
    """Print the summary table, write the JSON file and the HTML report, log the
    verdict; the summary."""
    summary = summarize(
        counters, metrics.post_latency, metrics.tick_lateness, duration_s, bounds.thresholds
    )
    print(render_table(summary), file=stream, flush=True)
    if bounds.summary_json is not None:
        _write(bounds.summary_json, json.dumps(summary.as_json(), indent=2), "run summary")
    if bounds.report is not None and recorder is not None:
        gaps = recorder.gaps
        longest = {
            dbid: (gaps.names.get(dbid, str(dbid)), gap) for dbid, gap in gaps.longest.items()
        }
        page = render_report(summary, recorder.samples, recorder.bounds, longest)
        _write(bounds.report, page, "run report")
    failed = [result.threshold.text for result in summary.thresholds if not result.passed]
    log.info(
        "run summary",
        duration_s=round(duration_s, 3),
        sent=summary.figures["notifications_sent"],
        failed=summary.figures["notifications_failed"],
        dropped=summary.figures["notifications_dropped"],
        thresholds=len(summary.thresholds),
        thresholds_failed=failed,
        passed=summary.passed,
    )
    return summary


def _write(path: Path, text: str, what: str) -> None:
    """Write the file whole or not at all; a failure is one logged line naming it."""
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(text + "\n", encoding="utf-8")
        os.replace(partial, path)
    except OSError as exc:
        log.error(f"{what} not written", file=str(path), error=exc.strerror or str(exc))
        return
    log.info(f"{what} written", file=str(path))
