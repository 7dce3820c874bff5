"""The ``reliable`` delivery mode: at-least-once delivery of state notifications.

- Every state notification gets a ``webhook-id`` and a row in the outbox (SQLite)
  before its first POST; the row is deleted once the receiver accepted it (2xx). Every
  POST carries ``webhook-id`` and ``webhook-timestamp`` (the same id on each attempt),
  and ``webhook-signature`` when a secret is set.
- Connection errors, timeouts, 408, 429 and 5xx are retried after the next delay of
  ``retry-schedule`` (± 20 % jitter; at least Retry-After when the receiver sends one),
  up to ``max-attempts`` attempts; then, or at once on a 3xx or any other 4xx, the
  notification goes to the dead-letter file and the group's next one goes.
- 410 Gone stops delivery to the URI until the configuration changes (a new notifier);
  what waits stays in the outbox.
- Per group, a state notification waits while an earlier one is retried; a retry is a
  due time on the worker's heap, so other groups go on meanwhile.
- Periodic notifications: only the newest waits per group; a failed one is retried on
  the same schedule unless a newer one replaces it; never stored on disk.
- At most ``RELIABLE_IN_MEMORY`` state notifications are held in memory; beyond that
  they wait in the outbox only and are read back in order as room frees
  (:class:`~ocsd.delivery.backlog.Backlog`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Collection, Sequence
from typing import Any

from ocsd.delivery.backlog import Backlog
from ocsd.delivery.errors import OutboxError
from ocsd.delivery.lanes import Lane
from ocsd.delivery.notifier import (
    SUPERSEDED,
    DeliveryFigures,
    Notification,
    Workers,
)
from ocsd.delivery.outbox import DeadLetters, Outbox, dead_letter_record, next_seq
from ocsd.delivery.signing import new_message_id
from ocsd.delivery.transport import Outcome, message_of
from ocsd.logs import get_logger

log = get_logger("ocsd.delivery")

#: Each backoff delay is multiplied by a random factor in 1 ± this.
JITTER = 0.2
#: Seconds a notification whose dead letter could not be written waits in the outbox.
DEAD_LETTER_RETRY_S = 60.0


class Backoff:
    """When a failed notification is tried again: ``retry-schedule`` (the last delay
    repeats) with ± :data:`JITTER`, at least what Retry-After asked; ``max-attempts``."""

    def __init__(
        self,
        schedule: Sequence[float],
        max_attempts: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.schedule = tuple(schedule) or (1.0,)
        self.max_attempts = max_attempts or len(self.schedule) + 1
        self._rng = rng or random.Random()

    def delay(self, failures: int, retry_after: float | None) -> float:
        """Seconds to wait after the ``failures``-th failure in a row."""
        base = self.schedule[min(failures, len(self.schedule)) - 1]
        delay = base * self._rng.uniform(1 - JITTER, 1 + JITTER)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay


def _failure_fields(notification: Notification, outcome: Outcome, safe_uri: str) -> dict[str, Any]:
    """The fields of the log line of a failed attempt."""
    return {
        "msgid": message_of(notification.kind)[0],
        "reason": outcome.reason,
        "kind": notification.kind,
        "campaign_group": notification.group_name,
        "uri": safe_uri,
        "elapsed_ms": round(outcome.elapsed * 1000, 1),
        "attempt": notification.attempts,
        "webhook_id": notification.message_id,
        **outcome.detail,
    }


class ReliablePolicy:
    """Retries, per-group order, the outbox and the dead letters; see the module doc."""

    mode = "reliable"
    body_when_due = False  # a periodic one may wait behind its group's retries: made fresh

    def __init__(
        self,
        *,
        retry_schedule: Sequence[float] = (1, 2, 5, 10, 30, 60),
        max_attempts: int | None = None,
        outbox_path: str = "ocsd-outbox.sqlite3",
        dead_letter_path: str = "ocsd-deadletters.jsonl",
        rng: random.Random | None = None,
    ) -> None:
        self.backoff = Backoff(retry_schedule, max_attempts, rng)
        self.outbox = Outbox(outbox_path)  # raises OutboxError
        try:
            self.dead_letters = DeadLetters(dead_letter_path)
        except OutboxError:
            self.outbox.close()
            raise
        self._lanes: list[Lane] = []
        self._workers: Workers | None = None
        self._backlog: Backlog | None = None
        self._active = False  # sending starts once the previous notifier is drained
        self._activation: asyncio.Task[None] | None = None
        self._closing = False
        self._gone = False
        self._receiver_down = False  # an attempt got no answer and none answered since

    def bind(self, workers: Workers) -> None:
        self._workers = workers
        self._lanes = [Lane() for _ in range(workers.pool_size)]
        self._backlog = Backlog(self.outbox, self._lanes, workers)

    @property
    def workers(self) -> Workers:
        assert self._workers is not None, "bound by the Notifier"
        return self._workers

    @property
    def backlog(self) -> Backlog:
        assert self._backlog is not None, "bound by the Notifier"
        return self._backlog

    async def start(self, after: asyncio.Task[Any] | None) -> None:
        """Start sending once ``after`` (the predecessor's drain) is done, so a group's
        earlier notifications, in flight on the old pool, leave first."""
        self._activation = asyncio.create_task(self._activate(after), name="ocsd-outbox-load")

    async def _activate(self, after: asyncio.Task[Any] | None) -> None:
        if after is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(after)
        if self._closing:
            return
        stored = self.outbox.count
        self.backlog.refill()
        if stored:
            log.info(
                "outbox loaded: delivering the state notifications stored before",
                stored=stored,
                outbox=self.outbox.path,
                uri=self.workers.safe_uri,
            )
        self._active = True
        for index in range(self.workers.pool_size):
            self.workers.wake(index)

    # -- producing -----------------------------------------------------------------------

    def submit(self, notification: Notification) -> None:
        if notification.kind == "periodic":
            self._submit_periodic(notification)
            return
        notification = Notification(
            "state",
            notification.group_name,
            notification.group_dbid,
            notification.body,
            new_message_id(),
            next_seq(),
            0,
            time.time(),
        )
        self.backlog.store(notification, self._closing)

    def _submit_periodic(self, notification: Notification) -> None:
        notification = Notification(
            "periodic",
            notification.group_name,
            notification.group_dbid,
            notification.body,
            new_message_id(),
        )
        if self._gone:
            self.workers.drop(notification, "delivery stopped (HTTP 410)", True)
            return
        index = notification.group_dbid % self.workers.pool_size
        stale = self._lanes[index].add_periodic(notification)
        if stale is not None:
            self.workers.drop(stale, SUPERSEDED, True)
        self.workers.wake(index)

    def periodic_waiting(self, dbid: int) -> bool:
        return dbid in self._lanes[dbid % len(self._lanes)].periodic

    # -- sending -------------------------------------------------------------------------

    def take(self, index: int, now: float) -> Notification | None:
        if not self._active or self._closing or self._gone:
            return None
        return self.backlog.take(self._lanes[index], now)

    def next_due(self, index: int) -> float | None:
        return self._lanes[index].next_due()

    def settle(self, index: int, notification: Notification, outcome: Outcome, now: float) -> None:
        lane = self._lanes[index]
        if outcome.status is None and outcome.reason is not None:
            self._receiver_down = True
        elif self._receiver_down:
            self._receiver_back(now)
        if outcome.reason is None:
            self._delivered(lane, notification)
            return
        counters = self.workers.counters
        counters.failed[(notification.kind, outcome.reason)] += 1
        fields = _failure_fields(notification, outcome, self.workers.safe_uri)
        if outcome.status == 410:
            self._stop_delivery(notification, fields)
        elif notification.kind == "periodic":
            self._periodic_failed(lane, notification, outcome, now, fields)
        elif outcome.retryable and notification.attempts < self.backoff.max_attempts:
            self._state_retry(lane, notification, outcome, now, fields)
        else:
            why = (
                f"{outcome.reason} after {notification.attempts} attempts"
                if outcome.retryable
                else f"{outcome.reason} (not retried)"
            )
            log.warning("HTTP notification failed", **fields, retry=False)
            self._dead_letter(lane, notification, outcome.reason or "error", why, now)

    def _delivered(self, lane: Lane, notification: Notification) -> None:
        self.workers.counters.sent[notification.kind] += 1
        if notification.kind == "state":
            self.backlog.done(lane, notification)
        else:
            lane.periodic_streak.pop(notification.group_dbid, None)

    def _periodic_failed(
        self,
        lane: Lane,
        notification: Notification,
        outcome: Outcome,
        now: float,
        fields: dict[str, Any],
    ) -> None:
        dbid = notification.group_dbid
        streak = lane.periodic_streak.get(dbid, 0) + 1
        lane.periodic_streak[dbid] = streak
        if not outcome.retryable:
            log.warning("HTTP notification failed", **fields, retry=False)
            return
        delay = self.backoff.delay(streak, outcome.retry_after)
        lane.periodic_failed(notification, now + delay)
        self.workers.counters.retried["periodic"] += 1
        log.warning("HTTP notification failed", **fields, retry_in_s=round(delay, 3))

    def _state_retry(
        self,
        lane: Lane,
        notification: Notification,
        outcome: Outcome,
        now: float,
        fields: dict[str, Any],
    ) -> None:
        if notification.unreachable and outcome.status is not None:
            notification.streak = 0  # it answers now: its backoff starts afresh
        notification.streak += 1
        notification.unreachable = outcome.status is None
        delay = self.backoff.delay(notification.streak, outcome.retry_after)
        self.backlog.set_attempts(notification)
        lane.state_retry(notification.group_dbid, now + delay)
        self.workers.counters.retried["state"] += 1
        log.warning("HTTP notification failed", **fields, retry_in_s=round(delay, 3))

    def _receiver_back(self, now: float) -> None:
        """The receiver answers again after attempts that got no answer at all: retry now
        what waits only because it was unreachable, its backoff started afresh (a head
        whose delay grew to a minute during an outage would otherwise wait that long)."""
        self._receiver_down = False
        expedited = 0
        for index, lane in enumerate(self._lanes):
            expedited += lane.expedite(now)
            self.workers.wake(index)
        if expedited:
            log.info(
                "receiver answers again: retrying now what waited for it",
                state_notifications=expedited,
                uri=self.workers.safe_uri,
            )

    def _dead_letter(
        self, lane: Lane, notification: Notification, reason: str, why: str, now: float
    ) -> None:
        record = dead_letter_record(notification, reason, why, self.workers.safe_uri)
        if not self.dead_letters.append(record):
            # keep it in the outbox rather than lose it; the group stays blocked behind it
            lane.state_retry(notification.group_dbid, now + DEAD_LETTER_RETRY_S)
            return
        self.workers.counters.dead_lettered[reason] += 1
        self.backlog.done(lane, notification)
        log.error(
            "notification dead-lettered",
            reason=reason,
            detail=why,
            campaign_group=notification.group_name,
            webhook_id=notification.message_id,
            attempts=notification.attempts,
            dead_letter_file=self.dead_letters.path,
            uri=self.workers.safe_uri,
        )

    def _stop_delivery(self, notification: Notification, fields: dict[str, Any]) -> None:
        """410 Gone: nothing more goes to this URI until the configuration changes."""
        self._gone = True
        if notification.kind == "state":
            self.backlog.set_attempts(notification)
        self._drop_periodic("delivery stopped (HTTP 410)")
        log.error(
            "HTTP notification failed: the receiver answered 410 Gone; delivery to this URI "
            "stopped until the configuration changes (state notifications wait in the outbox)",
            **fields,
        )

    # -- dead letters --------------------------------------------------------------------

    async def resend(self, message_ids: Sequence[str] | None) -> list[dict[str, Any]]:
        """Take dead letters back into the outbox (all when ``message_ids`` is None).

        Each keeps its ``webhook-id`` and body, starts again at attempt 1, and queues
        behind what already waits for its group.
        """
        taken = await self.dead_letters.take(message_ids)
        self.backlog.take_back(taken, self._closing)
        return taken

    @property
    def problem(self) -> str | None:
        """Why the outbox or the dead-letter file does not work now (None: they do)."""
        error = self.dead_letters.error
        return self.backlog.problem or (error and f"dead-letter file cannot write: {error}")

    # -- figures and stopping ------------------------------------------------------------

    def figures(self, in_flight: Counter[str]) -> DeliveryFigures:
        periodic = sum(len(lane.periodic) for lane in self._lanes) + in_flight["periodic"]
        outbox = self.outbox
        return DeliveryFigures(
            pending=outbox.count + periodic,
            outbox_pending=outbox.count - outbox.unstored,
            dead_letters=self.dead_letters.count,
            stopped=self._gone,
            outbox_unstored=outbox.unstored,
            outbox_writable=outbox.writable,
            dead_letters_writable=self.dead_letters.error is None,
        )

    def hand_over(self, keep: Collection[int]) -> list[Notification]:
        """Nothing: state notifications wait in the outbox for a successor to load it."""
        self._drop_periodic(SUPERSEDED)
        return []

    def close_begins(self, reason: str) -> None:
        """Nothing more is taken; what is undelivered stays in the outbox."""
        self._closing = True
        self.backlog.flush()
        if self._activation is not None and not self._activation.done():
            self._activation.cancel()
        self._drop_periodic(reason)

    def _drop_periodic(self, reason: str) -> None:
        for lane in self._lanes:
            for notification in lane.clear_periodic():
                self.workers.drop(notification, reason, True)

    async def closed(self, abandoned: int, reason: str) -> None:
        if self._activation is not None:
            await asyncio.gather(self._activation, return_exceptions=True)
        lost = self.backlog.close() if self._backlog is not None else self.outbox.close()
        if self.outbox.count - lost:
            log.info(
                "state notifications kept in the outbox for the next start",
                count=self.outbox.count - lost,
                outbox=self.outbox.path,
                uri=self.workers.safe_uri,
            )
