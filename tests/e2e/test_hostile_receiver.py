"""``ocsd run`` against a receiver whose answers never end: the daemon's memory stays flat.

The receiver (a real aiohttp server on 127.0.0.1) answers every POST with 200 and a
chunked body it writes for ever, as fast as the daemon reads. The daemon's resident
memory (``VmRSS`` of its own pid in /proc) is sampled while it sends periodic
notifications of 23 groups every second through 2 pooled connections.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest
from support.answers import AnsweringReceiver
from support.ini import extra_groups, make_sections

pytestmark = pytest.mark.e2e

MB = 1024 * 1024
#: Seconds the daemon's memory is watched.
WATCH_S = 5.0
#: Growth allowed over the baseline; before the fix it grew by ~300 MB a second.
RSS_GROWTH_BOUND = 40 * MB


def rss_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    assert match, status
    return int(match[1]) * 1024


async def test_memory_stays_flat_under_an_endless_answer(write_ini, ocsd_process, control_for):
    receiver = AnsweringReceiver(200, None)
    await receiver.start()
    try:
        sections = make_sections(
            receiver.url, interval=1, timeout=3, pool_size=2, **extra_groups(20, 1001)
        )
        async with ocsd_process(write_ini(sections), args=["--start-all"]) as ocsd:
            deadline = time.monotonic() + 15
            while receiver.posts < 4:  # start-up done, the pool at work
                assert time.monotonic() < deadline, f"{receiver.posts} POSTs in 15 s"
                await asyncio.sleep(0.05)
            baseline = peak = rss_bytes(ocsd.pid)
            posts_before, watch_end = receiver.posts, time.monotonic() + WATCH_S
            while time.monotonic() < watch_end and peak - baseline < 5 * RSS_GROWTH_BOUND:
                peak = max(peak, rss_bytes(ocsd.pid))  # stop early when it balloons
                await asyncio.sleep(0.05)
            posts = receiver.posts - posts_before
            status, metrics = await control_for(ocsd.control_url).request("GET", "/metrics")
        print(
            f"\nendless answers: {posts} POSTs in {WATCH_S:.0f} s, daemon RSS "
            f"{baseline / MB:.1f} MB -> peak {peak / MB:.1f} MB "
            f"(+{(peak - baseline) / MB:.1f} MB); the receiver wrote "
            f"{receiver.total_written / MB:.0f} MB in all"
        )
        assert peak - baseline < RSS_GROWTH_BOUND, f"RSS grew by {(peak - baseline) / MB:.0f} MB"
        assert posts >= 10, f"only {posts} POSTs while watching"
        assert status == 200, metrics
        cut = re.search(
            r'^ocsd_receiver_answers_cut_total\{reason="too long"\} (\S+)$', metrics, re.M
        )
        assert cut and float(cut[1]) >= posts, metrics
        sent = re.findall(r'^ocsd_notifications_sent_total\{kind="\w+"\} (\S+)$', metrics, re.M)
        assert sum(map(float, sent)) >= posts, "a 200 with an endless body is an acceptance"
        warnings = ocsd.json_lines(event=next(iter(_cut_events(ocsd.stdout_lines)), ""))
        assert len(warnings) == 1, "the cut is logged once, not per POST"
        assert "Traceback" not in ocsd.stdout_text + ocsd.stderr_text
    finally:
        await receiver.stop()


def _cut_events(lines: list[object]) -> list[str]:
    return [
        line["event"]
        for line in lines
        if isinstance(line, dict) and str(line.get("event", "")).startswith("receiver answer cut")
    ]
