"""The CampaignGroupState feed: engine changes and ticks in, notifications out.

One direction only. A request's or a step's snapshots become state bodies at once; a
periodic slot only says "group X is due" to the notifier and brings X's simulation up
to date (the service advances simulations, never a sender); the sender asks
:meth:`Feed.periodic_body`, which reads a snapshot and changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from ocsd.core.body import BodyEncoder, GroupSnapshot
from ocsd.core.engine import Engine
from ocsd.core.errors import BadParameter, NotAllowed, NotFound
from ocsd.core.genesys import Actor, Request, status_name
from ocsd.core.identity import Tenant
from ocsd.delivery.notifier import DeliveryCounters, Notification
from ocsd.logs import get_logger
from ocsd.service.metrics import Metrics
from ocsd.service.sending import Delivery
from ocsd.service.ticker import plan_phases

log = get_logger("ocsd.service")

#: Wall seconds within which every loaded group's simulation is brought up to date,
#: whether or not anything reads it (a little at each step, round robin).
CATCH_UP_S = 5.0
#: Groups loaded and started per event-loop iteration by ``--start-all``.
START_ALL_BATCH = 500


class Feed:
    """Turns the engine's snapshots into notifications for the current delivery."""

    def __init__(
        self,
        engine: Engine,
        tenant: Tenant,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.tenant = tenant
        self.metrics = metrics
        self.clock = clock
        self.delivery: Delivery | None = None
        self.counters = DeliveryCounters()  # of every notifier of this feed: cumulative
        self.encoder = BodyEncoder()
        self._phases: list[list[int]] = []  # slot -> DBIDs of the groups with that phase
        self._phases_stale = True
        #: Who asked for each waiting unload (a control API caller, a schedule): the
        #: "changed by OCS" line of its completion names them.
        self.unload_origins: dict[int, str] = {}

    # -- state notifications -------------------------------------------------------------

    def notify(self, snapshots: Iterable[GroupSnapshot]) -> None:
        """A state notification (81000) per snapshot, its body built now."""
        delivery = self.delivery
        if delivery is None:
            return
        for snapshot in snapshots:
            body = self.encoder.encode(snapshot, self.tenant)
            ident = snapshot.identity
            delivery.notifier.submit(Notification("state", ident.name, ident.dbid, body))

    def groups_changed(self) -> None:
        """Groups were added or removed: the phases of the interval are planned again."""
        self._phases_stale = True

    def forget(self, dbid: int) -> None:
        """A group gone from the configuration."""
        self.encoder.forget(dbid)
        self.unload_origins.pop(dbid, None)
        self._phases_stale = True

    # -- periodic notifications ----------------------------------------------------------

    def on_slot(self, slot: int, slots: int, lateness: float) -> None:
        """One phase slot of the interval: each loaded group of the slot is due (its body
        made now or when it is sent, as the delivery mode says)."""
        self.metrics.tick_lateness.observe(max(0.0, lateness))
        delivery = self.delivery
        if delivery is None:
            return
        if self._phases_stale or len(self._phases) != slots:
            self._phases = plan_phases(self.engine.definitions, slots)
            self._phases_stale = False
        notifier = delivery.notifier
        groups = self.engine.by_dbid
        for dbid in self._phases[slot]:
            group = groups.get(dbid)
            if group is not None and group.loaded:
                notifier.due(dbid, group.identity.name)

    def periodic_body(self, dbid: int) -> bytes | None:
        """The notifier's body source: the group's periodic body now, its simulation
        brought up to date first; None if it is not loaded."""
        now = self.clock()
        self.engine.bring_up_to_date(dbid, now)
        snapshot = self.engine.periodic_snapshot(dbid, now)
        return None if snapshot is None else self.encoder.encode(snapshot, self.tenant)

    # -- what changes on its own ---------------------------------------------------------

    def step(self, interval: float) -> None:
        """Step the groups that change on their own, notifying what that caused (actor 3);
        bring a share of the others' simulations up to date."""
        now = self.clock()
        self.engine.catch_up(now, interval / CATCH_UP_S, CATCH_UP_S)
        snapshots = self.engine.advance(now)
        self.notify(snapshots)
        for snapshot in snapshots:
            dbid = snapshot.identity.dbid
            if snapshot.actor == Actor.OCS:  # auto-completion: OCS's own decision
                by, reason = "OCS (auto-completion)", "every record of the calling lists is done"
            else:  # a waiting unload completes, on behalf of whoever asked for it
                by = self.unload_origins.pop(dbid, f"an earlier {Request.UNLOAD.value}")
                reason = f"the last call in progress ended ({Request.UNLOAD.value} was waiting)"
            self.log_change(snapshot, by, reason)

    def log_change(self, snapshot: GroupSnapshot, by: str, reason: str) -> None:
        """The line of a change no request caused at that moment: who it is done for
        (``actor`` as in the body, ``by`` in words) and why now."""
        log.info(
            "campaign group changed by OCS",
            campaign_group=snapshot.identity.name,
            dbid=snapshot.identity.dbid,
            action=int(snapshot.action),
            status=status_name(snapshot.status),
            actor=snapshot.actor.name.lower(),
            by=by,
            reason=reason,
        )

    async def start_all(self) -> None:
        """``ocsd run --start-all``: load and start every group, as a schedule would
        (actor 2), a batch per loop iteration so the control API and sending run between.

        Straight to the engine: one summary line, not a view and a log line per request.
        """
        started = 0
        for index, group in enumerate(self.engine.groups):
            if index and index % START_ALL_BATCH == 0:
                await asyncio.sleep(0)
            dbid, now = group.identity.dbid, self.clock()
            for request in (Request.LOAD, Request.START):  # each on its own
                try:
                    self.notify(self.engine.request(dbid, request, Actor.SCHEDULE, now))
                except (NotFound, NotAllowed, BadParameter) as exc:
                    log.warning(
                        "scheduled request skipped",
                        request=request.value,
                        dbid=dbid,
                        campaign_group=group.identity.name,
                        actor="schedule",
                        reason=str(exc),
                    )
                else:
                    started += request == Request.START
        log.info("all groups loaded and started", started=started, groups=len(self.engine))
