"""What the reliable delivery mode and signing cost, against the ocs mode.

    python bench/delivery_modes.py [--count 20000] [--pool 10] [--runs 3]

Starts bench/receiver.py (a fast raw-asyncio receiver, in its own process) and, on
uvloop in this process, pushes ``--count`` state notifications (~1 KB bodies) through
each notifier configuration, measuring:

- ``submit_us``: the synchronous cost of ``Notifier.submit`` per notification (what a
  control request or a tick pays; in reliable mode it includes the buffered outbox
  insert), measured over the whole batch submitted at once;
- ``flush_ms``: reliable mode, the one transaction that commits the batch's inserts;
- ``per_s`` and ``cpu_us``: notifications delivered per second and CPU microseconds
  of this process per notification, from the first submit until all were accepted;
- ``one_row_flush_us`` (reliable): one notification recorded and committed alone, the
  case of a control request (median of 1000).

ocsd's JSON log lines go to stdout as in the daemon (send it to /dev/null); the
results, one JSON object per configuration and run, go to stderr. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ocsd.delivery.notifier import Notification, Notifier
from ocsd.delivery.ocs import OcsPolicy
from ocsd.delivery.outbox import Outbox, Stored, next_seq
from ocsd.delivery.reliable import ReliablePolicy
from ocsd.delivery.signing import Signer, new_secret
from ocsd.delivery.transport import Transport
from ocsd.logs import configure_logging

HERE = Path(__file__).resolve().parent


def body(dbid: int) -> bytes:
    return orjson.dumps(
        {
            "GSW_USER_EVENT": "CampaignGroupState",
            "GSW_DATE_TIME": f"{time.time():.3f}",
            "GSW_TENANT_NAME": "Bench",
            "GSW_TENANT_CCID": "1",
            "GSW_CAMPAIGN_GROUP_NAME": f"Campaign {dbid:06d}@Agent Group {dbid:06d}",
            "GSW_CAMPAIGN_GROUP_UUID": "266c83fc-a72a-5eb3-a801-e4b26189e160",
            "GSW_CAMPAIGN_GROUP_DBID": str(dbid),
            "GSW_GROUP_NAME": f"Agent Group {dbid:06d}",
            "GSW_CAMPAIGN_NAME": f"Campaign {dbid:06d}",
            "GSW_CAMPAIGN_TEMPLATE_NAME": "Bench Outbound Template",
            "GSW_QUEUE_NAME": f"Q{dbid:06d}",
            "GSW_DIAL_MODE": 1,
            "GSW_OPTIMIZE_BY": 1,
            "GSW_OPTIMIZE_GOAL": 85,
            "GSW_CAMPAIGN_GROUP_STATUS": 5,
            "GSW_CAMPAIGN_GROUP_ACTION": 9,
            "GSW_CAMPAIGN_GROUP_ACTOR": 1,
            "GSW_STAT_BUSY_FACTOR": 0.85,
            "GSW_STAT_HIT_RATIO": 0.3,
            "GSW_STAT_OVERDIAL_RATE": 0.02,
            "GSW_STAT_TIME_TO_COMPLETE": 600,
            "GSW_CALLING_LISTS": [
                {
                    "GSW_CALLING_LIST_NAME": f"List_{dbid:06d}",
                    "GSW_CALLING_LIST_DBID": str(100000 + dbid),
                    "GSW_STAT_HIT_RATIO": 0.3,
                    "GSW_STAT_TIME_TO_COMPLETE": 600,
                }
            ],
        }
    )


async def one_run(
    url: str, mode: str, signed: bool, count: int, pool: int, directory: str
) -> dict[str, Any]:
    signer = Signer(new_secret()) if signed else None
    reliable: ReliablePolicy | None = None
    if mode == "reliable":
        outbox = os.path.join(directory, f"outbox-{time.time_ns()}.sqlite3")
        reliable = ReliablePolicy(outbox_path=outbox, dead_letter_path=outbox + ".dead.jsonl")
    transport = Transport(url, 10, pool, signer=signer)
    notifier = Notifier(transport, reliable if reliable is not None else OcsPolicy())
    await notifier.start()
    await asyncio.sleep(0.2)  # activation (reliable) and the pool's first connections
    notifications = [Notification("state", f"G{i}", 1000 + i % 1000, body(i)) for i in range(count)]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for notification in notifications:
        notifier.submit(notification)
    submit_s = time.perf_counter() - wall0
    flush_ms = None
    if reliable is not None:
        started = time.perf_counter()
        reliable.outbox.flush()
        flush_ms = (time.perf_counter() - started) * 1000
    while notifier.counters.sent["state"] < count:  # noqa: ASYNC110 - polling a counter
        await asyncio.sleep(0.005)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    await notifier.close(1)
    return {
        "mode": mode,
        "signed": signed,
        "count": count,
        "submit_us": round(submit_s / count * 1e6, 2),
        "flush_ms": None if flush_ms is None else round(flush_ms, 1),
        "per_s": round(count / wall),
        "cpu_us": round(cpu / count * 1e6, 1),
        "failed": sum(notifier.counters.failed.values()),
    }


def one_row_flush_us(directory: str) -> float:
    outbox = Outbox(os.path.join(directory, "single.sqlite3"))
    sample = body(1)
    times = []
    for _ in range(1000):
        started = time.perf_counter()
        outbox.add(Stored(next_seq(), "msg_x", 1, "G", sample, 0, time.time()))
        outbox.flush()
        times.append(time.perf_counter() - started)
    outbox.close()
    times.sort()
    return round(times[len(times) // 2] * 1e6, 1)


async def main(args: argparse.Namespace) -> None:
    configure_logging("json")
    with tempfile.TemporaryDirectory() as directory:
        print(json.dumps({"one_row_flush_us": one_row_flush_us(directory)}), file=sys.stderr)
        receiver = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / "receiver.py"),
            "--record",
            f"{directory}/rec.bin",
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert receiver.stdout is not None
            port = int((await receiver.stdout.readline()).split()[1])
            url = f"http://127.0.0.1:{port}/ocs"
            for _ in range(args.runs):
                for mode, signed in (
                    ("ocs", False),
                    ("ocs", True),
                    ("reliable", False),
                    ("reliable", True),
                ):
                    result = await one_run(url, mode, signed, args.count, args.pool, directory)
                    print(json.dumps(result), file=sys.stderr, flush=True)
        finally:
            os.kill(receiver.pid, signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(receiver.wait(), 10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--pool", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    uvloop.run(main(parser.parse_args()))
