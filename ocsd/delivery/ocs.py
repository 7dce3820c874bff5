"""The ``ocs`` delivery mode (default): OCS's own behaviour, one attempt per body.

docs/contract.md#delivery: no error handling, no retries; nothing touches the disk. State
notifications go before periodic ones; periodic ones are coalesced per group (only the
newest waits, in the place of the one it replaces, so under overload every group is
served in turn and a dead receiver never builds a stale backlog). What does not fit is
dropped, counted and logged.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Collection
from typing import Any

from ocsd.delivery.notifier import (
    SHUTTING_DOWN,
    SUPERSEDED,
    DeliveryFigures,
    Notification,
    Workers,
)
from ocsd.delivery.transport import Outcome, message_of
from ocsd.logs import get_logger

log = get_logger("ocsd.delivery")

#: Most state notifications that may wait per worker before new ones are dropped.
STATE_BACKLOG_PER_WORKER = 10_000


class _Queue:
    """The queue of one worker: its state notifications and its coalesced periodic ones."""

    __slots__ = ("periodic", "state")

    def __init__(self) -> None:
        self.state: deque[Notification] = deque()
        self.periodic: dict[int, Notification] = {}

    def take(self) -> Notification | None:
        if self.state:
            return self.state.popleft()
        if self.periodic:
            dbid = next(iter(self.periodic))
            return self.periodic.pop(dbid)
        return None

    def __len__(self) -> int:
        return len(self.state) + len(self.periodic)


class OcsPolicy:
    """One attempt per body; the outcome is counted and logged, and that is all."""

    mode = "ocs"
    body_when_due = True  # a periodic notification waits at most for a free connection

    _workers: Workers  # set by bind(), before anything else

    def __init__(self) -> None:
        self._queues: list[_Queue] = []
        self._active = True  # False while a reload's previous notifier still sends
        self._activation: asyncio.Task[None] | None = None

    def bind(self, workers: Workers) -> None:
        self._workers = workers
        self._queues = [_Queue() for _ in range(workers.pool_size)]

    async def start(self, after: asyncio.Task[Any] | None) -> None:
        """Sends at once; after a reload (``after``: the previous notifier's retirement),
        once the previous notifier is done: a group's next notification, perhaps handed
        over from it, does not overtake one still in flight there."""
        if after is not None and not after.done():
            self._active = False
            self._activation = asyncio.create_task(self._activate(after), name="ocsd-ocs-after")

    async def _activate(self, after: asyncio.Task[Any]) -> None:
        await asyncio.wait((after,))
        self._active = True
        for index in range(self._workers.pool_size):
            self._workers.wake(index)

    # -- producing -----------------------------------------------------------------------

    def submit(self, notification: Notification) -> None:
        workers = self._workers
        dbid = notification.group_dbid
        index = dbid % workers.pool_size
        queue = self._queues[index]
        if notification.kind == "state":
            if len(queue.state) >= STATE_BACKLOG_PER_WORKER:
                workers.drop(notification, "backlog full", False)
                return
            stale = queue.periodic.pop(dbid, None)
            if stale is not None:
                workers.drop(stale, "superseded by a state notification", True)
            queue.state.append(notification)
        else:
            # a group already waiting keeps its place in the queue (the newest content
            # goes out there): under overload every group is served in turn
            stale = queue.periodic.get(dbid)
            if stale is not None:
                workers.drop(stale, SUPERSEDED, True)
            queue.periodic[dbid] = notification
        workers.wake(index)

    def periodic_waiting(self, dbid: int) -> bool:
        return dbid in self._queues[dbid % len(self._queues)].periodic

    # -- sending -------------------------------------------------------------------------

    def take(self, index: int, now: float) -> Notification | None:
        if not self._active:
            return None
        return self._queues[index].take()

    def next_due(self, index: int) -> float | None:
        return None

    def settle(self, index: int, notification: Notification, outcome: Outcome, now: float) -> None:
        kind = notification.kind
        if outcome.reason is None:
            self._workers.counters.sent[kind] += 1
            return
        self._workers.counters.failed[(kind, outcome.reason)] += 1
        log.warning(
            "HTTP notification failed",
            msgid=message_of(kind)[0],
            reason=outcome.reason,
            kind=kind,
            campaign_group=notification.group_name,
            uri=self._workers.safe_uri,
            elapsed_ms=round(outcome.elapsed * 1000, 1),
            **outcome.detail,
        )

    # -- figures and stopping ------------------------------------------------------------

    def figures(self, in_flight: Counter[str]) -> DeliveryFigures:
        return DeliveryFigures(sum(len(q) for q in self._queues) + in_flight.total())

    def hand_over(self, keep: Collection[int]) -> list[Notification]:
        """The queued state notifications, but those of the groups in ``keep``, taken out
        for a successor; the waiting periodic ones are dropped as superseded."""
        self._drop_periodic(SUPERSEDED)
        moved: list[Notification] = []
        for queue in self._queues:
            kept: deque[Notification] = deque()
            for notification in queue.state:
                (kept if notification.group_dbid in keep else moved).append(notification)
            queue.state = kept
        return moved

    def close_begins(self, reason: str) -> None:
        """Waiting periodic notifications are dropped; queued state ones still go."""
        if self._activation is not None and not self._activation.done():
            self._activation.cancel()  # closing before the previous notifier was done
        self._drop_periodic(reason)

    def _drop_periodic(self, reason: str) -> None:
        for queue in self._queues:
            for notification in queue.periodic.values():
                self._workers.drop(notification, reason, True)
            queue.periodic.clear()

    async def closed(self, abandoned: int, reason: str) -> None:
        if self._activation is not None:
            await asyncio.gather(self._activation, return_exceptions=True)
        unsent = sum(len(q.state) for q in self._queues)
        if abandoned or unsent:
            log.warning(
                "notifications abandoned at shutdown"
                if reason == SHUTTING_DOWN
                else "notifications abandoned by a notifier a reload replaced",
                in_flight=abandoned,
                unsent=unsent,
                reason=reason,
                uri=self._workers.safe_uri,
            )
            self._workers.counters.dropped[("state", reason)] += unsent
