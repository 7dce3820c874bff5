"""The periodic ticker keeps to its grid: no drift, late ticks skipped, interval changes."""

from __future__ import annotations

import asyncio
import itertools
import time

from ocsd.ticker import Ticker


async def _run_for(ticker: Ticker, seconds: float) -> None:
    task = asyncio.create_task(ticker.run())
    await asyncio.sleep(seconds)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_ticks_stay_on_the_grid_although_each_tick_takes_time() -> None:
    loop = asyncio.get_running_loop()
    stamps: list[float] = []

    def slow_tick(_lateness: float) -> None:
        stamps.append(loop.time())
        time.sleep(0.004)  # work inside the tick must not push the next one later

    interval = 0.02
    ticker = Ticker(interval, slow_tick)
    await _run_for(ticker, 1.05)
    assert len(stamps) >= 45
    first = stamps[0]
    # The n-th tick is due at first + n*interval: the error must not grow with n.
    errors = [stamp - (first + n * interval) for n, stamp in enumerate(stamps)]
    assert max(errors[-10:]) < 0.015, errors[-10:]
    # With sleep(interval) after each tick the 45th tick would be ~0.18 s late.
    assert stamps[-1] - first < (len(stamps) - 1) * interval + 0.015


async def test_a_tick_late_by_more_than_an_interval_is_skipped_not_bursted() -> None:
    stamps: list[float] = []
    blocked = False

    def tick(_lateness: float) -> None:
        nonlocal blocked
        stamps.append(time.monotonic())
        if not blocked:
            blocked = True
            time.sleep(0.12)  # blocks the loop for six intervals

    ticker = Ticker(0.02, tick)
    await _run_for(ticker, 0.3)
    assert ticker.skipped >= 4
    gaps = [b - a for a, b in itertools.pairwise(stamps[1:])]  # after the blocked tick
    assert min(gaps) > 0.01, "missed ticks must not be run back to back"


async def test_interval_zero_pauses_and_a_new_interval_resumes() -> None:
    count = 0

    def tick(_lateness: float) -> None:
        nonlocal count
        count += 1

    ticker = Ticker(0, tick)
    task = asyncio.create_task(ticker.run())
    await asyncio.sleep(0.15)
    assert count == 0
    ticker.set_interval(0.02)
    await asyncio.sleep(0.21)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert 7 <= count <= 12
