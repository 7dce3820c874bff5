"""End to end: ``ocsd replay`` sends a feed recorded by ``ocsd sink --record`` to another
receiver: the same bodies, each group's in order, spaced as recorded divided by --speed."""

from __future__ import annotations

import asyncio
import json
import statistics

import orjson
import pytest
from support.processes import ocsd_command, run_command

pytestmark = pytest.mark.e2e


async def _record(ocsd_sink, ocsd_process, write_ini, ini_sections, tmp_path):
    """A real feed: ``ocsd run`` for 3 s into ``ocsd sink --record``; the record file."""
    record = tmp_path / "feed.jsonl"
    async with ocsd_sink("--record", str(record)) as (sink, url):
        config = write_ini(ini_sections(f"{url}/ocs", interval=1))
        async with ocsd_process(config, args=["--start-all", "--duration", "3s"]) as proc:
            await asyncio.wait_for(proc.proc.wait(), 30)
            assert await proc.stop() == 0, proc.stderr_text
        await sink.stop()
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(lines) >= 8 and all(line["verdict"] == "valid" for line in lines)
    return record, lines


def _by_group(bodies):
    groups: dict[str, list[str]] = {}
    for body in bodies:
        groups.setdefault(body["GSW_CAMPAIGN_GROUP_DBID"], []).append(body["GSW_DATE_TIME"])
    return groups


async def test_a_recorded_feed_is_replayed_in_order_and_spaced_by_speed(
    ocsd_sink, ocsd_process, write_ini, ini_sections, receiver, tmp_path
):
    record, lines = await _record(ocsd_sink, ocsd_process, write_ini, ini_sections, tmp_path)
    summary = tmp_path / "replay.json"
    done = await run_command(
        ocsd_command(
            "replay", str(record), "--uri", receiver.url, "--speed", "2",
            "--summary-json", str(summary), "--threshold", "delivered_rate >= 1",
        ),
        within=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    got = [r.json for r in receiver.received]
    assert got == [line["body"] for line in lines] or _by_group(got) == _by_group(
        line["body"] for line in lines
    ), "each group's bodies, in order"
    assert sorted(map(orjson.dumps, got)) == sorted(orjson.dumps(line["body"]) for line in lines)
    recorded = [line["received"] - lines[0]["received"] for line in lines]
    arrived = [r.at - receiver.received[0].at for r in receiver.received]
    errors = sorted(abs(a - r / 2) for a, r in zip(arrived, recorded, strict=True))
    assert statistics.median(errors) < 0.05, errors  # spacing kept, halved (busy machine)
    assert "81001" in done.stdout and "81000" in done.stdout, "the trace lines of a run"
    result = json.loads(summary.read_text())
    assert sum(result["sent"].values()) == len(lines) and result["passed"] is True
    assert "ocsd run summary" in done.stderr


async def test_a_bad_line_is_named_and_skipped_and_speed_0_sends_at_once(receiver, tmp_path):
    body = {
        "GSW_USER_EVENT": "CampaignGroupState", "GSW_DATE_TIME": "1000.000",
        "GSW_TENANT_NAME": "T", "GSW_TENANT_CCID": "1", "GSW_CAMPAIGN_GROUP_NAME": "C@G",
        "GSW_CAMPAIGN_GROUP_UUID": "41877f24-c737-5be5-92f0-090e69634b22",
        "GSW_CAMPAIGN_GROUP_DBID": "101", "GSW_GROUP_NAME": "G", "GSW_CAMPAIGN_NAME": "C",
        "GSW_QUEUE_NAME": "7001", "GSW_CAMPAIGN_GROUP_STATUS": 4,
        "GSW_CAMPAIGN_GROUP_ACTION": 0, "GSW_CAMPAIGN_GROUP_ACTOR": 0,
        "GSW_STAT_BUSY_FACTOR": None, "GSW_STAT_HIT_RATIO": None,
        "GSW_STAT_OVERDIAL_RATE": None, "GSW_STAT_TIME_TO_COMPLETE": None,
        "GSW_CALLING_LISTS": [
            {"GSW_CALLING_LIST_NAME": "L", "GSW_CALLING_LIST_DBID": "201",
             "GSW_STAT_HIT_RATIO": None, "GSW_STAT_TIME_TO_COMPLETE": None}
        ],
    }  # fmt: skip
    feed = tmp_path / "bodies.jsonl"
    lines = [json.dumps({**body, "GSW_DATE_TIME": f"{1000 + 100 * n}.000"}) for n in range(5)]
    lines.insert(2, "{not json")
    lines.insert(4, "x" * (17 * 2**20))  # a runaway line: skipped, not read whole
    feed.write_text("\n".join(lines) + "\n")
    done = await run_command(
        ocsd_command("replay", str(feed), "--uri", receiver.url, "--speed", "0", "--rebase-time"),
        within=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.elapsed < 20, "400 s of recording at speed 0 is not waited for"
    skipped = [json.loads(x) for x in done.stdout.splitlines() if "replay line skipped" in x]
    assert [(s["line"], s["reason"][:8]) for s in skipped] == [(3, "not JSON"), (5, "longer t")]
    times = [float(r.json["GSW_DATE_TIME"]) for r in receiver.received]
    assert len(times) == 5 and times == sorted(times) and times[0] > 1_700_000_000, "rebased"


async def test_a_missing_file_and_a_bad_uri_are_one_line_errors(tmp_path):
    missing = await run_command(
        ocsd_command("replay", str(tmp_path / "nope.jsonl"), "--uri", "http://127.0.0.1:9/")
    )
    assert missing.returncode == 2 and "no such file" in missing.stderr
    bad = await run_command(ocsd_command("replay", str(tmp_path), "--uri", "nope"))
    assert bad.returncode == 2 and "--uri" in bad.stderr and "Traceback" not in bad.stderr
