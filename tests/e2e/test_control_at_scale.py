"""The control API at scale: paged answers, and a flood of requests never skips a tick.

The real daemon as a subprocess with 3,003 groups and a 1 s interval (100 phase slots a
second). ``GET /campaigngroups`` answers a page (100 groups by default, 1,000 at most)
with the path of the next; following ``next`` lists every group once, in DBID order (as
``ocsd ctl status`` does); and
1,000 control requests sent at once (list pages, /metrics, single groups) do not make
the ticker skip a slot (``ocsd_ticks_skipped_total``) and keep its lateness small.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import aiohttp
from support.ini import extra_groups

GROUPS = 3000
CONCURRENT = 1000
WITHIN = aiohttp.ClientTimeout(total=90)


def _sample(metrics: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", metrics, re.M)
    assert match, f"{name} not in /metrics"
    return float(match[1])


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with session.get(url, timeout=WITHIN) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


def _request_paths(count: int) -> list[str]:
    """A mix: default pages from all over the listing, a few full pages of 1,000,
    /metrics scrapes and single groups."""
    paths = []
    for i in range(count):
        if i % 10 == 0:
            paths.append(f"/campaigngroups?limit=1000&after={1000 + i % 3000}")
        elif i % 10 == 1:
            paths.append("/metrics")
        elif i % 10 == 2:
            paths.append(f"/campaigngroups/{1000 + i}")
        else:
            paths.append(f"/campaigngroups?after={1000 + (i * 7) % 3000}")
    return paths


async def test_pages_list_every_group_and_a_flood_skips_no_tick(
    ini_sections, write_ini, ocsd_process, run_ocsd
):
    sections = ini_sections(None, interval=1, **extra_groups(GROUPS, 1000))
    sections["ocsd"]["control-max-connections"] = 2000
    async with ocsd_process(write_ini(sections)) as proc:
        connector = aiohttp.TCPConnector(limit=CONCURRENT)
        async with aiohttp.ClientSession(connector=connector) as session:
            base = proc.control_url
            # every group once, in order, by following `next`
            listed: list[int] = []
            path: str | None = "/campaigngroups"
            pages = 0
            while path is not None:
                status, page = await _get(session, base + path)
                assert status == 200, page
                assert len(page["campaigngroups"]) <= 100
                assert page["total"] == GROUPS + 3
                listed.extend(group["dbid"] for group in page["campaigngroups"])
                path, pages = page["next"], pages + 1
            assert listed == sorted(listed) and len(set(listed)) == GROUPS + 3
            assert pages == 31
            status, refused = await _get(session, base + "/campaigngroups?limit=1001")
            assert status == 400 and refused["parameter"] == "limit"
            ctl = await run_ocsd("ctl", "--url", base, "status", within=30)
            assert ctl.returncode == 0, ctl.stderr
            assert [g["dbid"] for g in json.loads(ctl.stdout)["campaigngroups"]] == listed

            await asyncio.sleep(1.5)  # the ticker runs on its grid
            _, before = await _get(session, base + "/metrics")
            started = window = time.monotonic()
            answers = await asyncio.gather(
                *(_get(session, base + p) for p in _request_paths(CONCURRENT))
            )
            elapsed = time.monotonic() - started
            await asyncio.sleep(1.5)  # a whole interval after the flood
            _, after = await _get(session, base + "/metrics")
            window = time.monotonic() - window
    assert [status for status, _ in answers] == [200] * CONCURRENT
    skipped = _sample(after, "ocsd_ticks_skipped_total") - _sample(
        before, "ocsd_ticks_skipped_total"
    )
    ticks = _sample(after, "ocsd_tick_lateness_seconds_count") - _sample(
        before, "ocsd_tick_lateness_seconds_count"
    )
    late = ticks - (
        _sample(after, 'ocsd_tick_lateness_seconds_bucket{le="0.25"}')
        - _sample(before, 'ocsd_tick_lateness_seconds_bucket{le="0.25"}')
    )
    print(
        f"{CONCURRENT} requests in {elapsed:.2f} s; {ticks:.0f} slots, {late:.0f} later than 0.25 s"
    )
    assert skipped == 0, f"{skipped:.0f} tick slots skipped during {CONCURRENT} control requests"
    # every slot of the window ran (give or take the one interval at its edges)
    assert ticks >= 100 * (window - 1), f"{ticks:.0f} slots ran in {window:.1f} s"
