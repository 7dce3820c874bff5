"""One timer for the total timeout of every POST in flight, instead of one per POST.

aiohttp's own total timeout (``ClientTimeout(total=...)``) makes, arms and cancels a
timer handle and a timer context for each request: 10 % of a bare aiohttp loop's CPU
per request at saturation (``python bench/client_timeouts.py``: 113.7 µs a request
with it, 102.1 µs with this). ocsd's POSTs all have the same timeout, so their
deadlines fall in the order they started: one timer, armed for the oldest POST in
flight, is enough. When it fires, every POST past its deadline is
cancelled the way :func:`asyncio.timeout` does it (``Task.cancel``, then
``Task.uncancel`` where the cancellation is caught), and the timer is armed again for
the oldest one left. A POST that ends in time costs one dict insert and one delete.
"""

from __future__ import annotations

import asyncio

#: uvloop's timers count whole milliseconds: a deadline this close counts as reached.
TIMER_RESOLUTION_S = 0.001


class Deadlines:
    """The deadlines of the POSTs in flight, each ``timeout`` seconds after its start."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        #: task -> loop time its POST started; insertion order is start order
        self._started: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def enter(self, task: asyncio.Task[object], now: float) -> None:
        """``task`` starts a POST at loop time ``now``; it must :meth:`leave` before its
        next await outside the POST."""
        self._started[task] = now
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_at(now + self.timeout, self._fire)

    def leave(self, task: asyncio.Task[object]) -> bool:
        """``task``'s POST is over; True when its deadline had passed (it was cancelled
        for it: the caller has caught that cancellation and must not re-raise it)."""
        if task in self._expired:
            self._expired.discard(task)
            task.uncancel()
            return True
        self._started.pop(task, None)
        return False

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = None
        reached = loop.time() + TIMER_RESOLUTION_S - self.timeout
        started = self._started
        while started:
            task, at = next(iter(started.items()))
            if at > reached:
                self._timer = loop.call_at(at + self.timeout, self._fire)
                return
            del started[task]
            if not task.done():
                self._expired.add(task)
                task.cancel()
