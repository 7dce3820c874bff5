"""In ``reliable`` mode a 200 to a control request means its state notifications are in
the outbox: a SIGKILL right after the answer loses none of them.

``ocsd run`` (a subprocess) gets a flood of control requests from concurrent clients
(LoadCampaign / UnloadCampaign over and over on 8 groups) while a real receiver accepts
what it is sent; after a random moment it is killed with SIGKILL. Every state
notification named in a 200 answer must then be either received or in the outbox file.
Then the next run starts on the same outbox (and delivers what it holds), and so on,
``KILLS`` times.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from support.control import Control
from support.ini import extra_groups, make_sections

pytestmark = pytest.mark.e2e

KILLS = 8
GROUPS = list(range(1001, 1009))
#: A notification as the control API names it and as its body says it.
Key = tuple[str, int, int, str]


def key_of_body(body: dict[str, Any]) -> Key:
    return (
        str(body["GSW_CAMPAIGN_GROUP_DBID"]),
        int(body["GSW_CAMPAIGN_GROUP_ACTION"]),
        int(body["GSW_CAMPAIGN_GROUP_STATUS"]),
        str(body["GSW_DATE_TIME"]),
    )


async def flood(control: Control, dbid: int, acknowledged: Counter[Key]) -> None:
    """Load and unload one group until the daemon dies; count what 200 answers named."""
    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
        while True:
            for req in ("LoadCampaign", "UnloadCampaign"):
                status, answer = await control.act(dbid, req)
                if status == 200:
                    for n in answer["notifications"]:
                        at = f"{n['at']:.3f}"
                        acknowledged[(str(dbid), n["action"], n["status"], at)] += 1


def outbox_keys(path: Path) -> Counter[Key]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT body FROM outbox").fetchall()
    return Counter(key_of_body(json.loads(body)) for (body,) in rows)


async def test_a_200_survives_a_sigkill(tmp_path, write_ini, ocsd_process, receiver, control_for):
    outbox = tmp_path / "outbox.sqlite3"
    sections = make_sections(
        receiver.url,
        pool_size=4,
        ocsd={
            "delivery-mode": "reliable",
            "retry-schedule": "0.2",
            "outbox-path": outbox,
            "dead-letter-path": tmp_path / "dead.jsonl",
        },
        **extra_groups(len(GROUPS), GROUPS[0]),
    )
    config = write_ini(sections)
    rng = random.Random()
    lost_runs = []
    every_acknowledged: Counter[Key] = Counter()
    for run in range(KILLS):
        acknowledged: Counter[Key] = Counter()
        async with ocsd_process(config) as ocsd:
            control = control_for(ocsd.control_url)
            clients = [asyncio.create_task(flood(control, dbid, acknowledged)) for dbid in GROUPS]
            started = time.monotonic()
            while sum(acknowledged.values()) < 40:  # the flood is on
                assert time.monotonic() - started < 20, "no answers"
                await asyncio.sleep(0.01)
            await asyncio.sleep(rng.uniform(0.05, 0.5))
            assert await ocsd.stop(signal.SIGKILL) == -signal.SIGKILL
            async with asyncio.timeout(10):
                await asyncio.gather(*clients)
        received = Counter(
            key_of_body(r.json)
            for r in receiver.received
            if isinstance(r.json, dict) and not r.periodic
        )
        stored = outbox_keys(outbox)
        every_acknowledged += acknowledged
        lost = acknowledged - received - stored
        if lost:
            lost_runs.append((run, sum(acknowledged.values()), sorted(lost)))
        print(
            f"\nrun {run}: {sum(acknowledged.values())} notifications answered 200, "
            f"{len(stored)} in the outbox after SIGKILL, lost {sum(lost.values())}"
        )
    assert not lost_runs, f"answered 200 but neither received nor stored: {lost_runs}"

    # a last run, without requests, delivers what the outbox still holds
    async with ocsd_process(config) as ocsd:
        deadline = time.monotonic() + 60
        while outbox_keys(outbox):
            assert time.monotonic() < deadline, f"{len(outbox_keys(outbox))} never delivered"
            await asyncio.sleep(0.2)
    received = Counter(
        key_of_body(r.json)
        for r in receiver.received
        if isinstance(r.json, dict) and not r.periodic
    )
    never = every_acknowledged - received
    assert not never, f"answered 200, never received: {sorted(never)[:10]}"
    print(f"all {sum(every_acknowledged.values())} notifications answered 200 were received")
