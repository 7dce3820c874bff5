"""Every long-running task of the daemon runs under a supervisor: none dies in silence.

A supervised task that raises is logged with its traceback and counted
(``ocsd_task_restarts``), ``/readyz`` says not ready while it is down, and it is
restarted after a back-off (:data:`RESTART_DELAYS`). A task that keeps dying
(:data:`MAX_RESTARTS` within :data:`RESTART_WINDOW_S`) stops the daemon with a non-zero
exit instead: a daemon that cannot tick is worse than one that is gone. A task that
must run forever and returns is a death too. Cancellation is never a death: only the
daemon cancels its tasks.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable

from ocsd.logs import get_logger

log = get_logger("ocsd.service")

#: Seconds before the 1st, 2nd, ... restart of a task (the last one repeats).
RESTART_DELAYS = (0.5, 1.0, 2.0, 5.0)
#: A task that dies this many times ...
MAX_RESTARTS = 5
#: ... within this many seconds stops the daemon.
RESTART_WINDOW_S = 60.0

TaskFactory = Callable[[], Awaitable[None]]


class Supervisor:
    """Starts named tasks, restarts those that die, and knows which are down."""

    def __init__(
        self,
        on_fatal: Callable[[str], None],
        restart_delays: tuple[float, ...] = RESTART_DELAYS,
        max_restarts: int = MAX_RESTARTS,
        window: float = RESTART_WINDOW_S,
    ) -> None:
        self._on_fatal = on_fatal
        self._delays = restart_delays
        self._max_restarts = max_restarts
        self._window = window
        self._down: set[str] = set()
        self._deaths: dict[str, deque[float]] = {}
        self.restarts: Counter[str] = Counter()

    @property
    def healthy(self) -> bool:
        """No supervised task is down (waiting to be restarted, or given up)."""
        return not self._down

    @property
    def down(self) -> list[str]:
        return sorted(self._down)

    def spawn(
        self, name: str, factory: TaskFactory, *, forever: bool = False
    ) -> asyncio.Task[None]:
        """Run ``factory()`` as task ``name`` until it returns (or, with ``forever``,
        until the daemon stops it), restarting it when it dies."""
        return asyncio.create_task(self._supervise(name, factory, forever), name=name)

    async def _supervise(self, name: str, factory: TaskFactory, forever: bool) -> None:
        while True:
            try:
                await factory()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("task died", task=name)
            else:
                if not forever:
                    return
                log.error("task stopped on its own", task=name)
            delay = self._died(name)
            if delay is None:
                return
            await asyncio.sleep(delay)
            self._down.discard(name)
            log.info("task restarted", task=name, restarts=self.restarts[name])

    def _died(self, name: str) -> float | None:
        """Book a death; the delay before the restart, None when the daemon must stop."""
        self._down.add(name)
        now = time.monotonic()
        deaths = self._deaths.setdefault(name, deque())
        deaths.append(now)
        while deaths and deaths[0] < now - self._window:
            deaths.popleft()
        if len(deaths) > self._max_restarts:
            log.error(
                "task keeps dying; stopping ocsd",
                task=name,
                deaths=len(deaths),
                within_s=self._window,
            )
            self._on_fatal(name)
            return None
        self.restarts[name] += 1
        return self._delays[min(len(deaths), len(self._delays)) - 1]
