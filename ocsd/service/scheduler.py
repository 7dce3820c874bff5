"""Outbound Schedules at run time: the entries of every group on one heap, each run
at its due time on the daemon's wall clock (actor 2). Parsing and due times are pure
(:mod:`ocsd.core.schedule`); this only sleeps and applies."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

from ocsd.core.schedule import Entry
from ocsd.logs import get_logger

log = get_logger("ocsd.service")


class Scheduler:
    """Runs schedule entries at their wall-clock times, one heap for all groups; the
    wall clock is the daemon's (injected, so tests can run it on a fake one)."""

    def __init__(
        self,
        started: float,
        tz: ZoneInfo,
        run_entry: Callable[[int, Entry], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.started = started
        self.clock = clock
        self.tz = tz
        self._run_entry = run_entry
        self._heap: list[tuple[float, int, int, int, Entry]] = []  # due, seq, dbid, generation
        self._generation: dict[int, int] = {}
        self._entries: dict[int, tuple[Entry, ...]] = {}
        self._seq = itertools.count()
        self._wake = asyncio.Event()

    def set_group(
        self, dbid: int, entries: tuple[Entry, ...], now: float, initial: bool = False
    ) -> bool:
        """Plan a group's entries; False if they are unchanged.

        On a re-plan, offsets already past are not run again.
        """
        if self._entries.get(dbid, ()) == entries:
            return False
        generation = self._generation.get(dbid, 0) + 1
        self._generation[dbid] = generation
        self._entries[dbid] = entries
        for entry in entries:
            due = entry.first_due(self.started, self.tz)
            if entry.offset is None and due < now:
                due = entry.next_daily(now, self.tz)
            if entry.offset is not None and due < now and not initial:
                continue  # an offset that came before this reload: it ran already
            heapq.heappush(self._heap, (due, next(self._seq), dbid, generation, entry))
        self._wake.set()
        return True

    def set_timezone(self, tz: ZoneInfo, now: float) -> None:
        """Re-plan every group's entries in a new time zone (past offsets stay done)."""
        self.tz = tz
        for dbid, entries in list(self._entries.items()):
            self._entries.pop(dbid)
            self.set_group(dbid, entries, now)

    def remove_group(self, dbid: int) -> None:
        self._generation[dbid] = self._generation.get(dbid, 0) + 1
        self._entries.pop(dbid, None)

    async def run(self) -> None:
        while True:
            self._wake.clear()
            delay = self._heap[0][0] - self.clock() if self._heap else None
            if delay is None or delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue
            due, _seq, dbid, generation, entry = heapq.heappop(self._heap)
            if self._generation.get(dbid) != generation:
                continue  # re-planned or removed since
            if entry.clock is not None:
                next_due = entry.next_daily(due + 1, self.tz)
                heapq.heappush(self._heap, (next_due, next(self._seq), dbid, generation, entry))
            try:
                self._run_entry(dbid, entry)
            except Exception:  # a bug: the entry is lost, the schedule goes on
                log.exception("schedule entry failed", dbid=dbid, entry=entry.text)
