"""What the control API and the metrics see of the running daemon.

Requests (from the control API and from schedules) go to the engine and their
snapshots to the feed; views, health, readiness, dead letters and the figures of
``/metrics`` are read here. Failures are the core's typed errors (:mod:`ocsd.core.errors`):
the control API maps them to 404, 409 and 400 in one place.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from prometheus_client import CollectorRegistry

from ocsd.config.settings import Settings
from ocsd.core.errors import BadParameter, NotAllowed, NotFound, Unavailable
from ocsd.core.genesys import Actor, GroupStatus, Request, status_name
from ocsd.core.lifecycle import DialingChange
from ocsd.core.schedule import Entry
from ocsd.delivery.errors import OutboxError
from ocsd.delivery.notifier import DeliveryFigures
from ocsd.delivery.outbox import first_dead_letters
from ocsd.delivery.reliable import ReliablePolicy
from ocsd.logs import get_logger
from ocsd.service.access import AccessPolicy
from ocsd.service.feed import Feed
from ocsd.service.metrics import DaemonFigures, Metrics
from ocsd.service.supervisor import Supervisor

log = get_logger("ocsd.service")


_status = attrgetter("status")


def waiting_unload(name: str, dbid: int, calls_in_progress: int) -> dict[str, Any]:
    """What the answer to an UnloadCampaign that waits for calls in progress adds: the
    facts as fields, and a message saying what happens next and how to unload at once.

    OCS does the same (the contract's WaitingUnload): the group stops dialing, and the
    UnloadCampaign notification is sent only when its last call ends, which takes minutes
    of simulated time (one talk time and wrap-up), so a user waiting for it must know."""
    calls = f"{calls_in_progress} call{'s' if calls_in_progress != 1 else ''} in progress"
    return {
        "waiting_unload": {
            "calls_in_progress": calls_in_progress,
            "unload_notification": "sent when the last call in progress ends",
            "force_unload": "ForceUnloadCampaign unloads at once, dropping the calls",
        },
        "message": (
            f"campaign group {name} ({dbid}) is WaitingUnload with {calls}: the "
            "UnloadCampaign notification follows when they end; ForceUnloadCampaign "
            f"(ocsd ctl force-unload {dbid}) unloads at once"
        ),
    }


class DeadLettersUnavailable(NotAllowed):
    """A re-send asked for while delivery is not reliable."""


class UnknownDeadLetter(NotFound):
    """No dead letter has this id."""


@dataclass
class DaemonState:
    """Where the daemon is in its life; read by health, readiness and metrics."""

    config_label: str
    started_at: float = field(default_factory=time.monotonic)
    ready: bool = False  # start-up done
    stopping: bool = False
    reload_results: Counter[str] = field(default_factory=Counter)  # applied, refused


class ControlService:
    """Serves the control API (its ``Controller`` protocol) and the metrics collector."""

    def __init__(
        self,
        feed: Feed,
        settings: Callable[[], Settings],
        state: DaemonState,
        supervisor: Supervisor,
        metrics: Metrics,
        ticks_skipped: Callable[[], int],
    ) -> None:
        self.feed = feed
        self.engine = feed.engine
        self._settings = settings
        self.state = state
        self.supervisor = supervisor
        self.metrics = metrics
        self._ticks_skipped = ticks_skipped
        self._access: tuple[Settings, AccessPolicy] | None = None
        metrics.collect_from(self.figures)

    # -- requests ------------------------------------------------------------------------

    def handle_request(
        self,
        dbid: int,
        request: Request,
        change: DialingChange,
        auto_complete: bool | None,
        actor: Actor = Actor.CLIENT,
    ) -> dict[str, Any]:
        """Apply a request; raises NotFound, NotAllowed, BadParameter or Unavailable.

        In the reliable delivery mode the answer comes only once the state notifications
        it caused are committed to the outbox (a 200 survives a crash); while the outbox
        cannot store them, the request is refused and nothing changes.
        """
        reliable = self._reliable()
        refusal = reliable.backlog.refusal() if reliable is not None else None
        if refusal is not None:
            raise Unavailable(f"{request.value} refused, nothing changed: {refusal}")
        now = self.feed.clock()
        snapshots = self.engine.request(dbid, request, actor, now, change, auto_complete)
        self.feed.notify(snapshots)
        group = self.engine.group(dbid)
        log.info(
            "request applied",
            request=request.value,
            campaign_group=group.identity.name,
            dbid=dbid,
            actor=actor.name.lower(),
            status=status_name(group.status),
        )
        answer = {
            "campaigngroup": self.engine.view(dbid, now),
            "notifications": [
                {
                    "action": int(s.action),
                    "status": int(s.status),
                    "actor": int(s.actor),
                    "at": s.at,
                }
                for s in snapshots
            ],
        }
        if request == Request.UNLOAD and group.status == GroupStatus.WAITING_UNLOAD:
            answer.update(waiting_unload(group.identity.name, dbid, group.calls_in_progress))
        if reliable is not None and snapshots and not reliable.backlog.commit():
            raise Unavailable(
                f"{request.value} applied, but its state notifications could not be stored "
                f"in the outbox ({reliable.outbox.last_error}): they wait in memory, unsent, "
                "until they are; a stop before that loses them",
                **answer,
            )
        return answer

    def _reliable(self) -> ReliablePolicy | None:
        delivery = self.feed.delivery
        return delivery.reliable if delivery is not None else None

    def run_schedule_entry(self, dbid: int, entry: Entry) -> None:
        """A schedule entry is due: its requests in order (actor 2); a refusal is logged
        and ends the entry, never the schedule."""
        log.info("schedule entry due", dbid=dbid, entry=entry.text)
        for request in entry.requests:
            dialing = request in (Request.START, Request.SET_DIAL_MODE)
            change = entry.change if dialing else DialingChange()
            try:
                self.handle_request(dbid, request, change, None, Actor.SCHEDULE)
            except (NotFound, NotAllowed, BadParameter, Unavailable) as exc:
                log.warning(
                    "scheduled request skipped",
                    request=request.value,
                    dbid=dbid,
                    actor="schedule",
                    reason=str(exc),
                )
                return

    def group_page(self, after: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
        """The views of up to ``limit`` groups with a DBID above ``after``, ascending, and
        the cursor of the next page (None on the last page)."""
        dbids = self.engine.dbids_after(after, limit + 1)
        now = self.feed.clock()
        views = [self.engine.view(dbid, now) for dbid in dbids[:limit]]
        return views, (dbids[limit - 1] if len(dbids) > limit else None)

    def group_count(self) -> int:
        return len(self.engine)

    def group_view(self, dbid: int) -> dict[str, Any]:
        return self.engine.view(dbid, self.feed.clock())

    # -- dead letters (reliable mode) ----------------------------------------------------

    async def dead_letters(self, limit: int) -> dict[str, Any]:
        settings = self._settings()
        delivery = self.feed.delivery
        if delivery is not None and delivery.reliable is not None:
            count, records = await delivery.reliable.dead_letters.read(limit)
        else:  # not sending reliably now: the file as it is
            count, records = await asyncio.to_thread(
                first_dead_letters, settings.dead_letter_path, limit
            )
        return {
            "delivery_mode": settings.delivery_mode,
            "file": settings.dead_letter_path,
            "count": count,
            "deadletters": records,
        }

    async def resend_dead_letters(self, message_id: str | None) -> dict[str, Any]:
        """Queue dead letters again; raises UnknownDeadLetter or DeadLettersUnavailable."""
        delivery = self.feed.delivery
        if delivery is None or delivery.reliable is None:
            raise DeadLettersUnavailable(
                "dead letters are re-sent in delivery-mode = reliable with sending on; "
                f"now delivery-mode = {self._settings().delivery_mode}, "
                f"sending {'on' if delivery else 'off'}"
            )
        refusal = delivery.reliable.backlog.refusal()
        if refusal is not None:
            raise Unavailable(f"dead letters not re-sent: {refusal}")
        try:
            taken = await delivery.reliable.resend(None if message_id is None else [message_id])
        except OutboxError as exc:
            raise Unavailable(f"dead letters not re-sent: {exc}") from None
        if message_id is not None and not taken:
            raise UnknownDeadLetter(f"no dead letter with id {message_id!r}")
        if not delivery.reliable.backlog.commit():
            raise Unavailable(
                "dead letters taken back, but the outbox could not store them "
                f"({delivery.reliable.outbox.last_error}): they wait in memory until it can",
                resent=len(taken),
            )
        return {"resent": len(taken), "ids": [record["id"] for record in taken]}

    # -- the daemon's health -------------------------------------------------------------

    def control_token(self) -> str | None:
        token = self._settings().control_token
        return token.get_secret_value() if token is not None else None

    def access_policy(self) -> AccessPolicy:
        """Who may change state, from the settings in force (a reload applies at once)."""
        settings = self._settings()
        policy = self._access
        if policy is None or policy[0] is not settings:
            built = AccessPolicy(
                settings.control_host,
                settings.control_allowed_hosts,
                settings.control_allowed_origins,
            )
            policy = self._access = (settings, built)
        return policy[1]

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready: start-up done, every supervised task running, not stopping, and in the
        reliable mode the outbox and the dead-letter file writable."""
        state, tasks_alive = self.state, self.supervisor.healthy
        reliable = self._reliable()
        storage = reliable.problem if reliable is not None else None
        ready = state.ready and tasks_alive and not state.stopping and storage is None
        detail: dict[str, Any] = {
            "ready": ready,
            "configuration": state.config_label,
            "loop_tasks_running": tasks_alive,
            "stopping": state.stopping,
        }
        if not tasks_alive:
            detail["tasks_down"] = self.supervisor.down
        if reliable is not None:
            detail["outbox_writable"] = storage is None
        if storage is not None:
            detail["storage_problem"] = storage
        return ready, detail

    def registry(self) -> CollectorRegistry:
        return self.metrics.registry

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "uptime_s": round(time.monotonic() - self.state.started_at, 3),
            "groups": len(self.engine),
            "pending_notifications": self.delivery_figures().pending,
            "outbox_writable": self.delivery_figures().outbox_writable,
            "reloads": self.state.reload_results["applied"],
        }

    def delivery_figures(self) -> DeliveryFigures:
        delivery = self.feed.delivery
        return delivery.notifier.figures() if delivery else DeliveryFigures(0)

    def figures(self) -> DaemonFigures:
        """What ``/metrics`` shows, read at scrape time."""
        return DaemonFigures(
            counters=self.feed.counters,
            delivery=self.delivery_figures(),
            statuses=Counter(map(_status, self.engine.by_dbid.values())),
            reloads=self.state.reload_results,
            ticks_skipped=self._ticks_skipped(),
            delivery_mode=self._settings().delivery_mode,
            task_restarts=self.supervisor.restarts,
        )
