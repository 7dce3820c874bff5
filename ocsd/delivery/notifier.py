"""Delivery of CampaignGroupState bodies: producing never waits for sending.

``submit`` (a state notification, its body built) and ``due`` (a group's periodic
notification, its body built then in the ``ocs`` mode, when sent in the ``reliable``
one) only queue and return. A fixed set of workers,
one per pooled connection, takes the next notification from the delivery policy, gets its
body, posts it through the :class:`~ocsd.delivery.transport.Transport` and hands the
outcome back to the policy. Every group is served by one worker (``dbid mod pool
size``), so its notifications leave in order.

The two delivery modes (``[ocsd] delivery-mode``) differ only in their policy, behind
:class:`DeliveryPolicy`: :class:`~ocsd.delivery.ocs.OcsPolicy` (one attempt, OCS's own
behaviour) and :class:`~ocsd.delivery.reliable.ReliablePolicy` (retries, outbox, dead
letters). The notifier never reaches into the life cycle: a periodic body comes from
a read-only :data:`BodySource`, and whatever that source or the policy raises is logged
with its traceback, counted, and the worker goes on with the next notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

from ocsd.core.faults import FaultRates
from ocsd.delivery.faults import FaultInjector
from ocsd.delivery.transport import INTERNAL_ERROR, Kind, Outcome, Transport
from ocsd.logs import get_logger

log = get_logger("ocsd.delivery")

#: Seconds between two log lines about dropped notifications of one kind and reason.
DROP_LOG_EVERY_S = 10.0
#: Why a waiting periodic notification was not sent: a newer one took its place.
SUPERSEDED = "superseded by a newer periodic notification"
#: Why what a notifier still held was not sent: the daemon stops ...
SHUTTING_DOWN = "shutting down"
#: ... or a reload replaced the notifier and it could not finish in time.
REPLACED = "replaced by a reload"
#: Seconds a replaced notifier gets beyond one POST timeout per notification it owes.
RETIRE_MARGIN_S = 5.0

#: A group's periodic body at send time: ``dbid -> bytes``; None when the group is no
#: longer loaded (nothing is sent then). Must not change any state of the group.
BodySource = Callable[[int], "bytes | None"]
#: Starts a long-running task: ``spawn(name, coroutine factory)`` -> the task. The service
#: passes its supervisor's, which restarts a worker that dies; alone, a plain task.
Spawn = Callable[[str, Callable[[], Awaitable[None]]], "asyncio.Task[None]"]


@dataclass(slots=True)
class Notification:
    """One notification on its way. A periodic one gets its body from the notifier's body
    source when its group falls due, or (``reliable`` mode) just before the POST; a group
    due again while one waits is counted superseded, nothing made. The fields
    after ``body`` are the delivery policy's (the reliable mode's id, outbox row, attempts
    and backoff state); the ``ocs`` mode leaves them as they are."""

    kind: Kind
    group_name: str
    group_dbid: int
    body: bytes = b""
    message_id: str | None = None  # webhook-id, the same on every attempt (reliable)
    seq: int = 0  # the outbox row of a state notification (reliable)
    attempts: int = 0
    created: float = 0.0
    streak: int = 0  # failures since the last reset: indexes retry-schedule (reliable)
    unreachable: bool = False  # its last attempt got no HTTP answer at all (reliable)


class GroupGaps:
    """Per group, the longest wall time between two accepted notifications (a bounded
    run's report: is every group served in turn?). Loop-time seconds."""

    def __init__(self) -> None:
        self.last: dict[int, float] = {}
        self.longest: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self._window_max = 0.0

    def record(self, dbid: int, name: str, now: float) -> None:
        last = self.last.get(dbid)
        self.last[dbid] = now
        if last is None:
            self.names[dbid] = name
            return
        gap = now - last
        if gap > self.longest.get(dbid, 0.0):
            self.longest[dbid] = gap
        if gap > self._window_max:
            self._window_max = gap

    def take_window_max(self) -> float:
        """The longest gap that ended since the last call."""
        value, self._window_max = self._window_max, 0.0
        return value


@dataclass
class DeliveryCounters:
    """What happened to notifications, by kind; the metrics endpoint reads these."""

    sent: Counter[str] = field(default_factory=Counter)
    failed: Counter[tuple[str, str]] = field(default_factory=Counter)
    dropped: Counter[tuple[str, str]] = field(default_factory=Counter)
    retried: Counter[str] = field(default_factory=Counter)  # attempts planned again, by kind
    dead_lettered: Counter[str] = field(default_factory=Counter)  # by reason
    answers_cut: Counter[str] = field(default_factory=Counter)  # receiver answers, by why
    outbox_write_errors: int = 0  # transactions of the outbox that failed (reliable)
    slowest: dict[str, float] = field(default_factory=dict)  # longest POST, s, by kind
    gaps: GroupGaps | None = None  # kept only for a run's --report
    faults: Counter[str] = field(default_factory=Counter)  # injected on purpose, by kind


@dataclass(frozen=True, slots=True)
class DeliveryFigures:
    """The gauges of delivery at one instant."""

    pending: int  # queued, in flight, or stored for a later attempt
    outbox_pending: int = 0  # state notifications stored in the outbox (reliable)
    dead_letters: int = 0  # in the dead-letter file (reliable)
    stopped: bool = False  # the receiver answered 410 Gone (reliable)
    outbox_unstored: int = 0  # produced, not yet stored: the outbox cannot write (reliable)
    outbox_writable: bool = True  # the outbox's last writes succeeded (reliable)
    dead_letters_writable: bool = True  # the dead-letter file's last write succeeded


@dataclass(frozen=True, slots=True)
class Workers:
    """What a policy may do to the notifier's workers and books."""

    pool_size: int
    counters: DeliveryCounters
    safe_uri: str
    wake: Callable[[int], None]  # a worker has something to do
    drop: Callable[
        [Notification, str, bool], None
    ]  # (notification, reason, quiet): counted, logged


class DeliveryPolicy(Protocol):
    """How notifications wait, which goes next, and what an outcome means."""

    mode: str
    #: A periodic body is made when its group falls due (True), or by the worker just
    #: before its POST (False: it may wait long, e.g. behind a group's retries).
    body_when_due: bool

    def bind(self, workers: Workers) -> None:
        """Called once, before anything else."""

    async def start(self, after: asyncio.Task[Any] | None) -> None:
        """The workers run; ``after`` is the previous notifier's drain (a reload)."""

    def submit(self, notification: Notification) -> None:
        """Queue a notification (the notifier is not closing)."""

    def periodic_waiting(self, dbid: int) -> bool:
        """Whether the group's periodic notification still waits to be sent."""

    def take(self, index: int, now: float) -> Notification | None:
        """Worker ``index``'s next notification, or None: nothing may go now."""

    def next_due(self, index: int) -> float | None:
        """When worker ``index`` has something due (loop time), None: when woken."""

    def settle(self, index: int, notification: Notification, outcome: Outcome, now: float) -> None:
        """What the POST of a taken notification came to."""

    def figures(self, in_flight: Counter[str]) -> DeliveryFigures:
        """The gauges, given the notifications in flight by kind."""

    def hand_over(self, keep: Collection[int]) -> list[Notification]:
        """A reload replaces the notifier: take out the queued state notifications not yet
        taken (each group's in order) for the successor, but those of the groups in
        ``keep``; the waiting periodic ones are dropped as superseded."""

    def close_begins(self, reason: str) -> None:
        """No more work is taken but what the mode still owes before it stops."""

    async def closed(self, abandoned: int, reason: str) -> None:
        """The workers stopped; ``abandoned`` POSTs were cancelled in flight; what was
        not sent is counted dropped for ``reason``."""


class Notifier:
    """Workers posting what a :class:`DeliveryPolicy` hands them through a Transport."""

    def __init__(
        self,
        transport: Transport,
        policy: DeliveryPolicy,
        *,
        source: BodySource | None = None,
        spawn: Spawn | None = None,
        counters: DeliveryCounters | None = None,
        faults: FaultRates | None = None,
    ) -> None:
        self.transport = transport
        self.policy = policy
        self.pool_size = transport.pool_size
        self.counters = counters if counters is not None else DeliveryCounters()
        self.faults = (
            FaultInjector(faults, transport, self.counters.faults)
            if faults is not None and faults.active
            else None
        )
        self._source = source
        self._spawn = spawn
        self._wakeups = [asyncio.Event() for _ in range(self.pool_size)]
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight: Counter[str] = Counter(state=0, periodic=0)
        self._closing = False
        self._close_reason = SHUTTING_DOWN
        self._hurried = asyncio.Event()  # a retiring notifier must stop soon (shutdown)
        self._hurry_grace: float | None = None
        self._drops_unlogged: dict[tuple[str, str], tuple[float, int]] = {}
        policy.bind(
            Workers(self.pool_size, self.counters, transport.safe_uri, self._wake, self._drop)
        )

    @property
    def mode(self) -> str:
        return self.policy.mode

    @property
    def safe_uri(self) -> str:
        return self.transport.safe_uri

    async def start(self, after: asyncio.Task[Any] | None = None) -> None:
        """Open the pool and start the workers. ``after``: the predecessor's drain."""
        await self.transport.open()
        for index in range(self.pool_size):
            name = f"ocsd-sender-{index}"
            work = functools.partial(self._work, index)
            if self._spawn is not None:
                self._tasks.append(self._spawn(name, work))
            else:
                self._tasks.append(asyncio.create_task(work(), name=name))
        await self.policy.start(after)

    # -- figures -------------------------------------------------------------------------

    def figures(self) -> DeliveryFigures:
        return self.policy.figures(self._in_flight)

    @property
    def pending(self) -> int:
        return self.figures().pending

    # -- producing -----------------------------------------------------------------------

    def submit(self, notification: Notification) -> None:
        """Queue a notification without waiting; drop it (counted, logged) if it cannot wait."""
        if self._closing:
            self._drop(notification, self._close_reason, False)
            return
        self.policy.submit(notification)

    def due(self, group_dbid: int, group_name: str) -> bool:
        """A group's periodic notification is due. True when it was queued.

        The periodic tick's path: a group still waiting from the previous interval keeps
        its place and is counted as superseded, without making anything. Otherwise its
        body is made now when the mode says so (``body_when_due``), else by the worker
        just before the POST. Made now, the group's data is still in the CPU caches from
        bringing its simulation up to date: python bench/saturation.py, 1.25 x the
        ceiling, copies of ocsd in the same rounds: 0.676 of the ceiling against 0.559
        with the body made at the POST (bench/FINDINGS-scale.md, phase 3).
        """
        if self._closing:
            notification = Notification("periodic", group_name, group_dbid)
            self._drop(notification, self._close_reason, False)
            return False
        if self.policy.periodic_waiting(group_dbid):
            self.counters.dropped[("periodic", SUPERSEDED)] += 1
            return False
        notification = Notification("periodic", group_name, group_dbid)
        if self.policy.body_when_due:
            body = self._periodic_body(notification)
            if not body:  # the group is gone (None) or its body failed (b"", counted)
                if body is None:
                    self._drop(notification, "group no longer loaded", True)
                return False
            notification.body = body
        self.policy.submit(notification)
        return True

    def _wake(self, index: int) -> None:
        self._wakeups[index].set()

    def _drop(self, notification: Notification, reason: str, quiet: bool) -> None:
        """Count a dropped notification; log it unless ``quiet``, but at most one line per
        kind and reason every :data:`DROP_LOG_EVERY_S` (a flood of drops is one line
        that says how many more there were, not a line each)."""
        key = (notification.kind, reason)
        self.counters.dropped[key] += 1
        if quiet:
            return
        now = time.monotonic()
        logged_at, unlogged = self._drops_unlogged.get(key, (-DROP_LOG_EVERY_S, 0))
        if now - logged_at < DROP_LOG_EVERY_S:
            self._drops_unlogged[key] = (logged_at, unlogged + 1)
            return
        self._drops_unlogged[key] = (now, 0)
        log.warning(
            "notification dropped",
            reason=reason,
            kind=notification.kind,
            campaign_group=notification.group_name,
            uri=self.safe_uri,
            **({"more_since_last_line": unlogged} if unlogged else {}),
            logged_at_most_every_s=DROP_LOG_EVERY_S,
        )

    # -- sending -------------------------------------------------------------------------

    async def _work(self, index: int) -> None:
        """One worker: take, post, settle; until closing leaves nothing to take."""
        wakeup = self._wakeups[index]
        loop = asyncio.get_running_loop()
        policy, transport, in_flight = self.policy, self.transport, self._in_flight
        faults = self.faults
        while True:
            notification = policy.take(index, loop.time())
            if notification is None:
                if self._closing:
                    return
                wakeup.clear()
                due = policy.next_due(index)
                if due is None:  # the usual idle case: no timeout object to make
                    await wakeup.wait()
                    continue
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(due):
                        await wakeup.wait()
                continue
            kind = notification.kind
            in_flight[kind] += 1
            try:
                body = notification.body or self._periodic_body(notification)
                if not body:  # a periodic one whose group is gone (None) or failed (b"")
                    if body is None:
                        self._drop(notification, "group no longer loaded", True)
                    continue
                notification.body = body  # a retry sends the same message
                notification.attempts += 1
                if faults is None:
                    outcome = await transport.post(
                        kind, notification.group_name, body, notification.message_id,
                        notification.attempts,
                    )  # fmt: skip
                    self._settle(index, notification, outcome)
                else:
                    await faults.send(
                        kind, notification.group_dbid, notification.group_name, body,
                        notification.message_id, notification.attempts,
                        functools.partial(self._settle, index, notification),
                    )  # fmt: skip
            except Exception:  # a bug in a policy: this notification is lost, not the worker
                self.counters.failed[(kind, INTERNAL_ERROR)] += 1
                log.exception(
                    "notification failed: internal error",
                    kind=kind,
                    campaign_group=notification.group_name,
                    uri=self.safe_uri,
                )
            finally:
                in_flight[kind] -= 1
            # no yield needed between POSTs: there are as many workers as pooled
            # connections, so a worker never waits for another's connection

    def _settle(self, index: int, notification: Notification, outcome: Outcome) -> None:
        """Book what a POST came to and hand it to the policy."""
        counters = self.counters
        if outcome.answer_cut is not None:
            counters.answers_cut[outcome.answer_cut] += 1
        kind = notification.kind
        if outcome.elapsed > counters.slowest.get(kind, 0.0):
            counters.slowest[kind] = outcome.elapsed
        loop_time = asyncio.get_running_loop().time()
        if counters.gaps is not None and outcome.reason is None:
            counters.gaps.record(notification.group_dbid, notification.group_name, loop_time)
        self.policy.settle(index, notification, outcome, loop_time)

    def _periodic_body(self, notification: Notification) -> bytes | None:
        """The body a periodic notification came without: None if the group is gone, b"" if
        the source failed (logged with its traceback, counted as a failure)."""
        if self._source is None:
            return b""
        try:
            return self._source(notification.group_dbid)
        except Exception:
            self.counters.failed[(notification.kind, INTERNAL_ERROR)] += 1
            log.exception(
                "periodic body could not be made: internal error",
                campaign_group=notification.group_name,
                dbid=notification.group_dbid,
            )
            return b""

    # -- stopping ------------------------------------------------------------------------

    def hand_over(self, keep: Collection[int] = ()) -> list[Notification]:
        """A reload replaces this notifier: its queued state notifications not yet taken,
        each group's in order, for the successor (submit them there before anything
        new), but those of the groups in ``keep`` (the groups the reload removes: they
        go out here, to the URI they were made for). Periodic ones still waiting are
        dropped as superseded; the successor's ticks make new ones. The reliable mode
        hands nothing over: its state notifications wait in the outbox."""
        return self.policy.hand_over(keep)

    async def retire(self) -> None:
        """Close after a reload replaced this notifier: what it still owes (what
        :meth:`hand_over` kept, everything when nothing took over) and its in-flight
        POSTs go out, each within the POST timeout; the deadline allows one timeout per
        notification owed, so it cuts nothing while the receiver answers. Only
        :meth:`hurry` (the daemon stops) cuts it shorter."""
        owed = self.figures().pending
        grace = self.transport.timeout * (owed + 1) + RETIRE_MARGIN_S
        await self.close(grace, reason=REPLACED)

    def hurry(self, grace: float) -> None:
        """The daemon stops: a retiring notifier gets at most ``grace`` seconds more (or
        its POST timeout, if shorter); what it has not sent then is dropped as
        "shutting down"."""
        if self._hurry_grace is not None:
            return
        self._hurry_grace = min(grace, self.transport.timeout)
        asyncio.get_running_loop().call_later(self._hurry_grace, self._hurried.set)

    async def close(self, grace: float | None = None, *, reason: str = SHUTTING_DOWN) -> None:
        """Stop taking work; what the mode still owes and in-flight POSTs get ``grace``
        seconds (default the POST timeout); the rest is cancelled and counted dropped
        for ``reason``."""
        self._closing = True
        self._close_reason = reason
        self.policy.close_begins(reason)
        for wakeup in self._wakeups:
            wakeup.set()
        grace = self.transport.timeout if grace is None else grace
        abandoned = await self._stop_workers(grace)
        if self._hurry_grace is not None:
            self._close_reason = SHUTTING_DOWN
            grace = min(grace, self._hurry_grace)
        if self.faults is not None:
            await self.faults.close(grace)
        await self.policy.closed(abandoned, self._close_reason)
        await self.transport.close()

    async def _stop_workers(self, grace: float) -> int:
        """Let the workers finish within ``grace`` (or until hurried); cancel the rest;
        how many were cut."""
        if not self._tasks:
            return 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        hurried = asyncio.ensure_future(self._hurried.wait())
        running = set(self._tasks)
        try:
            while running and not hurried.done():
                left = deadline - loop.time()
                if left <= 0:
                    break
                done, _ = await asyncio.wait(
                    running | {hurried}, timeout=left, return_when=asyncio.FIRST_COMPLETED
                )
                running -= done
        finally:
            hurried.cancel()
        still_running = [task for task in running if not task.done()]
        for task in still_running:
            task.cancel()
        if still_running:
            await asyncio.wait(still_running)
        return len(still_running)
