"""``ocsd sink`` keeps a bounded amount of memory, and deep nesting cannot break it.

The real sink as a subprocess (``ocsd sink --record FILE``), its resident memory read
from /proc: 100 bodies of about 1 MiB that parse into ~24 times their size (an array of
small objects) leave it within ``--keep-bytes`` of where it started (before: 57 MB to
2.4 GB); a body nested 300 levels deep is refused with 400 before it is parsed, and
``GET /messages`` and the record file stay whole (before: 500 and a broken record).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

BODIES = 100
BODY_BYTES = 1_000_000  # under the default --max-body of 1 MiB
KEEP_BYTES = 32 * 1024 * 1024
MB = 1024 * 1024
WITHIN = aiohttp.ClientTimeout(total=60)


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def ballooning_body(seq: int) -> bytes:
    """~1 MB of JSON that parses into ~24 MB of Python objects: many small objects."""
    head = b'{"GSW_CAMPAIGN_GROUP_DBID": %d, "padding": [' % seq
    item = b'{"a":1},'
    count = (BODY_BYTES - len(head) - 3) // len(item)
    return head + item * count + b'{"a":1}]}'


async def _post(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[int, dict]:
    async with session.post(
        url + "/ocs/campaign-group-state",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=WITHIN,
    ) as response:
        return response.status, await response.json()


async def test_memory_stays_bounded_and_deep_nesting_is_refused(ocsd_sink, tmp_path):
    record = tmp_path / "record.jsonl"
    async with (
        ocsd_sink("--record", str(record)) as (sink, url),
        aiohttp.ClientSession() as session,
    ):
        await _post(session, url, ballooning_body(0))  # warm up: imports, the schema
        start = resident_bytes(sink.pid)
        for first in range(1, BODIES + 1, 4):
            answers = await asyncio.gather(
                *(_post(session, url, ballooning_body(n)) for n in range(first, first + 4))
            )
            assert {status for status, _ in answers} == {422}, answers[0]
        grown = resident_bytes(sink.pid) - start

        deep = b'{"GSW_CAMPAIGN_GROUP_DBID": 1, "x": ' + b"[" * 300 + b"]" * 300 + b"}"
        status, answer = await _post(session, url, deep)
        assert status == 400 and answer["rule"] == "depth", answer
        status, answer = await _post(session, url, b"[" * 254 + b"]" * 254)
        assert status == 400 and answer["rule"] == "depth", answer

        async with session.get(url + "/messages", timeout=WITHIN) as response:
            assert response.status == 200
            raw = await response.read()
        messages = json.loads(raw)
    print(f"resident memory grew {grown / MB:.1f} MB over {BODIES} bodies of {BODY_BYTES} bytes")
    assert grown < 200 * MB, f"the sink grew {grown / MB:.0f} MB"
    assert len(raw) < KEEP_BYTES + 2 * MB
    assert messages["refused"] == BODIES + 3
    assert messages["latest"][-1]["rule"] == "depth"
    assert 20 <= len(messages["latest"]) <= KEEP_BYTES // BODY_BYTES + 2
    lines = record.read_bytes().splitlines()
    assert len(lines) == BODIES + 3
    rules = [json.loads(line)["rule"] for line in lines]  # every line is whole JSON
    assert rules[-2:] == ["depth", "depth"]
