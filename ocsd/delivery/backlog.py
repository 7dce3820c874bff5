"""The state notifications the reliable mode still owes: all in the outbox on disk, and
as many as fit in memory in the workers' lanes, in production order.

A state notification is written to the outbox (SQLite) before its first POST and
deleted once the receiver accepted it or it was dead-lettered, so a crash or a restart
loses none. At most :data:`RELIABLE_IN_MEMORY` are held in the lanes; beyond that they
wait in the outbox only ("spilled") and are read back in order as room frees.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ocsd.delivery.errors import OutboxError
from ocsd.delivery.lanes import Lane
from ocsd.delivery.notifier import Notification, Workers
from ocsd.delivery.outbox import RETRY_WRITE_S, Outbox, Stored, next_seq
from ocsd.logs import get_logger

log = get_logger("ocsd.delivery")

#: Most state notifications held in memory; the rest wait in the outbox only.
RELIABLE_IN_MEMORY = 20_000
#: Most state notifications in the outbox; beyond it new ones are dropped.
OUTBOX_LIMIT = 1_000_000
#: Most state notifications held in memory because the outbox cannot write them;
#: beyond it new ones are dropped (counted: "outbox cannot write").
UNSTORED_LIMIT = RELIABLE_IN_MEMORY
#: Why a state notification was dropped while the outbox could not write.
CANNOT_WRITE = "outbox cannot write"


class Backlog:
    """The outbox and the lanes' share of it; every write is buffered and flushed soon.

    When the outbox cannot write, this says so once (and once when it writes again),
    tries again every :data:`RETRY_WRITE_S`, and keeps what it could not store in memory
    (at most :data:`UNSTORED_LIMIT`): such a notification is not sent until it is stored.
    """

    def __init__(self, outbox: Outbox, lanes: list[Lane], workers: Workers) -> None:
        self.outbox = outbox
        self._lanes = lanes
        self._workers = workers
        self.in_memory = 0  # state notifications held in lanes (including those in flight)
        self.spilled = True  # the outbox may hold rows not in memory (read them first)
        self._loaded_seq = 0  # the highest seq read into memory
        self._flush_soon = False
        self.read_error: str | None = None  # the outbox could not be read (retried)
        self._read_retry_at = 0.0
        self._failing_since: float | None = None  # monotonic time the outbox failed
        self._retry: asyncio.TimerHandle | None = None
        self._write_errors_seen = 0

    @property
    def count(self) -> int:
        return self.outbox.count

    @property
    def problem(self) -> str | None:
        """Why the outbox does not work now (None: it does)."""
        if not self.outbox.writable:
            return f"outbox cannot write: {self.outbox.last_error}"
        if self.read_error is not None:
            return f"outbox cannot be read: {self.read_error}"
        return None

    def commit(self) -> bool:
        """Commit every state notification produced so far; True when all are stored
        (a crash of the process loses none of them from now on): what a 200 promises."""
        self.flush()
        return self.outbox.unstored == 0

    def refusal(self) -> str | None:
        """Why a new state change would not be stored now; None: it would."""
        outbox = self.outbox
        if outbox.closed:
            return "delivery is shutting down"
        if not outbox.writable:
            return (
                f"the outbox {outbox.path} cannot write ({outbox.last_error}); "
                f"{outbox.unstored} state notifications wait in memory to be stored"
            )
        if outbox.count >= OUTBOX_LIMIT:
            return f"the outbox holds {OUTBOX_LIMIT:,} undelivered state notifications"
        return None

    def store(self, notification: Notification, closing: bool) -> None:
        """Record a state notification in the outbox, and in memory if there is room."""
        outbox = self.outbox
        if outbox.closed:
            self._workers.drop(notification, "shutting down", False)
            return
        if outbox.count >= OUTBOX_LIMIT:
            self._workers.drop(notification, "outbox full", False)
            return
        if not outbox.writable and outbox.unstored >= UNSTORED_LIMIT:
            self._workers.drop(notification, CANNOT_WRITE, False)
            return
        assert notification.message_id is not None, "a state notification of the reliable mode"
        outbox.add(
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

    def take_back(self, dead_letters: list[dict[str, Any]], closing: bool) -> None:
        """Dead letters back as state notifications: each keeps its id and body, its
        attempt count starts anew, and it queues behind what waits for its group."""
        for record in dead_letters:
            notification = Notification(
                "state",
                str(record.get("campaign_group", "")),
                record["dbid"],
                record["body"].encode("utf-8"),
                record["id"],
                next_seq(),
                0,
                float(record.get("created", time.time())),
            )
            self.store(notification, closing)
            log.info(
                "dead letter re-sent",
                webhook_id=notification.message_id,
                campaign_group=notification.group_name,
                uri=self._workers.safe_uri,
            )

    def _place(self, notification: Notification) -> None:
        index = notification.group_dbid % self._workers.pool_size
        superseded = self._lanes[index].add_state(notification)
        if superseded is not None:
            self._workers.drop(superseded, "superseded by a state notification", True)
        self.in_memory += 1
        self._loaded_seq = max(self._loaded_seq, notification.seq)
        self._workers.wake(index)

    def take(self, lane: Lane, now: float) -> Notification | None:
        """The lane's next notification that may be sent now, reading the outbox when
        memory runs low. A state notification goes only once its row is committed, and
        every acknowledgement so far too (nothing accepted is sent again after a crash);
        until then its group waits, unsent."""
        notification = lane.take(now, periodic_allowed=not self.spilled)
        if notification is None and self.refill_when_low():
            notification = lane.take(now, periodic_allowed=not self.spilled)
        if notification is not None and notification.kind == "state" and self.outbox.dirty:
            self.flush()  # recorded before it is sent
        outbox = self.outbox
        while (
            notification is not None
            and notification.kind == "state"
            and (notification.seq > outbox.stored_up_to or outbox.acks_pending)
        ):
            lane.state_retry(notification.group_dbid, now + RETRY_WRITE_S)
            notification = lane.take(now, periodic_allowed=not self.spilled)
        return notification

    def refill(self) -> None:
        """Read state notifications that wait only in the outbox into memory, in order."""
        room = RELIABLE_IN_MEMORY - self.in_memory
        if not self.spilled or room <= 0 or time.monotonic() < self._read_retry_at:
            return
        try:
            rows = self.outbox.load(self._loaded_seq, room)
        except OutboxError as exc:
            if self.read_error is None:
                log.error("outbox read failed; tried again until it works", error=str(exc))
            self.read_error = str(exc)
            self._read_retry_at = time.monotonic() + RETRY_WRITE_S
            self._retry_later()
            return
        if self.read_error is not None:
            log.warning("outbox read works again", outbox=self.outbox.path)
            self.read_error = None
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
        if len(rows) < room and self.outbox.unstored == 0:
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

    def flush(self) -> bool:
        """Commit what is buffered; True when all of it is stored."""
        self._flush_soon = False
        outbox = self.outbox
        done = outbox.flush()
        self._workers.counters.outbox_write_errors += outbox.write_errors - self._write_errors_seen
        self._write_errors_seen = outbox.write_errors
        if not outbox.writable:
            if self._failing_since is None:
                self._failing_since = time.monotonic()
                self._cannot_write()
            self._retry_later()
        elif self._failing_since is not None:
            self._writes_again()
        return done

    def _cannot_write(self) -> None:
        log.error(
            "outbox cannot write: state changes through the control API and schedules are "
            "refused (503); state notifications OCS makes on its own wait in memory, unsent, "
            "until they are stored; tried again every "
            f"{RETRY_WRITE_S} s, logged again when it writes",
            outbox=self.outbox.path,
            error=self.outbox.last_error,
            unstored=self.outbox.unstored,
            deletes_unstored=self.outbox.acks_pending,
        )

    def _writes_again(self) -> None:
        assert self._failing_since is not None
        log.warning(
            "outbox writes again",
            outbox=self.outbox.path,
            failed_for_s=round(time.monotonic() - self._failing_since, 3),
            write_errors=self.outbox.write_errors,
            dropped=self._workers.counters.dropped[("state", CANNOT_WRITE)],
        )
        self._failing_since = None
        for index in range(self._workers.pool_size):
            self._workers.wake(index)

    def _retry_later(self) -> None:
        if self._retry is None and not self.outbox.closed:
            self._retry = asyncio.get_running_loop().call_later(RETRY_WRITE_S, self._try_again)

    def _try_again(self) -> None:
        self._retry = None
        self.flush()
        if self.read_error is not None:
            self.refill()

    def close(self) -> int:
        """Stop retrying; commit what can be; how many state notifications are lost."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        lost = self.outbox.close()
        if lost:
            log.error(
                "state notifications lost at the stop: the outbox could not store them",
                lost=lost,
                error=self.outbox.last_error,
                outbox=self.outbox.path,
            )
        return lost
