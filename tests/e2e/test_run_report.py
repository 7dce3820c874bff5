"""End to end: ``ocsd run --report FILE.html`` writes one self-contained page whose charts
a real browser (headless Chromium) renders with the run's data."""

from __future__ import annotations

import asyncio
import re
from html.parser import HTMLParser

import pytest

pytestmark = pytest.mark.e2e

CHARTS = ("latency", "throughput", "failures", "gaps")


class Page(HTMLParser):
    """Elements (tag, attributes) and text of a dumped DOM."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(data.strip())

    def charts(self) -> dict[str, int]:
        return {
            a["id"].removeprefix("chart-"): int(a["data-points"])
            for t, a in self.elements
            if t == "svg" and a.get("id", "").startswith("chart-")
        }

    def lines(self) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == "polyline"]


async def test_the_report_renders_its_charts_with_the_runs_data(
    receiver, ini_sections, write_ini, ocsd_process, browser, tmp_path
):
    report = tmp_path / "report.html"
    config = write_ini(ini_sections(receiver.url, interval=1))
    args = ["--start-all", "--duration", "5s", "--report", str(report)]
    async with ocsd_process(config, args=args) as proc:
        await receiver.wait_for(6)
        receiver.set_behaviour("status500")  # a stretch of failures to chart
        await asyncio.sleep(1.5)
        receiver.set_behaviour("ok")
        await asyncio.wait_for(proc.proc.wait(), 30)
        code = await proc.stop()
    assert code == 0, proc.stderr_text
    assert proc.json_lines(event="run report written", file=str(report))

    source = report.read_text(encoding="utf-8")
    assert not re.search(r"\b(src|href)=|url\(|@import|<script", source), "fetches something"
    page = Page(await browser.dump_dom(report.as_uri()))
    charts = page.charts()
    assert set(charts) == set(CHARTS)
    assert all(points > 0 for points in charts.values()), charts
    series = {line["data-series"]: int(line["data-points"]) for line in page.lines()}
    assert series["sent/s"] >= 4 and series["p99"] >= 4
    assert series["HTTP 500"] >= 1, series  # the failures by their reason
    accepted = len([r for r in receiver.received if r.behaviour == "ok"])
    text = " ".join(page.text)
    assert "Verdict: no thresholds" in text
    sent = [int(n.replace(",", "")) for n in re.findall(r"offered / sent [\d,]+ / ([\d,]+)", text)]
    assert sum(sent) == accepted
    gap_rows = [a for t, a in page.elements if t == "tr"]
    assert len(gap_rows) > 3
