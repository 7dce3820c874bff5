"""The reliable notifier on its own, against real receivers on 127.0.0.1.

Ordering per group without holding other groups up, the outbox (recorded before sent,
deleted after, kept across a restart, one process per file, spilled to disk beyond the
memory bound), attempts and dead letters, coalesced periodic notifications, backoff.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from support.net import LOCALHOST, RECEIVER_PATH, free_port
from support.waiting import eventually

import ocsd.delivery.backlog as backlog_module
from ocsd.delivery.notifier import Notification, Notifier
from ocsd.delivery.outbox import Outbox, OutboxError, read_dead_letters
from ocsd.delivery.reliable import ReliablePolicy
from ocsd.delivery.transport import RETRY_AFTER_CAP, Transport, retry_after_seconds


def state(dbid: int, n: int) -> Notification:
    body = json.dumps(
        {"GSW_CAMPAIGN_GROUP_DBID": str(dbid), "n": n, "GSW_CAMPAIGN_GROUP_ACTION": 7}
    )
    return Notification("state", f"G{dbid}", dbid, body.encode())


def periodic(dbid: int, n: int) -> Notification:
    body = json.dumps(
        {"GSW_CAMPAIGN_GROUP_DBID": str(dbid), "n": n, "GSW_CAMPAIGN_GROUP_ACTION": 0}
    )
    return Notification("periodic", f"G{dbid}", dbid, body.encode())


def key(received: Any) -> tuple[str, int]:
    return received.json["GSW_CAMPAIGN_GROUP_DBID"], received.json["n"]


def header(received: Any, name: str) -> str | None:
    return next((v for k, v in received.headers.items() if k.lower() == name), None)


@pytest.fixture
async def make_notifier(tmp_path: Path):
    """``await make_notifier(uri, pool_size=2, **options)``: a started Notifier with the
    reliable policy (retry schedule 0.1, 0.2 s; ``notifier.policy`` is the ReliablePolicy);
    closed after the test unless the test closed it."""
    made: list[Notifier] = []

    async def make(uri: str, pool_size: int = 2, **options: Any) -> Notifier:
        options = {
            "retry_schedule": (0.1, 0.2),
            "max_attempts": 1000,
            "outbox_path": str(tmp_path / "outbox.sqlite3"),
            "dead_letter_path": str(tmp_path / "dead.jsonl"),
            **options,
        }
        signer = options.pop("signer", None)
        transport = Transport(uri, 0.5, pool_size, signer=signer)
        notifier = Notifier(transport, ReliablePolicy(**options))
        await notifier.start()
        made.append(notifier)
        return notifier

    yield make
    for notifier in made:
        if not notifier.policy.outbox.closed:
            await notifier.close(0.5)


async def test_a_failing_group_does_not_hold_up_the_others(make_notifier, make_fault_receiver):
    receiver = await make_fault_receiver()
    receiver.answer_for = lambda _r, raw: (
        "status500" if json.loads(raw)["GSW_CAMPAIGN_GROUP_DBID"] == "1" else "ok"
    )
    notifier = await make_notifier(receiver.url, pool_size=1)  # one worker for both groups
    for n in range(3):
        notifier.submit(state(1, n))
        notifier.submit(state(2, n))
    started = time.monotonic()
    await receiver.wait_for(3, lambda r: key(r)[0] == "2", within=2)
    assert time.monotonic() - started < 0.5, "group 2 waited for group 1's retries"
    await asyncio.sleep(0.5)
    tried = {key(r) for r in receiver.received if key(r)[0] == "1"}
    assert tried == {("1", 0)}, "group 1's later notifications overtook its failing head"
    assert notifier.counters.retried["state"] >= 2
    receiver.answer_for = None
    accepted = await receiver.wait_for(6, lambda r: r.behaviour == "ok", within=3)
    assert [key(r)[1] for r in accepted if key(r)[0] == "1"] == [0, 1, 2]
    assert [key(r)[1] for r in accepted if key(r)[0] == "2"] == [0, 1, 2]


async def test_recorded_before_sent_and_deleted_after(make_notifier, make_fault_receiver, tmp_path):
    receiver = await make_fault_receiver()
    stored_at_arrival: list[bool] = []

    def look(request: Any, _raw: bytes) -> None:
        with sqlite3.connect(tmp_path / "outbox.sqlite3") as db:
            row = db.execute(
                "SELECT 1 FROM outbox WHERE message_id = ?", (request.headers["webhook-id"],)
            ).fetchone()
        stored_at_arrival.append(row is not None)
        return None

    receiver.answer_for = look
    notifier = await make_notifier(receiver.url, signer=None)
    for n in range(5):
        notifier.submit(state(n % 2 + 1, n))
    await receiver.wait_for(5)
    assert stored_at_arrival == [True] * 5
    await eventually(lambda: notifier.figures().outbox_pending == 0, what="rows deleted after 2xx")
    with sqlite3.connect(tmp_path / "outbox.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM outbox").fetchone() == (0,)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_kept_across_a_restart_with_the_same_ids(make_notifier, make_fault_receiver):
    port = free_port()
    uri = f"http://{LOCALHOST}:{port}{RECEIVER_PATH}"
    first = await make_notifier(uri)
    for n in range(4):
        first.submit(state(7, n))
    await asyncio.sleep(0.3)
    ids = [row.message_id for row in first.policy.outbox.load(0, 100)]
    await first.close(0.5)
    assert first.policy.outbox.count == 4
    receiver = await make_fault_receiver(port=port)
    second = await make_notifier(uri)
    received = await receiver.wait_for(4, within=3)
    assert [header(r, "webhook-id") for r in received] == ids
    assert [key(r)[1] for r in received] == [0, 1, 2, 3]
    await eventually(lambda: second.figures().outbox_pending == 0)


async def test_one_process_per_outbox(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    outbox = Outbox(str(path))
    try:
        other = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-c",
                f"from ocsd.delivery.outbox import Outbox; Outbox({str(path)!r})",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert other.returncode != 0
        assert "in use by another ocsd process" in other.stderr
        again = Outbox(str(path))  # the same process may open it again (a reload)
        again.close()
    finally:
        outbox.close()
    with pytest.raises(OutboxError, match="does not exist"):
        Outbox(str(tmp_path / "missing" / "outbox.sqlite3"))


async def test_beyond_the_memory_bound_they_wait_on_disk(
    make_notifier, make_fault_receiver, monkeypatch
):
    monkeypatch.setattr(backlog_module, "RELIABLE_IN_MEMORY", 4)
    port = free_port()
    notifier = await make_notifier(f"http://{LOCALHOST}:{port}{RECEIVER_PATH}")
    for n in range(30):
        notifier.submit(state(n % 3 + 1, n))
        notifier.submit(periodic(n % 3 + 1, n))
    await asyncio.sleep(0.3)
    assert notifier.policy.backlog.in_memory <= 4
    assert notifier.figures().outbox_pending == 30
    receiver = await make_fault_receiver(port=port)
    await receiver.wait_for(30, lambda r: r.json["GSW_CAMPAIGN_GROUP_ACTION"] == 7, within=5)
    states = [key(r) for r in receiver.received if r.json["GSW_CAMPAIGN_GROUP_ACTION"] == 7]
    for dbid in ("1", "2", "3"):
        numbers = [n for d, n in states if d == dbid]
        assert numbers == sorted(numbers) and len(numbers) == 10, (dbid, numbers)
    assert len(states) == len(set(states)) == 30


async def test_dead_letter_after_the_last_attempt(make_notifier, make_fault_receiver, tmp_path):
    receiver = await make_fault_receiver()
    receiver.answer_for = lambda _r, raw: "status500" if json.loads(raw)["n"] == 0 else "ok"
    notifier = await make_notifier(receiver.url, retry_schedule=(0.05,), max_attempts=3)
    notifier.submit(state(5, 0))
    notifier.submit(state(5, 1))
    await receiver.wait_for(1, lambda r: r.behaviour == "ok", within=3)
    assert [key(r)[1] for r in receiver.received] == [0, 0, 0, 1]
    (record,) = read_dead_letters(str(tmp_path / "dead.jsonl"))
    assert record["attempts"] == 3 and record["reason"] == "HTTP 500"
    assert record["body"].encode() == state(5, 0).body
    assert record["id"] == header(receiver.received[0], "webhook-id")
    assert notifier.counters.dead_lettered["HTTP 500"] == 1
    assert notifier.figures().dead_letters == 1
    receiver.answer_for = None
    assert [r["id"] for r in await notifier.policy.resend([record["id"]])] == [record["id"]]
    again = await receiver.wait_for(2, lambda r: r.behaviour == "ok")
    assert header(again[-1], "webhook-id") == record["id"], "a re-send keeps its webhook-id"
    assert notifier.figures().dead_letters == 0


async def test_periodic_ones_are_coalesced_during_an_outage(make_notifier, make_fault_receiver):
    port = free_port()
    notifier = await make_notifier(f"http://{LOCALHOST}:{port}{RECEIVER_PATH}")
    for n in range(200):
        notifier.submit(periodic(n % 4, n))
        if n % 20 == 0:
            await asyncio.sleep(0.05)
    assert notifier.pending <= 4 + 2, "more than one periodic notification waits per group"
    dropped = sum(c for (kind, _), c in notifier.counters.dropped.items() if kind == "periodic")
    assert dropped >= 150
    receiver = await make_fault_receiver(port=port)
    received = await receiver.wait_for(4, within=3)
    await receiver.settle(0.5)
    newest = {str(d): max(n for n in range(200) if n % 4 == d) for d in range(4)}
    got = {key(r)[0]: key(r)[1] for r in receiver.received}
    assert got == newest, "not the newest periodic notification of each group"
    assert len(received) == 4


def test_retry_after_values() -> None:
    assert retry_after_seconds("120") == 120
    assert retry_after_seconds(" 0 ") == 0
    assert retry_after_seconds("99999999999999") == RETRY_AFTER_CAP
    now = datetime.now(UTC)
    assert (
        58
        <= (retry_after_seconds(format_datetime(now + timedelta(seconds=60), usegmt=True)) or 0)
        <= 61
    )
    assert retry_after_seconds(format_datetime(now - timedelta(days=1), usegmt=True)) == 0
    for junk in ("", None, "soon", "-5", "1.5e3"):
        assert retry_after_seconds(junk) is None


async def test_backoff_follows_the_schedule_with_jitter(tmp_path: Path) -> None:
    policy = ReliablePolicy(
        retry_schedule=(1, 2, 5),
        outbox_path=str(tmp_path / "o.sqlite3"),
        dead_letter_path=str(tmp_path / "d.jsonl"),
        rng=random.Random(7),
    )
    try:
        assert policy.backoff.max_attempts == 4
        for attempts, base in ((1, 1), (2, 2), (3, 5), (4, 5), (9, 5)):
            delays = [policy.backoff.delay(attempts, None) for _ in range(200)]
            assert base * 0.8 <= min(delays) and max(delays) <= base * 1.2
            assert max(delays) - min(delays) > base * 0.2, "no jitter"
        assert policy.backoff.delay(1, 30) == 30, "Retry-After wins when longer"
    finally:
        policy.outbox.close()


async def test_a_receiver_back_gets_what_waited_for_it_at_once(make_notifier, make_fault_receiver):
    port = free_port()
    notifier = await make_notifier(
        f"http://{LOCALHOST}:{port}{RECEIVER_PATH}", retry_schedule=(0.1, 30)
    )
    notifier.submit(state(1, 0))
    await eventually(lambda: notifier.counters.retried["state"] >= 2, what="two refusals")
    # its next attempt is now ~30 s away; the receiver comes back, another group's
    # notification gets through, and the waiting one goes at once
    receiver = await make_fault_receiver(port=port)
    notifier.submit(state(2, 0))
    received = await receiver.wait_for(2, within=2)
    assert sorted(key(r) for r in received) == [("1", 0), ("2", 0)]
