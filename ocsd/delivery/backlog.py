"""The state notifications the reliable mode still owes: all in the outbox on disk, and
as many as fit in memory in the workers' lanes, in production order.

A state notification is written to the outbox (SQLite) before its first POST and
deleted once the receiver accepted it or it was dead-lettered, so a crash or a restart
loses none. At most :data:`RELIABLE_IN_MEMORY` are held in the lanes; beyond that they
wait in the outbox only ("spilled") and are read back in order as room frees.
"""

from __future__ import annotations

import asyncio

from ocsd.delivery.errors import OutboxError
from ocsd.delivery.lanes import Lane
from ocsd.delivery.notifier import Notification, Workers
from ocsd.delivery.outbox import Outbox, Stored
from ocsd.logs import get_logger

log = get_logger("ocsd.delivery")

#: Most state notifications held in memory; the rest wait in the outbox only.
RELIABLE_IN_MEMORY = 20_000
#: Most state notifications in the outbox; beyond it new ones are dropped.
OUTBOX_LIMIT = 1_000_000


class Backlog:
    """The outbox and the lanes' share of it; every write is buffered and flushed soon."""

    def __init__(self, outbox: Outbox, lanes: list[Lane], workers: Workers) -> None:
        self.outbox = outbox
        self._lanes = lanes
        self._workers = workers
        self.in_memory = 0  # state notifications held in lanes (including those in flight)
        self.spilled = True  # the outbox may hold rows not in memory (read them first)
        self._loaded_seq = 0  # the highest seq read into memory
        self._flush_soon = False

    @property
    def count(self) -> int:
        return self.outbox.count

    def store(self, notification: Notification, closing: bool) -> None:
        """Record a state notification in the outbox, and in memory if there is room."""
        if self.outbox.closed:
            self._workers.drop(notification, "shutting down", False)
            return
        if self.outbox.count >= OUTBOX_LIMIT:
            self._workers.drop(notification, "outbox full", False)
            return
        assert notification.message_id is not None, "a state notification of the reliable mode"
        self.outbox.add(
            Stored(
                notification.seq,
                notification.message_id,
                notification.group_dbid,
                notification.group_name,
                notification.body,
                notification.attempts,
                notification.created,
            )
        )
        self.flush_soon()
        if self.spilled or closing or self.in_memory >= RELIABLE_IN_MEMORY:
            self.spilled = True  # read back from the outbox, in order, when there is room
            return
        self._place(notification)

    def _place(self, notification: Notification) -> None:
        index = notification.group_dbid % self._workers.pool_size
        superseded = self._lanes[index].add_state(notification)
        if superseded is not None:
            self._workers.drop(superseded, "superseded by a state notification", True)
        self.in_memory += 1
        self._loaded_seq = max(self._loaded_seq, notification.seq)
        self._workers.wake(index)

    def refill(self) -> None:
        """Read state notifications that wait only in the outbox into memory, in order."""
        room = RELIABLE_IN_MEMORY - self.in_memory
        if not self.spilled or room <= 0:
            return
        try:
            rows = self.outbox.load(self._loaded_seq, room)
        except OutboxError as exc:
            log.error("outbox read failed; what it holds waits for the next start", error=str(exc))
            self.spilled = False
            return
        for row in rows:
            self._place(
                Notification(
                    "state",
                    row.group_name,
                    row.dbid,
                    row.body,
                    row.message_id,
                    row.seq,
                    row.attempts,
                    row.created,
                )
            )
        if len(rows) < room:
            self.spilled = False

    def refill_when_low(self) -> bool:
        """Read more from the outbox when memory holds less than half of what it may;
        True when something may have been read."""
        if self.spilled and self.in_memory < RELIABLE_IN_MEMORY // 2:
            self.refill()
            return True
        return False

    def done(self, lane: Lane, notification: Notification) -> None:
        """The head of its group left for good (accepted or dead-lettered)."""
        self.outbox.delete(notification.seq)
        self.flush_soon()
        self.in_memory -= 1
        lane.state_done(notification.group_dbid)

    def set_attempts(self, notification: Notification) -> None:
        self.outbox.set_attempts(notification.seq, notification.attempts)
        self.flush_soon()

    def flush_soon(self) -> None:
        if not self._flush_soon:
            self._flush_soon = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._flush_soon = False
        if not self.outbox.flush():
            log.error(
                "outbox write failed; undelivered state notifications may be lost at a crash",
                outbox=self.outbox.path,
                error=self.outbox.last_error,
            )
