"""Delivery of CampaignGroupState bodies through a bounded aiohttp pool.

Producing never waits for sending. ``submit`` only puts a notification in a worker's
queue and returns. A fixed set of workers (one per pooled connection) posts them.
Every group is served by one worker (``dbid mod pool size``), so its notifications
leave in order. State notifications go before periodic ones, and periodic ones are
coalesced per group: only the newest waits, so a dead receiver never builds a stale
backlog. What does not fit is dropped, counted and logged.

Two delivery modes (``[ocsd] delivery-mode``):

- :class:`Notifier`, ``ocs`` (default): OCS's own behaviour, one attempt per body, no
  retry (spec section 1). Nothing touches the disk.
- :class:`ReliableNotifier`, ``reliable``: at-least-once delivery of state
  notifications, with retries on a backoff schedule, an outbox on disk and a
  dead-letter file. See its docstring.

Both add Standard Webhooks headers when ``[ocsd] webhook-secret`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import random
import ssl
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
from prometheus_client import Histogram
from yarl import URL

from ocsd.delivery.outbox import DeadLetters, Outbox, OutboxError, Stored, next_seq
from ocsd.delivery.signing import Signer, new_message_id
from ocsd.logs import get_logger, trace_lines
from ocsd.logs.redact import redact_uri

Kind = Literal["state", "periodic"]

MSG_STATE = 81000
MSG_PERIODIC = 81001
TEXT = {
    "state": "Sending HTTP status notification CampaignGroupState for Campaign Group {name} to {uri}",
    "periodic": (
        "Sending periodic HTTP status notification CampaignGroupState for Campaign Group {name} to {uri}"
    ),
}
#: Why a waiting periodic notification was not sent: a newer one took its place.
SUPERSEDED = "superseded by a newer periodic notification"
#: Most state notifications that may wait per worker before new ones are dropped (ocs mode).
STATE_BACKLOG_PER_WORKER = 10_000
#: Reliable mode: most state notifications held in memory; the rest wait in the outbox only.
RELIABLE_IN_MEMORY = 20_000
#: Reliable mode: most state notifications in the outbox; beyond it new ones are dropped.
OUTBOX_LIMIT = 1_000_000
#: Reliable mode: the longest Retry-After honoured, in seconds.
RETRY_AFTER_CAP = 3600.0
#: Reliable mode: each backoff delay is multiplied by a random factor in 1 ± this.
JITTER = 0.2
#: HTTP statuses retried in reliable mode (besides every 5xx).
RETRIED_STATUSES = frozenset({408, 429})

log = get_logger("ocsd.delivery.notifier")


#: Builds a group's periodic body when it is sent: ``dbid -> bytes``, None when the
#: group is no longer loaded (nothing is sent then).
BodyBuilder = Callable[[int], "bytes | None"]


@dataclass(slots=True)
class Notification:
    """One notification to send. A periodic one may come with an empty body: the
    notifier's body builder makes it just before the POST (never built to be dropped)."""

    kind: Kind
    group_name: str
    group_dbid: int
    body: bytes = b""


@dataclass
class DeliveryCounters:
    """What happened to notifications, by kind; the metrics endpoint reads these."""

    sent: Counter[str] = field(default_factory=Counter)
    failed: Counter[tuple[str, str]] = field(default_factory=Counter)
    dropped: Counter[tuple[str, str]] = field(default_factory=Counter)
    retried: Counter[str] = field(default_factory=Counter)  # attempts planned again, by kind
    dead_lettered: Counter[str] = field(default_factory=Counter)  # by reason


@dataclass(slots=True)
class Outcome:
    """The result of one POST: ``reason`` is None when the receiver accepted it (2xx)."""

    reason: str | None
    detail: dict[str, Any]
    status: int | None = None
    retry_after: float | None = None
    elapsed: float = 0.0

    @property
    def retryable(self) -> bool:
        """Worth another attempt: no answer, or 408, 429, 5xx."""
        if self.status is None:
            return True
        return self.status in RETRIED_STATUSES or self.status >= 500


def ssl_context(ca_file: str | None) -> ssl.SSLContext | None:
    """The system's trusted CAs plus ``ca_file`` (a PEM bundle); None: aiohttp's default."""
    if not ca_file:
        return None
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cafile=ca_file)
    except (ssl.SSLError, OSError, ValueError) as exc:  # changed since it was validated
        raise OutboxError(f"ca-file {ca_file}: cannot load it: {exc}") from None
    return context


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return min(float(text), RETRY_AFTER_CAP) if len(text) < 12 else RETRY_AFTER_CAP
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


class _Worker:
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


class Notifier:
    """Posts bodies to one URI through a connection pool of ``pool_size`` connections.

    The ``ocs`` delivery mode: one attempt per body, no retry.
    """

    mode = "ocs"

    def __init__(
        self,
        uri: str,
        timeout: float,
        pool_size: int,
        latency: Histogram | None = None,
        *,
        signer: Signer | None = None,
        ca_file: str | None = None,
        builder: BodyBuilder | None = None,
    ) -> None:
        self.uri = uri
        self._url = URL(uri, encoded=False)
        self._builder = builder
        self.safe_uri = redact_uri(uri)
        self.host = urlsplit(uri).hostname or ""
        self.timeout = timeout
        self.pool_size = pool_size
        self.counters = DeliveryCounters()
        self._signer = signer
        self._ssl = ssl_context(ca_file)
        self._queues = [_Worker() for _ in range(pool_size)]
        self._wakeups = [asyncio.Event() for _ in range(pool_size)]
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight = 0
        self._closing = False
        self._latency = (
            {kind: latency.labels(kind) for kind in ("state", "periodic")} if latency else {}
        )

    async def start(self, after: asyncio.Task[Any] | None = None) -> None:
        """Open the pool and start the workers. ``after``: the predecessor's drain (a
        reload); the ocs mode does not wait for it, as OCS would not."""
        connector = aiohttp.TCPConnector(
            limit=self.pool_size,
            limit_per_host=self.pool_size,
            ssl=self._ssl if self._ssl is not None else True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            headers={"Content-Type": "application/json"},
            skip_auto_headers=("User-Agent",),
            raise_for_status=False,
        )
        self._tasks = [
            asyncio.create_task(self._work(index), name=f"ocsd-sender-{index}")
            for index in range(self.pool_size)
        ]

    # -- figures -------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return sum(len(q) for q in self._queues) + self._in_flight

    @property
    def outbox_pending(self) -> int:
        return 0

    @property
    def dead_letter_count(self) -> int:
        return 0

    @property
    def stopped(self) -> bool:
        """True when delivery has stopped for good on this notifier (reliable: HTTP 410)."""
        return False

    # -- producing -----------------------------------------------------------------------

    def submit(self, notification: Notification) -> None:
        """Queue a notification without waiting; drop it (counted, logged) if it cannot wait."""
        if self._closing:
            self._drop(notification, "shutting down")
            return
        index = notification.group_dbid % self.pool_size
        queue = self._queues[index]
        if notification.kind == "state":
            if len(queue.state) >= STATE_BACKLOG_PER_WORKER:
                self._drop(notification, "backlog full")
                return
            stale = queue.periodic.pop(notification.group_dbid, None)
            if stale is not None:
                self._drop(stale, "superseded by a state notification", quiet=True)
            queue.state.append(notification)
        else:
            # a group already waiting keeps its place in the queue (the newest content
            # goes out there): under overload every group is served in turn
            stale = queue.periodic.get(notification.group_dbid)
            if stale is not None:
                self._drop(stale, SUPERSEDED, quiet=True)
            queue.periodic[notification.group_dbid] = notification
        self._wakeups[index].set()

    def due(self, group_dbid: int, group_name: str) -> None:
        """A group's periodic notification is due; its body is built when it is sent.

        The periodic tick's path: a group still waiting from the previous interval keeps
        its place and is counted as superseded, without building anything.
        """
        queue = self._queues[group_dbid % self.pool_size]
        if group_dbid in queue.periodic and not self._closing:
            self.counters.dropped[("periodic", SUPERSEDED)] += 1
            return
        self.submit(Notification("periodic", group_name, group_dbid))

    def _drop(self, notification: Notification, reason: str, quiet: bool = False) -> None:
        self.counters.dropped[(notification.kind, reason)] += 1
        if not quiet:
            log.warning(
                "notification dropped",
                reason=reason,
                kind=notification.kind,
                campaign_group=notification.group_name,
                uri=self.safe_uri,
            )

    # -- sending -------------------------------------------------------------------------

    async def _work(self, index: int) -> None:
        queue, wakeup = self._queues[index], self._wakeups[index]
        while True:
            notification = queue.take()
            if notification is None:
                if self._closing:
                    return
                wakeup.clear()
                await wakeup.wait()
                continue
            self._in_flight += 1
            try:
                await self._post(notification)
            finally:
                self._in_flight -= 1
            # no yield needed between POSTs: there are as many workers as pooled
            # connections, so a worker never waits for another's connection

    def _body(self, kind: Kind, dbid: int, body: bytes) -> bytes | None:
        """The body to send: as given, or built now for a periodic notification."""
        if body or kind != "periodic" or self._builder is None:
            return body
        return self._builder(dbid)

    async def _post(self, notification: Notification) -> None:
        """One attempt, OCS's way: the outcome is counted and logged, and that is all."""
        kind = notification.kind
        body = self._body(kind, notification.group_dbid, notification.body)
        if body is None:
            self._drop(notification, "group no longer loaded", quiet=True)
            return
        headers = self._signer.headers(new_message_id(), body) if self._signer is not None else None
        trace_lines.write(
            MSG_STATE if kind == "state" else MSG_PERIODIC,
            TEXT[kind],
            notification.group_name,
            self.safe_uri,
        )
        started = time.perf_counter()
        failure = await self._send(body, headers)
        elapsed = time.perf_counter() - started
        if self._latency:
            self._latency[kind].observe(elapsed)
        if failure is None:
            self.counters.sent[kind] += 1
            return
        reason = failure.reason or "error"
        self.counters.failed[(kind, reason)] += 1
        log.warning(
            "HTTP notification failed",
            msgid=MSG_STATE if kind == "state" else MSG_PERIODIC,
            reason=reason,
            kind=kind,
            campaign_group=notification.group_name,
            uri=self.safe_uri,
            elapsed_ms=round(elapsed * 1000, 1),
            **failure.detail,
        )

    def _log_sending(self, kind: Kind, group_name: str, **extra: Any) -> None:
        trace_lines.write(
            MSG_STATE if kind == "state" else MSG_PERIODIC,
            TEXT[kind],
            group_name,
            self.safe_uri,
            **extra,
        )

    async def _attempt(self, kind: Kind, body: bytes, headers: dict[str, str] | None) -> Outcome:
        """POST ``body`` once, timed; the outcome (``reason`` None: accepted)."""
        started = time.perf_counter()
        failure = await self._send(body, headers)
        elapsed = time.perf_counter() - started
        if self._latency:
            self._latency[kind].observe(elapsed)
        if failure is None:
            return Outcome(None, {}, elapsed=elapsed)
        failure.elapsed = elapsed
        return failure

    async def _send(self, body: bytes, headers: dict[str, str] | None) -> Outcome | None:
        """POST ``body`` once: None when accepted (2xx), else why not. Never raises for
        network trouble."""
        assert self._session is not None
        try:
            async with self._session.post(
                self._url, data=body, headers=headers, allow_redirects=False
            ) as response:
                await response.read()
                status = response.status
                if 200 <= status < 300:
                    return None
                detail: dict[str, Any] = {}
                if 300 <= status < 400:
                    detail["note"] = "redirects are not followed"
                retry_after = (
                    retry_after_seconds(response.headers.get("Retry-After"))
                    if status in (429, 503)
                    else None
                )
                return Outcome(f"HTTP {status}", detail, status, retry_after)
        except TimeoutError:
            return Outcome("timeout", {"timeout_s": self.timeout})
        except aiohttp.ClientConnectorCertificateError as exc:
            return Outcome(
                "TLS certificate not trusted",
                {
                    "host": self.host,
                    "error": str(exc.certificate_error),
                    "hint": "set [ocsd] ca-file to the PEM file of the CA that signed it",
                },
            )
        except aiohttp.ClientSSLError as exc:
            error = f"{type(exc).__name__}: {exc}".replace(self.uri, self.safe_uri)
            return Outcome("TLS error", {"host": self.host, "error": error})
        except aiohttp.ClientConnectorError as exc:
            reason = (
                "connection refused"
                if isinstance(exc.os_error, ConnectionRefusedError)
                else "connect error"
            )
            return Outcome(reason, {"error": exc.strerror or type(exc.os_error).__name__})
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {exc}".replace(self.uri, self.safe_uri)
            return Outcome("connection error", {"error": error})

    # -- stopping ------------------------------------------------------------------------

    async def _stop_workers(self, grace: float | None) -> int:
        """Let the workers finish within ``grace`` (default the POST timeout); cancel the rest.

        Returns how many were still running (each holding an in-flight POST).
        """
        if not self._tasks:
            return 0
        _done, still_running = await asyncio.wait(
            self._tasks, timeout=self.timeout if grace is None else grace
        )
        for task in still_running:
            task.cancel()
        if still_running:
            await asyncio.wait(still_running)
        return len(still_running)

    async def close(self, grace: float | None = None) -> None:
        """Stop taking work; let queued state and in-flight POSTs finish within ``grace``."""
        self._closing = True
        for queue in self._queues:
            for notification in queue.periodic.values():
                self._drop(notification, "shutting down", quiet=True)
            queue.periodic.clear()
        for wakeup in self._wakeups:
            wakeup.set()
        in_flight = await self._stop_workers(grace)
        if in_flight:
            unsent = sum(len(q.state) for q in self._queues)
            log.warning(
                "notifications abandoned at shutdown",
                in_flight=in_flight,
                unsent=unsent,
                uri=self.safe_uri,
            )
            self.counters.dropped[("state", "shutting down")] += unsent
        if self._session is not None:
            await self._session.close()


# -- the reliable mode ---------------------------------------------------------------------


@dataclass(slots=True)
class Envelope:
    """A notification on its way in reliable mode, with its id and attempt count."""

    kind: Kind
    group_name: str
    group_dbid: int
    body: bytes
    message_id: str
    seq: int = 0  # the outbox row of a state notification; 0 for periodic ones
    attempts: int = 0
    created: float = 0.0
    streak: int = 0  # failures since the last reset: indexes retry-schedule
    unreachable: bool = False  # its last attempt got no HTTP answer at all


class _Lane:
    """The work of one reliable worker: per-group state queues, retry timers, periodic slots.

    A group with state notifications waiting is in exactly one place: ``ready`` (its
    head may be sent now), in flight (taken by the worker), or ``waiting`` (its head
    failed and is due again at a time on the ``timers`` heap). Its later notifications
    stay behind the head, so they leave in order; other groups are not held up.

    A group's periodic notification (the newest only) may go when the group has no
    state notification waiting (it is newer than them) and is not held back by a
    retry of an earlier periodic one.
    """

    __slots__ = (
        "groups",
        "periodic",
        "periodic_hold",
        "periodic_ready",
        "periodic_streak",
        "ready",
        "tie",
        "timers",
        "waiting",
    )

    def __init__(self) -> None:
        self.groups: dict[int, deque[Envelope]] = {}
        self.ready: deque[int] = deque()
        self.waiting: dict[int, float] = {}
        self.timers: list[tuple[float, int, int, bool]] = []  # (due, tie, dbid, is_state)
        self.tie = itertools.count()
        self.periodic: dict[int, Envelope] = {}
        self.periodic_ready: dict[int, None] = {}
        self.periodic_hold: dict[int, float] = {}
        self.periodic_streak: dict[int, int] = {}

    def state_count(self) -> int:
        return sum(len(q) for q in self.groups.values())

    def add_state(self, envelope: Envelope) -> Envelope | None:
        """Queue a state notification; returns the periodic one it supersedes, if any."""
        dbid = envelope.group_dbid
        queue = self.groups.get(dbid)
        if queue is None:
            self.groups[dbid] = deque((envelope,))
            self.ready.append(dbid)
        else:
            queue.append(envelope)
        self.periodic_ready.pop(dbid, None)
        return self.periodic.pop(dbid, None)

    def add_periodic(self, envelope: Envelope) -> Envelope | None:
        """Keep the newest periodic notification of a group, in the place of the one it
        replaces (so every group is served in turn); returns the replaced one."""
        dbid = envelope.group_dbid
        stale = self.periodic.get(dbid)
        self.periodic[dbid] = envelope
        if dbid not in self.groups and dbid not in self.periodic_hold:
            self.periodic_ready[dbid] = None
        return stale

    def take(self, now: float, periodic_allowed: bool) -> Envelope | None:
        self._expire(now)
        if self.ready:
            return self.groups[self.ready.popleft()][0]
        if periodic_allowed and self.periodic_ready:
            dbid = next(iter(self.periodic_ready))
            del self.periodic_ready[dbid]
            return self.periodic.pop(dbid)
        return None

    def _expire(self, now: float) -> None:
        while self.timers and self.timers[0][0] <= now:
            due, _tie, dbid, is_state = heapq.heappop(self.timers)
            if is_state:
                if self.waiting.get(dbid) == due:
                    del self.waiting[dbid]
                    self.ready.append(dbid)
            elif self.periodic_hold.get(dbid) == due:
                del self.periodic_hold[dbid]
                if dbid in self.periodic and dbid not in self.groups:
                    self.periodic_ready[dbid] = None

    def next_due(self) -> float | None:
        return self.timers[0][0] if self.timers else None

    def state_done(self, dbid: int) -> None:
        """The head of the group left (delivered or dead-lettered): the next one may go."""
        queue = self.groups[dbid]
        queue.popleft()
        if queue:
            self.ready.append(dbid)
            return
        del self.groups[dbid]
        if dbid in self.periodic and dbid not in self.periodic_hold:
            self.periodic_ready[dbid] = None

    def state_retry(self, dbid: int, due: float) -> None:
        self.waiting[dbid] = due
        heapq.heappush(self.timers, (due, next(self.tie), dbid, True))

    def periodic_failed(self, envelope: Envelope, due: float) -> None:
        """Hold the group's periodic notifications until ``due``; retry this one unless a
        newer one came meanwhile (or a state notification superseded it)."""
        dbid = envelope.group_dbid
        self.periodic_hold[dbid] = due
        heapq.heappush(self.timers, (due, next(self.tie), dbid, False))
        self.periodic_ready.pop(dbid, None)
        if dbid not in self.periodic and dbid not in self.groups:
            self.periodic[dbid] = envelope

    def clear_periodic(self) -> list[Envelope]:
        dropped = list(self.periodic.values())
        self.periodic.clear()
        self.periodic_ready.clear()
        return dropped


class ReliableNotifier(Notifier):
    """The ``reliable`` delivery mode: at-least-once delivery of state notifications.

    - Every state notification gets a ``webhook-id`` and a row in the outbox (SQLite)
      before its first POST; the row is deleted once the receiver accepted it (2xx).
      Every POST carries ``webhook-id`` and ``webhook-timestamp`` (the same id on each
      attempt), and ``webhook-signature`` when a secret is set.
    - Connection errors, timeouts, 408, 429 and 5xx are retried after the next delay
      of ``retry-schedule`` (± 20 % jitter; at least Retry-After when the receiver sends
      one), up to ``max-attempts`` attempts; then, or at once on a 3xx or any other
      4xx, the notification goes to the dead-letter file and the group's next one goes.
    - 410 Gone stops delivery to the URI until the configuration changes (a new
      notifier); what waits stays in the outbox.
    - Per group, a state notification waits while an earlier one is retried; a retry
      is a due time on the worker's heap, so other groups go on meanwhile.
    - Periodic notifications: only the newest waits per group; a failed one is retried
      on the same schedule unless a newer one replaces it; never stored on disk.
    - At most ``RELIABLE_IN_MEMORY`` state notifications are held in memory; beyond
      that they wait in the outbox only and are read back in order as room frees.
    """

    mode = "reliable"

    def __init__(
        self,
        uri: str,
        timeout: float,
        pool_size: int,
        latency: Histogram | None = None,
        *,
        signer: Signer | None = None,
        ca_file: str | None = None,
        retry_schedule: Sequence[float] = (1, 2, 5, 10, 30, 60),
        max_attempts: int | None = None,
        outbox_path: str = "ocsd-outbox.sqlite3",
        dead_letter_path: str = "ocsd-deadletters.jsonl",
        rng: random.Random | None = None,
        builder: BodyBuilder | None = None,
    ) -> None:
        super().__init__(
            uri, timeout, pool_size, latency, signer=signer, ca_file=ca_file, builder=builder
        )
        self.retry_schedule = tuple(retry_schedule) or (1.0,)
        self.max_attempts = max_attempts or len(self.retry_schedule) + 1
        self.outbox = Outbox(outbox_path)  # raises OutboxError
        try:
            self.dead_letters = DeadLetters(dead_letter_path)
        except OutboxError:
            self.outbox.close()
            raise
        self._rng = rng or random.Random()
        self._lanes = [_Lane() for _ in range(pool_size)]
        self._active = asyncio.Event()
        self._activation: asyncio.Task[None] | None = None
        self._in_memory = 0  # state envelopes held in lanes (including those in flight)
        self._spilled = True  # the outbox may hold rows not in memory (read them first)
        self._loaded_seq = 0  # the highest seq read into memory
        self._gone = False
        self._receiver_down = False  # an attempt got no answer and none answered since
        self._flush_soon = False
        self._periodic_in_flight = 0

    async def start(self, after: asyncio.Task[Any] | None = None) -> None:
        """Open the pool; start sending once ``after`` (the predecessor's drain) is done,
        so a group's earlier notifications, in flight on the old pool, leave first."""
        await super().start()
        self._activation = asyncio.create_task(self._activate(after), name="ocsd-outbox-load")

    async def _activate(self, after: asyncio.Task[Any] | None) -> None:
        if after is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(after)
        if self._closing:
            return
        stored = self.outbox.count
        self._refill()
        if stored:
            log.info(
                "outbox loaded: delivering the state notifications stored before",
                stored=stored,
                outbox=self.outbox.path,
                uri=self.safe_uri,
            )
        self._active.set()
        for wakeup in self._wakeups:
            wakeup.set()

    # -- figures -------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        periodic = sum(len(lane.periodic) for lane in self._lanes) + self._periodic_in_flight
        return self.outbox.count + periodic

    @property
    def outbox_pending(self) -> int:
        return self.outbox.count

    @property
    def dead_letter_count(self) -> int:
        return self.dead_letters.count

    @property
    def stopped(self) -> bool:
        return self._gone

    # -- producing -----------------------------------------------------------------------

    def submit(self, notification: Notification) -> None:
        if notification.kind == "periodic":
            self._submit_periodic(notification)
            return
        envelope = Envelope(
            "state",
            notification.group_name,
            notification.group_dbid,
            notification.body,
            new_message_id(),
            next_seq(),
            0,
            time.time(),
        )
        self._store(envelope)

    def _store(self, envelope: Envelope) -> None:
        """Record a state notification in the outbox, and in memory if there is room."""
        if self.outbox.closed:
            self._drop_envelope(envelope, "shutting down")
            return
        if self.outbox.count >= OUTBOX_LIMIT:
            self._drop_envelope(envelope, "outbox full")
            return
        self.outbox.add(
            Stored(
                envelope.seq,
                envelope.message_id,
                envelope.group_dbid,
                envelope.group_name,
                envelope.body,
                envelope.attempts,
                envelope.created,
            )
        )
        self._schedule_flush()
        if self._spilled or self._closing or self._in_memory >= RELIABLE_IN_MEMORY:
            self._spilled = True  # read back from the outbox, in order, when there is room
            return
        self._place(envelope)

    def _place(self, envelope: Envelope) -> None:
        index = envelope.group_dbid % self.pool_size
        superseded = self._lanes[index].add_state(envelope)
        if superseded is not None:
            self._drop_envelope(superseded, "superseded by a state notification", quiet=True)
        self._in_memory += 1
        self._loaded_seq = max(self._loaded_seq, envelope.seq)
        self._wakeups[index].set()

    def _submit_periodic(self, notification: Notification) -> None:
        envelope = Envelope(
            "periodic",
            notification.group_name,
            notification.group_dbid,
            notification.body,
            new_message_id(),
        )
        if self._closing:
            self._drop_envelope(envelope, "shutting down")
            return
        if self._gone:
            self._drop_envelope(envelope, "delivery stopped (HTTP 410)", quiet=True)
            return
        index = notification.group_dbid % self.pool_size
        stale = self._lanes[index].add_periodic(envelope)
        if stale is not None:
            self._drop_envelope(stale, SUPERSEDED, quiet=True)
        self._wakeups[index].set()

    def _drop_envelope(self, envelope: Envelope, reason: str, quiet: bool = False) -> None:
        self._drop(
            Notification(envelope.kind, envelope.group_name, envelope.group_dbid, envelope.body),
            reason,
            quiet,
        )

    def _refill(self) -> None:
        """Read state notifications that wait only in the outbox into memory, in order."""
        room = RELIABLE_IN_MEMORY - self._in_memory
        if not self._spilled or room <= 0:
            return
        try:
            rows = self.outbox.load(self._loaded_seq, room)
        except OutboxError as exc:
            log.error("outbox read failed; what it holds waits for the next start", error=str(exc))
            self._spilled = False
            return
        for row in rows:
            self._place(
                Envelope(
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
            self._spilled = False

    def _schedule_flush(self) -> None:
        if not self._flush_soon:
            self._flush_soon = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_soon = False
        if not self.outbox.flush():
            log.error(
                "outbox write failed; undelivered state notifications may be lost at a crash",
                outbox=self.outbox.path,
                error=self.outbox.last_error,
            )

    # -- sending -------------------------------------------------------------------------

    async def _work(self, index: int) -> None:
        lane, wakeup = self._lanes[index], self._wakeups[index]
        loop = asyncio.get_running_loop()
        await self._active.wait()
        while not self._closing and not self._gone:
            envelope = lane.take(loop.time(), periodic_allowed=not self._spilled)
            if envelope is None:
                if self._spilled and self._in_memory < RELIABLE_IN_MEMORY // 2:
                    self._refill()
                    continue
                wakeup.clear()
                due = lane.next_due()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(due):
                        await wakeup.wait()
                continue
            self._in_flight += 1
            if envelope.kind == "periodic":
                self._periodic_in_flight += 1
            try:
                await self._deliver(lane, envelope, loop.time)
            finally:
                self._in_flight -= 1
                if envelope.kind == "periodic":
                    self._periodic_in_flight -= 1
            await asyncio.sleep(0)

    async def _deliver(self, lane: _Lane, envelope: Envelope, clock: Any) -> None:
        if envelope.kind == "state" and self.outbox.dirty:
            self._flush()  # recorded before it is sent
        body = self._body(envelope.kind, envelope.group_dbid, envelope.body)
        if body is None:
            self._drop_envelope(envelope, "group no longer loaded", quiet=True)
            return
        envelope.body = body  # a retry sends the same message
        envelope.attempts += 1
        if self._signer is not None:
            headers = self._signer.headers(envelope.message_id, envelope.body)
        else:  # unsigned, the id still lets the receiver recognise a repeated message
            headers = {
                "webhook-id": envelope.message_id,
                "webhook-timestamp": str(int(time.time())),
            }
        self._log_sending(
            envelope.kind,
            envelope.group_name,
            attempt=envelope.attempts,
            webhook_id=envelope.message_id,
        )
        outcome = await self._attempt(envelope.kind, envelope.body, headers)
        if outcome.status is None and outcome.reason is not None:
            self._receiver_down = True
        elif self._receiver_down:
            self._receiver_back(clock())
        if outcome.reason is None:
            self.counters.sent[envelope.kind] += 1
            if envelope.kind == "state":
                self.outbox.delete(envelope.seq)
                self._schedule_flush()
                self._in_memory -= 1
                lane.state_done(envelope.group_dbid)
            else:
                lane.periodic_streak.pop(envelope.group_dbid, None)
            return
        self.counters.failed[(envelope.kind, outcome.reason)] += 1
        fields: dict[str, Any] = {
            "msgid": MSG_STATE if envelope.kind == "state" else MSG_PERIODIC,
            "reason": outcome.reason,
            "kind": envelope.kind,
            "campaign_group": envelope.group_name,
            "uri": self.safe_uri,
            "elapsed_ms": round(outcome.elapsed * 1000, 1),
            "attempt": envelope.attempts,
            "webhook_id": envelope.message_id,
            **outcome.detail,
        }
        if outcome.status == 410:
            self._stop_delivery(envelope, fields)
            return
        if envelope.kind == "periodic":
            streak = lane.periodic_streak.get(envelope.group_dbid, 0) + 1
            lane.periodic_streak[envelope.group_dbid] = streak
            if not outcome.retryable:
                log.warning("HTTP notification failed", **fields, retry=False)
                return
            delay = self._delay(streak, outcome.retry_after)
            lane.periodic_failed(envelope, clock() + delay)
            self.counters.retried["periodic"] += 1
            log.warning("HTTP notification failed", **fields, retry_in_s=round(delay, 3))
            return
        if outcome.retryable and envelope.attempts < self.max_attempts:
            if envelope.unreachable and outcome.status is not None:
                envelope.streak = 0  # it answers now: its backoff starts afresh
            envelope.streak += 1
            envelope.unreachable = outcome.status is None
            delay = self._delay(envelope.streak, outcome.retry_after)
            self.outbox.set_attempts(envelope.seq, envelope.attempts)
            self._schedule_flush()
            lane.state_retry(envelope.group_dbid, clock() + delay)
            self.counters.retried["state"] += 1
            log.warning("HTTP notification failed", **fields, retry_in_s=round(delay, 3))
            return
        why = (
            f"{outcome.reason} after {envelope.attempts} attempts"
            if outcome.retryable
            else f"{outcome.reason} (not retried)"
        )
        log.warning("HTTP notification failed", **fields, retry=False)
        self._dead_letter(lane, envelope, outcome.reason, why)

    def _receiver_back(self, now: float) -> None:
        """The receiver answers again after attempts that got no answer at all: retry now
        what waits only because it was unreachable, its backoff started afresh (a head
        whose delay grew to a minute during an outage would otherwise wait that long)."""
        self._receiver_down = False
        expedited = 0
        for index, lane in enumerate(self._lanes):
            for dbid, due in list(lane.waiting.items()):
                head = lane.groups[dbid][0]
                if head.unreachable and due > now:
                    head.streak = 0
                    head.unreachable = False
                    lane.state_retry(dbid, now)
                    expedited += 1
            for dbid, due in list(lane.periodic_hold.items()):
                if due > now:
                    lane.periodic_hold[dbid] = now
                    heapq.heappush(lane.timers, (now, next(lane.tie), dbid, False))
            lane.periodic_streak.clear()
            self._wakeups[index].set()
        if expedited:
            log.info(
                "receiver answers again: retrying now what waited for it",
                state_notifications=expedited,
                uri=self.safe_uri,
            )

    def _delay(self, attempts: int, retry_after: float | None) -> float:
        base = self.retry_schedule[min(attempts, len(self.retry_schedule)) - 1]
        delay = base * self._rng.uniform(1 - JITTER, 1 + JITTER)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    def _dead_letter(self, lane: _Lane, envelope: Envelope, reason: str, why: str) -> None:
        record = {
            "id": envelope.message_id,
            "kind": "state",
            "dbid": envelope.group_dbid,
            "campaign_group": envelope.group_name,
            "reason": reason,
            "detail": why,
            "attempts": envelope.attempts,
            "created": round(envelope.created, 3),
            "dead_at": round(time.time(), 3),
            "uri": self.safe_uri,
            "body": envelope.body.decode("utf-8", "replace"),
        }
        try:
            self.dead_letters.append(record)
        except OutboxError as exc:
            # keep it in the outbox rather than lose it; the group stays blocked behind it
            log.error("dead-letter write failed; kept in the outbox", error=str(exc))
            lane.state_retry(envelope.group_dbid, asyncio.get_running_loop().time() + 60)
            return
        self.counters.dead_lettered[reason] += 1
        self.outbox.delete(envelope.seq)
        self._schedule_flush()
        self._in_memory -= 1
        lane.state_done(envelope.group_dbid)
        log.error(
            "notification dead-lettered",
            reason=reason,
            detail=why,
            campaign_group=envelope.group_name,
            webhook_id=envelope.message_id,
            attempts=envelope.attempts,
            dead_letter_file=self.dead_letters.path,
            uri=self.safe_uri,
        )

    def _stop_delivery(self, envelope: Envelope, fields: dict[str, Any]) -> None:
        """410 Gone: nothing more goes to this URI until the configuration changes."""
        self._gone = True
        if envelope.kind == "state":
            self.outbox.set_attempts(envelope.seq, envelope.attempts)
            self._schedule_flush()
        for lane in self._lanes:
            for dropped in lane.clear_periodic():
                self._drop_envelope(dropped, "delivery stopped (HTTP 410)", quiet=True)
        log.error(
            "HTTP notification failed: the receiver answered 410 Gone; delivery to this URI "
            "stopped until the configuration changes (state notifications wait in the outbox)",
            **fields,
        )
        for wakeup in self._wakeups:
            wakeup.set()

    # -- dead letters --------------------------------------------------------------------

    async def resend(self, message_ids: Sequence[str] | None) -> list[dict[str, Any]]:
        """Take dead letters back into the outbox (all when ``message_ids`` is None).

        Each keeps its ``webhook-id`` and body, starts again at attempt 1, and queues
        behind what already waits for its group.
        """
        taken = await self.dead_letters.take(message_ids)
        for record in taken:
            envelope = Envelope(
                "state",
                str(record.get("campaign_group", "")),
                record["dbid"],
                record["body"].encode("utf-8"),
                record["id"],
                next_seq(),
                0,
                float(record.get("created", time.time())),
            )
            self._store(envelope)
            log.info(
                "dead letter re-sent",
                webhook_id=envelope.message_id,
                campaign_group=envelope.group_name,
                uri=self.safe_uri,
            )
        return taken

    # -- stopping ------------------------------------------------------------------------

    async def close(self, grace: float | None = None) -> None:
        """Stop; in-flight POSTs get ``grace``; what is undelivered stays in the outbox."""
        self._closing = True
        self._flush()
        if self._activation is not None and not self._activation.done():
            self._activation.cancel()
            await asyncio.gather(self._activation, return_exceptions=True)
        for lane in self._lanes:
            for envelope in lane.clear_periodic():
                self._drop_envelope(envelope, "shutting down", quiet=True)
        self._active.set()
        for wakeup in self._wakeups:
            wakeup.set()
        await self._stop_workers(grace)
        if self._session is not None:
            await self._session.close()
        self.outbox.close()
        if self.outbox.count:
            log.info(
                "state notifications kept in the outbox for the next start",
                count=self.outbox.count,
                outbox=self.outbox.path,
                uri=self.safe_uri,
            )
