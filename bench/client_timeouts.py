"""What a POST's timeout costs in the aiohttp client loop, and what ocsd's costs.

    python bench/client_timeouts.py [--rounds 6] [--window 2] [--pool 32]

One receiver (bench/receiver.py, core 0) and, on core 1, a client process that runs
the bare aiohttp loop of bench/ceiling.py in three ways, each for ``--window`` seconds
in turn, ``--rounds`` times (this machine's speed drifts within minutes, so the three
take turns instead of running one after the other):

- ``aiohttp-total``: ``ClientTimeout(total=10)``, the way a bare client (and
  bench/ceiling.py) keeps a time limit: aiohttp makes, arms and cancels a timer per
  request;
- ``none``: no time limit at all (what nobody should run, the floor);
- ``ocsd-deadlines``: no timeout of aiohttp's, ocsd's one shared timer
  (``ocsd.delivery.deadlines.Deadlines``) around each POST, as ``Transport.post``
  does.

Prints the CPU microseconds per request of each (median of the rounds) and its ratio
to ``aiohttp-total`` (median of the per-round ratios). Nothing leaves 127.0.0.1; the
receiver is stopped by its own PID.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import aiohttp  # noqa: E402
import orjson  # noqa: E402
import uvloop  # noqa: E402
from ceiling import sample_body  # noqa: E402
from yarl import URL  # noqa: E402

from ocsd.delivery.deadlines import Deadlines  # noqa: E402

WAYS = ("aiohttp-total", "none", "ocsd-deadlines")


async def _sender(
    session: aiohttp.ClientSession, url: URL, way: str, deadlines: Deadlines, tally: list[int]
) -> None:
    body = orjson.dumps(sample_body(100_000 + len(tally), 600_000, time.time()))
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    while tally[0] >= 0:
        if way == "ocsd-deadlines":
            deadlines.enter(task, loop.time())
            try:
                async with session.post(url, data=body, allow_redirects=False) as response:
                    if response.content_length != 0:
                        await response.read()
            finally:
                deadlines.leave(task)
        else:
            async with session.post(url, data=body, allow_redirects=False) as response:
                if response.content_length != 0:
                    await response.read()
        tally[0] += 1


async def window(url: URL, way: str, pool: int, seconds: float) -> float:
    """CPU microseconds per request of ``way`` over one window (after 0.5 s of warm-up)."""
    total = 10.0 if way == "aiohttp-total" else None
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=pool, limit_per_host=pool),
        timeout=aiohttp.ClientTimeout(total=total),
        headers={"Content-Type": "application/json"},
        raise_for_status=False,
    )
    deadlines = Deadlines(10.0)
    tally = [0]
    senders = [
        asyncio.create_task(_sender(session, url, way, deadlines, tally)) for _ in range(pool)
    ]
    await asyncio.sleep(0.5)
    first, cpu = tally[0], time.process_time()
    await asyncio.sleep(seconds)
    requests, cpu = tally[0] - first, time.process_time() - cpu
    tally[0] = -(10**9)  # stop
    await asyncio.gather(*senders)
    deadlines.close()
    await session.close()
    return cpu / max(1, requests) * 1e6


async def client(url: str, rounds: int, seconds: float, pool: int) -> dict[str, list[float]]:
    target = URL(url)
    results: dict[str, list[float]] = {way: [] for way in WAYS}
    for _ in range(rounds):
        for way in WAYS:
            results[way].append(await window(target, way, pool, seconds))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--window", type=float, default=2.0, help="seconds per way per round")
    parser.add_argument("--pool", type=int, default=32)
    parser.add_argument("--url", help=argparse.SUPPRESS)  # the client process itself
    args = parser.parse_args(argv)
    if args.url:  # the client, pinned by the parent
        results = uvloop.run(client(args.url, args.rounds, args.window, args.pool))
        sys.stdout.write(orjson.dumps(results).decode() + "\n")
        return 0
    import scale

    workdir = Path(tempfile.mkdtemp(prefix="ocsd-timeouts-"))
    procs = scale.Processes(workdir)
    receiver = scale.Receiver(procs, workdir, "timeouts")
    try:
        argv_client = [sys.executable, __file__, "--url", receiver.url]
        argv_client += ["--rounds", str(args.rounds), "--window", f"{args.window:g}"]
        argv_client += ["--pool", str(args.pool)]
        done = subprocess.run(
            scale.pinned(scale.SENDER_CORE, argv_client),
            capture_output=True,
            timeout=args.rounds * len(WAYS) * (args.window + 5) + 60,
            check=True,
        )
    finally:
        receiver.stop()
        procs.stop_all()
    results = orjson.loads(done.stdout.splitlines()[-1])
    base = results["aiohttp-total"]
    print(f"CPU µs per request, {args.rounds} rounds of {args.window:g} s each, pool {args.pool}")
    print("\n| timeout | µs per request (median) | against aiohttp's total timeout |")
    print("|---|---:|---:|")
    for way in WAYS:
        ratio = statistics.median(a / b for a, b in zip(results[way], base, strict=True))
        print(f"| {way} | {statistics.median(results[way]):.1f} | {ratio:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
