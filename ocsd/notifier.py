"""Delivery of CampaignGroupState bodies: a bounded aiohttp pool, OCS semantics.

Producing never waits for sending. ``submit`` only puts a notification in a worker's
queue and returns. A fixed set of workers (one per pooled connection) posts them.
Every group is served by one worker, so its notifications leave in order. State
notifications go before periodic ones, and periodic ones are coalesced per group:
only the newest waits, so a dead receiver never builds a stale backlog. What does
not fit is dropped, counted and logged. Delivery is OCS's: one attempt, no retry.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
from prometheus_client import Histogram

from ocsd.logs import get_logger
from ocsd.redact import redact_uri

Kind = Literal["state", "periodic"]

MSG_STATE = 81000
MSG_PERIODIC = 81001
TEXT = {
    "state": "Sending HTTP status notification CampaignGroupState for Campaign Group {name} to {uri}",
    "periodic": (
        "Sending periodic HTTP status notification CampaignGroupState for Campaign Group {name} to {uri}"
    ),
}
#: Most state notifications that may wait per worker before new ones are dropped.
STATE_BACKLOG_PER_WORKER = 10_000

log = get_logger("ocsd.notifier")


@dataclass(slots=True)
class Notification:
    kind: Kind
    group_name: str
    group_dbid: int
    body: bytes


@dataclass
class DeliveryCounters:
    """What happened to notifications, by kind; the metrics endpoint reads these."""

    sent: Counter[str] = field(default_factory=Counter)
    failed: Counter[tuple[str, str]] = field(default_factory=Counter)
    dropped: Counter[tuple[str, str]] = field(default_factory=Counter)


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
    """Posts bodies to one URI through a connection pool of ``pool_size`` connections."""

    def __init__(
        self, uri: str, timeout: float, pool_size: int, latency: Histogram | None = None
    ) -> None:
        self.uri = uri
        self.safe_uri = redact_uri(uri)
        self.timeout = timeout
        self.pool_size = pool_size
        self.counters = DeliveryCounters()
        self._queues = [_Worker() for _ in range(pool_size)]
        self._wakeups = [asyncio.Event() for _ in range(pool_size)]
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight = 0
        self._closing = False
        self._latency = (
            {kind: latency.labels(kind) for kind in ("state", "periodic")} if latency else {}
        )

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.pool_size, limit_per_host=self.pool_size)
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

    @property
    def pending(self) -> int:
        return sum(len(q) for q in self._queues) + self._in_flight

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
            stale = queue.periodic.pop(notification.group_dbid, None)
            if stale is not None:
                self._drop(stale, "superseded by a newer periodic notification", quiet=True)
            queue.periodic[notification.group_dbid] = notification
        self._wakeups[index].set()

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
            # aiohttp's pool is not fair: yield so other workers get a connection.
            await asyncio.sleep(0)

    async def _post(self, notification: Notification) -> None:
        assert self._session is not None
        msgid = MSG_STATE if notification.kind == "state" else MSG_PERIODIC
        log.info(
            TEXT[notification.kind].format(name=notification.group_name, uri=self.safe_uri),
            level="trace",
            msgid=msgid,
            campaign_group=notification.group_name,
            uri=self.safe_uri,
        )
        started = time.perf_counter()
        reason: str | None = None
        detail: dict[str, Any] = {}
        try:
            async with self._session.post(
                self.uri, data=notification.body, allow_redirects=False
            ) as response:
                await response.read()
                if not 200 <= response.status < 300:
                    reason = f"HTTP {response.status}"
                    if 300 <= response.status < 400:
                        detail["note"] = "redirects are not followed"
        except TimeoutError:
            reason = "timeout"
            detail["timeout_s"] = self.timeout
        except aiohttp.ClientConnectorCertificateError as exc:
            reason = "TLS certificate not trusted"
            detail["error"] = str(exc.certificate_error)
        except aiohttp.ClientConnectorError as exc:
            reason = (
                "connection refused"
                if isinstance(exc.os_error, ConnectionRefusedError)
                else "connect error"
            )
            detail["error"] = exc.strerror or type(exc.os_error).__name__
        except aiohttp.ClientError as exc:
            reason = "connection error"
            detail["error"] = f"{type(exc).__name__}: {exc}".replace(self.uri, self.safe_uri)
        elapsed = time.perf_counter() - started
        if self._latency:
            self._latency[notification.kind].observe(elapsed)
        if reason is None:
            self.counters.sent[notification.kind] += 1
            return
        self.counters.failed[(notification.kind, reason)] += 1
        log.warning(
            "HTTP notification failed",
            msgid=msgid,
            reason=reason,
            kind=notification.kind,
            campaign_group=notification.group_name,
            uri=self.safe_uri,
            elapsed_ms=round(elapsed * 1000, 1),
            **detail,
        )

    async def close(self, grace: float | None = None) -> None:
        """Stop taking work; let queued state and in-flight POSTs finish within ``grace``."""
        self._closing = True
        for queue in self._queues:
            for notification in queue.periodic.values():
                self._drop(notification, "shutting down", quiet=True)
            queue.periodic.clear()
        for wakeup in self._wakeups:
            wakeup.set()
        if self._tasks:
            _done, still_running = await asyncio.wait(
                self._tasks, timeout=self.timeout if grace is None else grace
            )
            for task in still_running:
                task.cancel()
            if still_running:
                await asyncio.wait(still_running)
                unsent = sum(len(q.state) for q in self._queues)
                log.warning(
                    "notifications abandoned at shutdown",
                    in_flight=len(still_running),
                    unsent=unsent,
                    uri=self.safe_uri,
                )
                self.counters.dropped[("state", "shutting down")] += unsent
        if self._session is not None:
            await self._session.close()
