"""Reliable delivery across a receiver outage and a crash of ocsd in the middle of it.

``ocsd run`` (a subprocess, delivery-mode = reliable, a webhook secret) produces state
notifications while the receiver is down; it is killed with SIGKILL halfway through the
outage; a second ``ocsd run`` on the same outbox produces more; then the receiver comes
back, answering 503 to the first attempt of every message and 2xx after that.

At the end every state notification has been accepted exactly once (after exactly the
one 503 the receiver asked for), in order per group across both processes, each
validly signed (checked with the ``standardwebhooks`` package), and the outbox is empty.

The outage lasts ``OCSD_TEST_OUTAGE_S`` seconds (default 4); docs/delivery.md reports a run
with a one-minute outage (``OCSD_TEST_OUTAGE_S=60``), also possible with the default
retry schedule: ``OCSD_TEST_RETRY_SCHEDULE=1,2,5,10,30,60 OCSD_TEST_MAX_ATTEMPTS=20``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import time
from collections import Counter, defaultdict
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook
from support.control import Control
from support.ini import make_sections
from support.net import LOCALHOST, RECEIVER_PATH, free_port

from ocsd.delivery.signing import new_secret

pytestmark = pytest.mark.e2e

OUTAGE_S = float(os.environ.get("OCSD_TEST_OUTAGE_S", "4"))
RETRY_SCHEDULE = os.environ.get("OCSD_TEST_RETRY_SCHEDULE", "0.2,0.5,1")
MAX_ATTEMPTS = os.environ.get("OCSD_TEST_MAX_ATTEMPTS", "1000")

#: Produced by the first process (groups start NotLoaded in each process: campaign state
#: is not persisted, only undelivered notifications are).
BEFORE_CRASH = [
    (101, "LoadCampaign", {}),
    (102, "LoadCampaign", {}),
    (101, "StartDialing", {}),
    (103, "LoadCampaign", {}),
    (102, "StartDialing", {}),
    (101, "SetDialingMode", {"dialmode": "progressive"}),
    (103, "StartDialing", {}),
]
AFTER_RESTART = [
    (102, "LoadCampaign", {}),
    (101, "LoadCampaign", {}),
    (102, "StartDialing", {"dialmode": "power"}),
    (101, "StartDialing", {}),
    (102, "StopDialing", {}),
    (101, "UnloadCampaign", {}),  # running: stop (10) then unload (8)
    (102, "UnloadCampaign", {}),
]


def header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


async def drive(
    control: Control, steps: list[tuple[int, str, dict[str, str]]]
) -> list[tuple[str, int]]:
    """Apply the steps; the (dbid, action) of every state notification they caused."""
    caused = []
    for dbid, req, params in steps:
        answer = await control.ok(dbid, req, **params)
        caused += [(str(dbid), n["action"]) for n in answer["notifications"]]
    return caused


async def test_outage_with_a_crash_in_the_middle(
    tmp_path, write_ini, ocsd_process, make_fault_receiver, control_for
):
    secret = new_secret()
    port = free_port()
    outbox = tmp_path / "outbox.sqlite3"
    sections = make_sections(
        f"http://{LOCALHOST}:{port}{RECEIVER_PATH}",
        interval=1,
        timeout=1,
        pool_size=4,
        ocsd={
            "delivery-mode": "reliable",
            "retry-schedule": RETRY_SCHEDULE,
            "max-attempts": MAX_ATTEMPTS,
            "outbox-path": outbox,
            "dead-letter-path": tmp_path / "deadletters.jsonl",
            "webhook-secret": secret,
        },
    )
    config = write_ini(sections)
    outage_started = time.monotonic()

    # -- the first process: notifications while the receiver is down, then a crash -------
    async with ocsd_process(config) as first:
        control = control_for(first.control_url)
        produced = await drive(control, BEFORE_CRASH)
        await first.wait_for_line(
            lambda line: isinstance(line, dict) and line.get("reason") == "connection refused",
            n=len(produced),
            within=10,
        )
        await asyncio.sleep(max(0.0, OUTAGE_S / 2 - (time.monotonic() - outage_started)))
        assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
        assert secret not in first.stdout_text + first.stderr_text, "the secret was logged"
    with sqlite3.connect(outbox) as db:
        (stored,) = db.execute("SELECT COUNT(*) FROM outbox").fetchone()
    assert stored == len(produced), "the crash lost state notifications of the outbox"

    # -- the second process: the same outbox, more notifications, still no receiver ---------
    async with ocsd_process(config) as second:
        await second.wait_for_line(
            lambda line: (
                isinstance(line, dict)
                and line.get("event", "").startswith("outbox loaded")
                and line.get("stored") == len(produced)
            ),
            within=5,
        )
        control = control_for(second.control_url)
        produced += await drive(control, AFTER_RESTART)
        await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - outage_started)))

        # -- the receiver comes back: 503 to each message's first attempt, then 2xx ----------
        seen: Counter[str] = Counter()

        def first_attempt_fails(request: Any, _raw: bytes) -> str | None:
            message_id = header(dict(request.headers), "webhook-id") or ""
            seen[message_id] += 1
            return "status503" if seen[message_id] == 1 else "ok"

        receiver = await make_fault_receiver(start=False)
        receiver.answer_for = first_attempt_fails
        await receiver.start(port)
        back = time.monotonic()

        def accepted_states() -> list[Any]:
            return [r for r in receiver.accepted if r.action not in (None, 0)]

        # a head waits at most its longest delay (+20 % jitter), and twice (the 503 first)
        longest = max(float(d) for d in RETRY_SCHEDULE.split(","))
        deadline = back + 10 + 2.5 * longest
        while len(accepted_states()) < len(produced):
            assert time.monotonic() < deadline, (
                f"{len(accepted_states())} of {len(produced)} delivered; {second.stdout_text[-3000:]}"
            )
            await asyncio.sleep(0.05)
        caught_up = time.monotonic() - back
        await asyncio.sleep(1.5)  # nothing more may come for them
        status, metrics = await control.request("GET", "/metrics")
        assert status == 200 and "ocsd_outbox_pending 0.0" in metrics, metrics
        assert "ocsd_dead_letters 0.0" in metrics
    assert second.exit_code == 0
    assert "Traceback" not in second.stdout_text + second.stderr_text

    # -- what the receiver got ------------------------------------------------------------
    accepted = accepted_states()
    ids = [header(r.headers, "webhook-id") for r in accepted]
    assert len(ids) == len(set(ids)) == len(produced), "a message was accepted twice"
    expected: dict[str, list[int]] = defaultdict(list)
    for dbid, action in produced:
        expected[dbid].append(action)
    got: dict[str, list[int]] = defaultdict(list)
    for r in accepted:
        got[str(r.dbid)].append(int(r.action or 0))
    assert got == expected, "state notifications out of order within a group"
    attempts = Counter(header(r.headers, "webhook-id") for r in receiver.received)
    for message_id in ids:
        assert attempts[message_id] == 2, f"{message_id}: {attempts[message_id]} attempts, not 2"
    verifier = Webhook(secret)
    for r in receiver.received:
        body = verifier.verify(r.raw, {k.lower(): v for k, v in r.headers.items()})
        assert body == json.loads(r.raw)
    print(
        f"\noutage {OUTAGE_S:.0f} s, ocsd killed and restarted in the middle: "
        f"{len(produced)} state notifications ({len(BEFORE_CRASH)} requests before the crash, "
        f"{stored} in the outbox at the crash), all accepted once, in order per group, "
        f"{caught_up:.2f} s after the receiver came back; "
        f"{len(receiver.received)} POSTs seen by the receiver in all (periodic included)"
    )
