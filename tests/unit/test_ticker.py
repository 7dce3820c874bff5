"""The periodic ticker keeps to its grid: no drift, late ticks skipped, interval changes."""

from __future__ import annotations

import asyncio
import itertools
import time
import tracemalloc

import uvloop

from ocsd.service.ticker import TIMER_RESOLUTION_S, PhasedTicker, Ticker, plan_phases, slots_for


async def _run_for(ticker: Ticker | PhasedTicker, seconds: float) -> None:
    task = asyncio.create_task(ticker.run())
    await asyncio.sleep(seconds)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_ticks_stay_on_the_grid_although_each_tick_takes_time() -> None:
    """Each tick is due on the grid anchor + n * interval, whatever the work inside the
    ticks and however late a busy machine runs them: the due time of every tick (when it
    ran, less the lateness it was told) is a whole number of intervals after the first.
    Counted on the grid, not timed: holds on a loaded 2-core machine."""
    loop = asyncio.get_running_loop()
    dues: list[float] = []

    def slow_tick(lateness: float) -> None:
        dues.append(loop.time() - lateness)
        time.sleep(0.004)  # work inside the tick must not push the next one later

    interval = 0.02
    ticker = Ticker(interval, slow_tick)
    await _run_for(ticker, 1.05)
    assert len(dues) >= 10, dues
    steps = [(due - dues[0]) / interval for due in dues]
    # a tick may wake up to TIMER_RESOLUTION_S early (it is then told lateness 0)
    off_grid = [s for s in steps if abs(s - round(s)) * interval > TIMER_RESOLUTION_S + 1e-4]
    assert not off_grid, f"ticks off the grid (in intervals): {off_grid[:5]}"
    assert all(round(b) > round(a) for a, b in itertools.pairwise(steps)), steps
    # With sleep(interval) after each tick, every tick would drift 4 ms further off the grid.


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


# -- the phased ticker: every group at its own phase of the interval ------------------


async def test_every_slot_runs_once_per_interval_in_order_at_its_phase() -> None:
    loop = asyncio.get_running_loop()
    runs: list[tuple[int, float]] = []
    ticker = PhasedTicker(0.2, lambda slot, _late: runs.append((slot, loop.time())), 0.01)
    assert ticker.slots == 20
    await _run_for(ticker, 0.61)
    slots = [slot for slot, _at in runs]
    assert slots[:40] == list(range(20)) * 2, slots
    # slot k of cycle n is due at anchor + (20n + k + 1) * 10 ms: no drift over 3 cycles
    anchor = runs[0][1] - 0.01
    errors = [at - (anchor + (n + 1) * 0.01) for n, (_slot, at) in enumerate(runs)]
    assert max(errors) < 0.015, max(errors)
    assert ticker.skipped == 0


async def test_slots_missed_by_a_short_stall_are_caught_up_not_skipped() -> None:
    runs: list[tuple[int, float]] = []
    stalled = False

    def on_slot(slot: int, lateness: float) -> None:
        nonlocal stalled
        runs.append((slot, lateness))
        if slot == 3 and not stalled:
            stalled = True
            time.sleep(0.05)  # a quarter of the interval

    ticker = PhasedTicker(0.2, on_slot, 0.01)
    await _run_for(ticker, 0.45)
    slots = [slot for slot, _late in runs]
    assert slots[:40] == list(range(20)) * 2, "a slot was skipped or repeated"
    assert ticker.skipped == 0
    # the slots due during the stall ran late, and their lateness says so
    assert max(late for slot, late in runs[4:9]) >= 0.03


async def test_a_loop_a_whole_interval_behind_skips_whole_intervals() -> None:
    runs: list[int] = []
    stalled = False

    def on_slot(slot: int, _lateness: float) -> None:
        nonlocal stalled
        runs.append(slot)
        if slot == 0 and not stalled:
            stalled = True
            time.sleep(0.25)  # two and a half intervals

    ticker = PhasedTicker(0.1, on_slot, 0.01)
    await _run_for(ticker, 0.5)
    assert ticker.skipped == 20  # two whole intervals of 10 slots
    # no slot ran twice within one interval's worth of runs, and the order is kept
    assert all(b == (a + 1) % 10 for a, b in itertools.pairwise(runs)), runs


async def test_a_new_interval_re_plans_the_slots() -> None:
    runs: list[int] = []
    ticker = PhasedTicker(0, lambda slot, _late: runs.append(slot), 0.01)
    task = asyncio.create_task(ticker.run())
    await asyncio.sleep(0.1)
    assert runs == []  # interval 0: off
    ticker.set_interval(0.05)
    await asyncio.sleep(0.16)
    assert ticker.slots == 5
    assert set(runs) == set(range(5))
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_phases_spread_the_groups_evenly_in_dbid_order() -> None:
    dbids = list(range(20_100, 100, -1))  # 20,000 groups, in any order
    phases = plan_phases(dbids, 1000)
    assert [len(slot) for slot in phases] == [20] * 1000
    assert [dbid for slot in phases for dbid in slot] == sorted(dbids)
    assert plan_phases(reversed(dbids), 1000) == phases  # the set decides, not the order
    few = plan_phases([7, 3, 5], 100)
    assert [slot for slot, dbids in enumerate(few) if dbids] == [0, 33, 66]  # a third apart
    assert slots_for(10) == 1000 and slots_for(1) == 100 and slots_for(0.001) == 1


def test_the_slots_of_a_long_interval_are_capped() -> None:
    """10 ms slots made memory grow with the interval: 8,640,000 slot lists (655 MB) for a
    day. At most 10,000 slots (100 s of 10 ms); a longer interval gets wider slots."""
    assert slots_for(50) == 5_000 and slots_for(100) == 10_000
    assert slots_for(101) == 10_000 and slots_for(86_400) == 10_000
    ticker = PhasedTicker(86_400, lambda slot, lateness: None)
    tracemalloc.start()
    try:
        phases = plan_phases([101, 102, 103], ticker.slots)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(phases) == 10_000 and peak < 2_000_000, f"{peak:,} bytes"


def test_idle_phased_tickers_sleep_between_slots_on_uvloop() -> None:
    """uvloop's timers count whole milliseconds and a slot's due time may round just
    past the clock: the ticker must take that as due, not spin through zero-delay
    waits until the clock catches up (ten tickers with different grids cost ~0.1 s of
    CPU a second when they sleep, ~0.3 s when they spin)."""

    async def run_one_second() -> tuple[float, int]:
        tickers = [PhasedTicker(0.5 + 0.173 * k, lambda _slot, _late: None) for k in range(10)]
        cpu = time.process_time()
        await asyncio.gather(*(_run_for(ticker, 1.0) for ticker in tickers))
        return time.process_time() - cpu, sum(ticker.ticks for ticker in tickers)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        cpu_seconds, slots_run = runner.run(run_one_second())
    assert slots_run >= 900
    assert cpu_seconds < 0.2, f"{cpu_seconds:.2f} s of CPU in one idle second"
