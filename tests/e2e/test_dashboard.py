"""The sink's live dashboard in a real browser: ``ocsd sink`` and ``ocsd run`` as
subprocesses, headless Chromium (Debian's ``chromium``) reading the rendered DOM."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

NAMES = {
    "101": "Renewals@Retention Team",
    "102": "Collections@Collections Desk",
    "103": "Survey@IVR",
}
CHARTS = ("busy_factor", "hit_ratio", "overdial_rate", "time_to_complete")


class Dom(HTMLParser):
    """The elements (tag, attributes) and the text of a dumped DOM."""

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

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [
            a
            for t, a in self.elements
            if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def rows(self) -> dict[str, int]:
        """Group rows of the table: DBID -> status code."""
        return {
            a["data-dbid"]: int(a["data-status"])
            for t, a in self.elements
            if t == "tr" and "group-row" in a.get("class", "")
        }

    def points(self) -> dict[str, int]:
        """Chart -> data points drawn (all groups)."""
        return {
            a["id"].removeprefix("chart-"): int(a.get("data-points", "0"))
            for t, a in self.elements
            if t == "svg" and a.get("id", "").startswith("chart-")
        }

    def lines(self, chart: str) -> dict[str, int]:
        """Lines of one chart: DBID -> points; the path elements after the chart's svg."""
        result: dict[str, int] = {}
        inside = False
        for tag, attrs in self.elements:
            if tag == "svg":
                inside = attrs.get("id") == f"chart-{chart}"
            elif inside and tag == "path" and "data-dbid" in attrs:
                result[attrs["data-dbid"]] = int(attrs["data-points"])
        return result


def running_body(url: str) -> dict[str, Any]:
    """The latest accepted body of a running group, from the sink's /messages."""
    with urllib.request.urlopen(f"{url}/messages", timeout=5) as response:
        latest = json.load(response)["latest"]
    bodies = [e["body"] for e in latest if e["status"] == 200]
    body: dict[str, Any] = next(b for b in reversed(bodies) if b["GSW_CAMPAIGN_GROUP_STATUS"] == 5)
    return body


def post(url: str, body: dict[str, Any]) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def api_state(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/api/state", timeout=5) as response:
        data: dict[str, Any] = json.load(response)
        return data


async def wait_for_state(url: str, condition: Any, within: float, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + within
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = await asyncio.to_thread(api_state, url)
        if condition(state):
            return state
        await asyncio.sleep(0.3)
    raise AssertionError(f"{what}: not within {within} s; /api/state: {state}")


async def test_the_dashboard_shows_the_groups_of_a_running_daemon_and_its_charts_grow(
    browser, ocsd_sink, ocsd_process, write_ini, ini_sections, tmp_path
):
    async with ocsd_sink("--record", str(tmp_path / "record.jsonl")) as (sink, url):
        config = write_ini(
            ini_sections(url + "/ocs/campaign-group-state", interval=1, ocsd={"time-scale": 60})
        )
        async with ocsd_process(config, args=["--start-all"]):
            await wait_for_state(
                url,
                lambda s: sum(len(v) >= 2 for v in s["series"].values()) == 3,
                within=15,
                what="two points of every group",
            )
            first = Dom(await browser.dump_dom(url + "/"))
            # another producer posts a body that breaks the schema: it is shown as refused
            state_before = await asyncio.to_thread(api_state, url)
            bad = await asyncio.to_thread(running_body, url)
            bad["GSW_CAMPAIGN_GROUP_STATUS"] = 4  # with a dial mode: not running but dialing
            assert await asyncio.to_thread(post, url + "/ocs/campaign-group-state", bad) == 422
            await asyncio.sleep(3)  # three more periodic notifications per group
            second = Dom(await browser.dump_dom(url + "/"))
            state = await asyncio.to_thread(api_state, url)
        code = await sink.stop()

    # the table: one row per group, Running, with its name
    assert first.rows() == {"101": 5, "102": 5, "103": 5}
    text = " ".join(second.text)
    for name in NAMES.values():
        assert name in text
    assert "Predictive" in text and "Progressive" in text and "Predictive GVP" in text
    assert second.find("span", id="count-groups") and "Running" in text

    # the charts: one line per group, more points in the second snapshot
    for chart in CHARTS:
        assert set(second.lines(chart)) == set(NAMES), chart
    before, after = first.points(), second.points()
    assert set(after) == set(CHARTS)
    assert after["hit_ratio"] > before["hit_ratio"] > 0, (before, after)
    assert after["time_to_complete"] > before["time_to_complete"], (before, after)
    for dbid in NAMES:
        assert second.lines("hit_ratio")[dbid] > first.lines("hit_ratio")[dbid], dbid

    # the feed: the latest messages with their verdicts; the one refusal kept in view
    feed = [a for t, a in second.elements if t == "li" and "data-seq" in a]
    assert len(feed) >= 10
    assert "✓ valid" in text
    assert "✗ refused 422" in text
    assert "schema.dial-mode-only-while-running" in text
    assert not second.find("div", id="refusals-box", hidden="")
    assert first.find("div", id="refusals-box", hidden=""), "no refusal box before a refusal"
    assert state["refused"] == 1, state["refusals"]
    assert state_before["refused"] == 0, "everything the daemon sent is valid"
    assert code == 0
