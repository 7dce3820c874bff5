"""The scheduler runs on the daemon's clock: a fake clock drives it, not the wall."""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

import structlog

from ocsd.core.schedule import Entry, parse_schedule
from ocsd.service.scheduler import Scheduler

START = 1_900_000_000.0  # a wall time far from today's: only the injected clock knows it


async def test_entries_run_when_the_injected_clock_says_they_are_due() -> None:
    now = [START]
    ran: list[tuple[int, str]] = []
    scheduler = Scheduler(
        START, ZoneInfo("UTC"), lambda dbid, entry: ran.append((dbid, entry.text)), lambda: now[0]
    )
    scheduler.set_group(101, parse_schedule("+0s load; +3600s start"), START, initial=True)
    task = asyncio.create_task(scheduler.run())
    try:
        await asyncio.sleep(0.05)
        assert ran == [(101, "+0s load")]  # +1 h is not due on the fake clock
        now[0] = START + 3600
        scheduler.set_group(102, parse_schedule("+0s load"), now[0])  # wakes it up
        await asyncio.sleep(0.05)
        assert (101, "+3600s start") in ran
    finally:
        task.cancel()


async def test_an_entry_that_raises_is_logged_and_the_schedule_goes_on() -> None:
    ran: list[str] = []

    def run(dbid: int, entry: Entry) -> None:
        ran.append(entry.text)
        if entry.command == "load":
            raise RuntimeError("a bug in a request")

    scheduler = Scheduler(START, ZoneInfo("UTC"), run, lambda: START)
    scheduler.set_group(101, parse_schedule("+0s load; +0s start"), START, initial=True)
    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(scheduler.run())
        await asyncio.sleep(0.05)
        task.cancel()
    assert ran == ["+0s load", "+0s start"]
    [failed] = [e for e in logs if e["event"] == "schedule entry failed"]
    assert failed["exc_info"] and failed["dbid"] == 101
