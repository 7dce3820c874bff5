"""The sending ceiling: a bare aiohttp client loop against the benchmark receiver.

    python bench/ceiling.py --url http://127.0.0.1:PORT/ocs [--pool 32] [--duration 10]

What ocsd's notifier does per notification, and nothing else: ``pool`` workers on
uvloop share one ``aiohttp.ClientSession`` with a ``TCPConnector(limit=pool)`` and
the same session options as ocsd (Content-Type header, no User-Agent, a total
timeout, no redirects), and POST an orjson-serialized CampaignGroupState body of the
same shape and size as ocsd's (one calling list, the names bench/scale.py gives its
groups) as fast as they can. No logging, no queues, no simulation.

``--rate R`` paces the workers to R requests/s in all (each on its own absolute
schedule): the CPU a bare aiohttp loop needs per request at that load, the baseline
for ocsd's CPU per notification at the same rate (a loop that is not saturated
handles fewer events per wake-up, so each request costs more than at the ceiling).

Prints one JSON object: requests completed with a 2xx inside the measured window
(after ``--warmup`` seconds), the window's length, requests/s, CPU seconds of this
process in the window and the body size.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

import aiohttp
import orjson
import uvloop


def group_names(dbid: int) -> dict[str, str]:
    """The names bench/scale.py writes for the group with this DBID (one calling list)."""
    return {
        "name": f"Campaign {dbid:06d}@Agent Group {dbid:06d}",
        "campaign": f"Campaign {dbid:06d}",
        "group": f"Agent Group {dbid:06d}",
        "template": "Bench Outbound Template",
        "queue": f"Q{dbid:06d}",
        "list": f"List_{dbid:06d}",
    }


def sample_body(dbid: int, list_dbid: int, at: float) -> dict[str, Any]:
    """A periodic body of a running predictive group, as ocsd builds it (ocsd.core.body)."""
    names = group_names(dbid)
    return {
        "GSW_USER_EVENT": "CampaignGroupState",
        "GSW_DATE_TIME": f"{at:.3f}",
        "GSW_TENANT_NAME": "Bench Tenant",
        "GSW_TENANT_CCID": "101",
        "GSW_CAMPAIGN_GROUP_NAME": names["name"],
        "GSW_CAMPAIGN_GROUP_UUID": "266c83fc-a72a-5eb3-a801-e4b26189e160",
        "GSW_CAMPAIGN_GROUP_DBID": str(dbid),
        "GSW_GROUP_NAME": names["group"],
        "GSW_CAMPAIGN_NAME": names["campaign"],
        "GSW_CAMPAIGN_TEMPLATE_NAME": names["template"],
        "GSW_QUEUE_NAME": names["queue"],
        "GSW_DIAL_MODE": 1,
        "GSW_OPTIMIZE_BY": 1,
        "GSW_OPTIMIZE_GOAL": 80,
        "GSW_CAMPAIGN_GROUP_STATUS": 5,
        "GSW_CAMPAIGN_GROUP_ACTION": 0,
        "GSW_CAMPAIGN_GROUP_ACTOR": 0,
        "GSW_STAT_BUSY_FACTOR": 0.8123,
        "GSW_STAT_HIT_RATIO": 0.3012,
        "GSW_STAT_OVERDIAL_RATE": 0.0312,
        "GSW_STAT_TIME_TO_COMPLETE": 12345.6789,
        "GSW_CALLING_LISTS": [
            {
                "GSW_CALLING_LIST_NAME": names["list"],
                "GSW_CALLING_LIST_DBID": str(list_dbid),
                "GSW_STAT_HIT_RATIO": 0.3012,
                "GSW_STAT_TIME_TO_COMPLETE": 12345.6789,
            }
        ],
    }


def core_busy_seconds() -> float | None:
    """Busy seconds of the one core this process is pinned to (None if not pinned)."""
    cores = os.sched_getaffinity(0)
    if len(cores) != 1:
        return None
    name = f"cpu{next(iter(cores))}"
    with open("/proc/stat") as stat:
        for line in stat:
            fields = line.split()
            if fields[0] == name:
                user, nice, system, _idle, _iowait, irq, softirq = map(int, fields[1:8])
                return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")
    return None


class Tally:
    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0
        self.counting = False


async def _worker(
    session: aiohttp.ClientSession,
    url: str,
    stop: asyncio.Event,
    tally: Tally,
    index: int,
    period: float | None,
) -> None:
    dbid = 100_000 + index
    loop = asyncio.get_running_loop()
    due = loop.time()
    while not stop.is_set():
        if period is not None:  # paced: an absolute schedule, no drift
            due += period
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        body = orjson.dumps(sample_body(dbid, dbid + 500_000, time.time()))
        try:
            async with session.post(url, data=body, allow_redirects=False) as response:
                await response.read()
                ok = 200 <= response.status < 300
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        if tally.counting:
            if ok:
                tally.ok += 1
            else:
                tally.failed += 1


async def measure(
    url: str, pool: int, duration: float, warmup: float, rate: float | None = None
) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=pool, limit_per_host=pool)
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=10),
        # the same two headers ocsd sends (aiohttp's default User-Agent: a bare client's)
        headers={"Content-Type": "application/json"},
        raise_for_status=False,
    ) as session:
        stop = asyncio.Event()
        tally = Tally()
        period = pool / rate if rate else None
        workers = [
            asyncio.create_task(_worker(session, url, stop, tally, i, period)) for i in range(pool)
        ]
        await asyncio.sleep(warmup)
        tally.counting = True
        started, cpu_started = time.monotonic(), time.process_time()
        core_started = core_busy_seconds()
        await asyncio.sleep(duration)
        tally.counting = False
        seconds, cpu = time.monotonic() - started, time.process_time() - cpu_started
        core_ended = core_busy_seconds()
        others = (
            None
            if core_started is None or core_ended is None
            else max(0.0, core_ended - core_started - cpu) / seconds
        )
        requests, failed = tally.ok, tally.failed
        stop.set()
        await asyncio.wait(workers, timeout=15)
    return {
        "requests": requests,
        "failed": failed,
        "seconds": round(seconds, 3),
        "rps": round(requests / seconds, 1),
        "cpu_s": round(cpu, 3),
        "cpu_us_per_request": round(cpu / requests * 1e6, 1) if requests else None,
        "body_bytes": len(orjson.dumps(sample_body(100_000, 600_000, time.time()))),
        "pool": pool,
        "rate": rate,
        "window_start_monotonic": started,
        # CPU other processes took on this core during the window (cores; 0 = quiet)
        "core_others": None if others is None else round(others, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the receiver's URL (127.0.0.1)")
    parser.add_argument("--pool", type=int, default=32, help="connections and workers")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    parser.add_argument("--rate", type=float, help="pace to this many requests/s in all")
    args = parser.parse_args(argv)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(measure(args.url, args.pool, args.duration, args.warmup, args.rate))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
