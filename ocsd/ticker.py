"""A drift-free periodic ticker (after arq's ``poll``).

Ticks fall on an absolute grid ``anchor + n * interval`` of the loop's monotonic
clock, so time spent in a tick never pushes the next one later. A tick that comes
too late to be useful (a whole interval missed) is skipped and counted, not run in
a burst. Changing the interval re-anchors the grid at once; 0 pauses the ticker.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from ocsd.logs import get_logger

log = get_logger("ocsd.ticker")


class Ticker:
    def __init__(self, interval: float, on_tick: Callable[[float], None]) -> None:
        """``on_tick(lateness_seconds)`` must not block: it snapshots and queues, no I/O."""
        self._interval = interval
        self._on_tick = on_tick
        self._changed = asyncio.Event()
        self.ticks = 0
        self.skipped = 0
        self.lateness: list[float] = []  # recent lateness samples, seconds
        self._max_samples = 1000

    @property
    def interval(self) -> float:
        return self._interval

    def set_interval(self, interval: float) -> None:
        if interval != self._interval:
            self._interval = interval
            self._changed.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._changed.clear()
            interval = self._interval
            if interval <= 0:
                await self._changed.wait()
                continue
            anchor = loop.time()
            step = 0
            while not self._changed.is_set():
                step += 1
                due = anchor + step * interval
                delay = due - loop.time()
                if delay > 0:
                    try:
                        await asyncio.wait_for(self._changed.wait(), delay)
                        break  # interval changed: re-anchor
                    except TimeoutError:
                        pass
                lateness = loop.time() - due
                if lateness >= interval:
                    missed = math.floor(lateness / interval)
                    self.skipped += missed
                    step += missed
                    log.warning(
                        "periodic ticks skipped", missed=missed, lateness_s=round(lateness, 3)
                    )
                    continue
                self._record(lateness)
                try:
                    self._on_tick(lateness)
                except Exception:
                    log.exception("periodic tick failed")

    def _record(self, lateness: float) -> None:
        self.ticks += 1
        self.lateness.append(lateness)
        if len(self.lateness) > self._max_samples:
            del self.lateness[: len(self.lateness) - self._max_samples]
