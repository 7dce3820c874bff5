"""All Campaign Groups of one tenant: requests in, immutable snapshots out.

Pure: the caller passes the wall time (epoch seconds); the engine maps it to the
simulated clock of the dialing simulations (``time-scale``) and never reads a clock
itself. The daemon turns each snapshot into a body and hands it to the notifier; the
engine never knows about HTTP.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ocsd.core.body import GroupSnapshot, periodic_snapshot
from ocsd.core.errors import NotFound
from ocsd.core.genesys import Actor, GroupStatus, Request, label, status_name
from ocsd.core.identity import GroupIdentity
from ocsd.core.lifecycle import CampaignGroup, Dialing, DialingChange, Transition
from ocsd.core.simulation import GroupModel, GroupSimulation
from ocsd.core.statistics import GroupStatistics, no_data


class UnknownGroup(NotFound):
    """No configured Campaign Group has this DBID; the message says where it might be."""

    def __init__(self, dbid: int, hint: str = "") -> None:
        super().__init__(f"no Campaign Group with dbid {dbid}{hint}")
        self.dbid = dbid


@dataclass(frozen=True, slots=True)
class GroupDefinition:
    """What the configuration says about one group."""

    identity: GroupIdentity
    dialing: Dialing
    model: GroupModel
    auto_complete: bool = False


class SimClock:
    """Maps wall time to simulated time: ``sim = base + (wall - anchor) * scale``.

    Rescaling re-anchors at the current instant, so simulated time never jumps.
    """

    def __init__(self, wall_start: float, scale: float = 1.0) -> None:
        self._anchor = wall_start
        self._base = 0.0
        self.scale = scale

    def __call__(self, wall: float) -> float:
        return self._base + max(0.0, wall - self._anchor) * self.scale

    def rescale(self, wall: float, scale: float) -> None:
        self._base = self(wall)
        self._anchor = wall
        self.scale = scale


class Engine:
    """Owns every CampaignGroup and its dialing simulation, keyed by DBID."""

    def __init__(
        self,
        definitions: Iterable[GroupDefinition],
        wall_start: float,
        time_scale: float = 1.0,
        stats_window: float = 300.0,
        seed: int | None = None,
    ) -> None:
        self.clock = SimClock(wall_start, time_scale)
        self.unknown_hint = ""  # said with an unknown DBID (e.g. which shard this is)
        self.stats_window = stats_window
        self.seed = seed
        self._groups: dict[int, CampaignGroup] = {}
        self._definitions: dict[int, GroupDefinition] = {}
        self._simulations: dict[int, GroupSimulation] = {}
        self._stale_models: set[int] = set()  # loaded groups whose model changed by reload
        # Only these groups are stepped by ``advance``: their state can change on its own
        # (a waiting unload, a running group with auto-completion). Every other group's
        # simulation advances lazily, when a snapshot, request or view needs it, and in
        # the background by ``catch_up`` so that a group nobody reads never falls far behind.
        self._watched: set[int] = set()
        self._catch_up_order: list[int] = []
        self._catch_up_cursor = 0
        self._ascending: list[int] | None = None  # DBIDs in order, for pages; None: stale
        for definition in definitions:
            self._add(definition)

    def _add(self, definition: GroupDefinition) -> None:
        dbid = definition.identity.dbid
        self._definitions[dbid] = definition
        self._ascending = None
        self._groups[dbid] = CampaignGroup(
            identity=definition.identity,
            default_dialing=definition.dialing,
            default_auto_complete=definition.auto_complete,
            agents=definition.model.agents,
        )

    # -- live reconfiguration ------------------------------------------------------------

    @property
    def definitions(self) -> dict[int, GroupDefinition]:
        return dict(self._definitions)

    def add(self, definition: GroupDefinition) -> None:
        """A group new in the configuration: it appears NotLoaded."""
        self._add(definition)

    def remove(self, dbid: int, now: float) -> list[GroupSnapshot]:
        """A group gone from the configuration: force-unloaded if loaded (action 29), then removed."""
        group = self.group(dbid)
        snapshots: list[GroupSnapshot] = []
        if group.loaded:
            snapshots = self.request(dbid, Request.FORCE_UNLOAD, Actor.OCS, now)
        del self._groups[dbid], self._definitions[dbid]
        self._ascending = None
        self._simulations.pop(dbid, None)
        self._stale_models.discard(dbid)
        self._watched.discard(dbid)
        return snapshots

    def update(self, definition: GroupDefinition) -> None:
        """Changed attributes show in the next bodies; a changed dialing model applies at next load."""
        dbid = definition.identity.dbid
        old = self._definitions[dbid]
        self._definitions[dbid] = definition
        group = self._groups[dbid]
        group.identity = definition.identity
        group.default_dialing = definition.dialing
        group.default_auto_complete = definition.auto_complete
        if definition.model != old.model and dbid in self._simulations:
            if group.loaded:
                self._stale_models.add(dbid)
            else:
                del self._simulations[dbid]

    def __len__(self) -> int:
        return len(self._groups)

    def __contains__(self, dbid: int) -> bool:
        return dbid in self._groups

    @property
    def by_dbid(self) -> dict[int, CampaignGroup]:
        """Every group by DBID (the live mapping: read it, do not change it)."""
        return self._groups

    @property
    def groups(self) -> list[CampaignGroup]:
        return list(self._groups.values())

    def group(self, dbid: int) -> CampaignGroup:
        try:
            return self._groups[dbid]
        except KeyError:
            raise UnknownGroup(dbid, self.unknown_hint) from None

    # -- the simulation behind each group -----------------------------------------------

    def _simulation(self, dbid: int, sim_now: float) -> GroupSimulation:
        """The group's simulation, made on first load; its lists stay drained across reloads."""
        simulation = self._simulations.get(dbid)
        if simulation is None:
            rng = random.Random(f"{self.seed}:{dbid}") if self.seed is not None else random.Random()
            simulation = GroupSimulation(
                self._definitions[dbid].model, rng, start=sim_now, window=self.stats_window
            )
            self._simulations[dbid] = simulation
        return simulation

    def _catch_up(self, group: CampaignGroup, sim_now: float) -> None:
        simulation = self._simulations.get(group.identity.dbid)
        if simulation is not None:
            simulation.advance(sim_now)
            group.calls_in_progress = simulation.calls_in_progress

    def bring_up_to_date(self, dbid: int, now: float) -> None:
        """Advance one group's simulation to ``now`` (a no-op for a group without one).

        The periodic slot's call for every group it queues, so it goes straight to the
        simulation (one lookup) rather than through :meth:`group`.
        """
        simulation = self._simulations.get(dbid)
        if simulation is not None:
            simulation.advance(self.clock(now))
            self._groups[dbid].calls_in_progress = simulation.calls_in_progress

    def advance(self, now: float) -> list[GroupSnapshot]:
        """Step the groups whose state can change on its own; return what that caused.

        A waiting unload completes when the last call ends (actor of the unload); a
        running group with auto-completion whose records are exhausted stops and
        unloads itself (actions 10 then 8, actor 3). Other groups are not touched here:
        their simulations advance when read (a big step gives what many small ones
        would) and in the background (:meth:`catch_up`).
        """
        sim_now = self.clock(now)
        snapshots: list[GroupSnapshot] = []
        for dbid in list(self._watched):
            group = self._groups[dbid]
            simulation = self._simulations.get(dbid)
            if simulation is None or not _changes_on_its_own(group):
                self._watched.discard(dbid)
                continue
            simulation.advance(sim_now)
            group.calls_in_progress = simulation.calls_in_progress
            transitions: list[Transition] = []
            if group.status == GroupStatus.WAITING_UNLOAD and group.calls_in_progress == 0:
                transitions = group.calls_ended(now)
            elif (
                group.status == GroupStatus.RUNNING and group.auto_complete and simulation.exhausted
            ):
                transitions = group.apply(Request.UNLOAD, Actor.OCS, now)
                simulation.set_dialing(None, sim_now)
            if transitions:
                snapshots.extend(self._snapshot(group, t, sim_now) for t in transitions)
                if not _changes_on_its_own(group):
                    self._watched.discard(dbid)
        return snapshots

    def catch_up(self, now: float, share: float, older_than: float) -> int:
        """Advance a ``share`` (0..1) of the loaded groups, round robin, whose simulation
        lags more than ``older_than`` wall seconds behind ``now``; how many were advanced.

        Called a little at a time, it keeps every simulation within a bounded distance
        of the present when nobody reads it (notifications off, a receiver that hangs),
        so no read ever has to process hours of events at once.
        """
        if self._catch_up_cursor >= len(self._catch_up_order):
            self._catch_up_order = [dbid for dbid in self._simulations if self._groups[dbid].loaded]
            self._catch_up_cursor = 0
        order = self._catch_up_order
        start = self._catch_up_cursor
        end = min(len(order), start + max(1, math.ceil(len(order) * share)))
        self._catch_up_cursor = end
        sim_now = self.clock(now)
        horizon = sim_now - older_than * self.clock.scale
        advanced = 0
        for dbid in order[start:end]:
            simulation = self._simulations.get(dbid)
            group = self._groups.get(dbid)
            if simulation is None or group is None or not group.loaded:
                continue
            if simulation.now < horizon:
                simulation.advance(sim_now)
                group.calls_in_progress = simulation.calls_in_progress
                advanced += 1
        return advanced

    def request(
        self,
        dbid: int,
        request: Request,
        actor: Actor,
        now: float,
        change: DialingChange | None = None,
        auto_complete: bool | None = None,
    ) -> list[GroupSnapshot]:
        """Apply a request to one group; raises UnknownGroup, RequestRefused, InvalidParameter."""
        group = self.group(dbid)
        sim_now = self.clock(now)
        self._catch_up(group, sim_now)
        if request == Request.LOAD:  # the dialing model of this load (a reload's, if any)
            group.agents = self._definitions[dbid].model.agents
        transitions = group.apply(request, actor, now, change, auto_complete)
        if request == Request.LOAD and dbid in self._stale_models:
            self._stale_models.discard(dbid)
            del self._simulations[dbid]
        simulation = self._simulation(dbid, sim_now)
        if request == Request.FORCE_UNLOAD:
            simulation.drop_calls(sim_now)
        else:
            simulation.set_dialing(group.dialing, sim_now)
        group.calls_in_progress = simulation.calls_in_progress
        if _changes_on_its_own(group):
            self._watched.add(dbid)
        return [self._snapshot(group, t, sim_now) for t in transitions]

    def periodic(self, now: float) -> list[GroupSnapshot]:
        """One periodic snapshot per loaded group at ``now`` (docs/contract.md#periodic-notifications: active means loaded)."""
        snapshots = []
        for dbid in self._groups:
            self.bring_up_to_date(dbid, now)
            snapshot = self.periodic_snapshot(dbid, now)
            if snapshot is not None:
                snapshots.append(snapshot)
        return snapshots

    def periodic_snapshot(self, dbid: int, now: float) -> GroupSnapshot | None:
        """The periodic snapshot of one group, stamped ``now``, with the statistics as of
        its simulation's last advance; None if it is not loaded (or gone).

        Read-only: it changes nothing, so a sender may call it; the service keeps the
        simulations advanced (:meth:`bring_up_to_date`, :meth:`advance`, :meth:`catch_up`).
        """
        group = self._groups.get(dbid)
        if group is None or not group.loaded:
            return None
        simulation = self._simulations.get(dbid)
        return periodic_snapshot(
            group.identity,
            group.status,
            group.dialing,
            now,
            no_data(group.identity) if simulation is None else simulation.latest_statistics(),
        )

    def _statistics(self, group: CampaignGroup, sim_now: float) -> GroupStatistics:
        simulation = self._simulations.get(group.identity.dbid)
        if simulation is None:
            return no_data(group.identity)
        return simulation.statistics(sim_now)

    def _snapshot(
        self, group: CampaignGroup, transition: Transition, sim_now: float
    ) -> GroupSnapshot:
        return GroupSnapshot(
            identity=group.identity,
            status=transition.status,
            dialing=transition.dialing,
            action=transition.action,
            actor=transition.actor,
            at=transition.at,
            statistics=self._statistics(group, sim_now),
        )

    # -- views of the control API -------------------------------------------------------

    def view(self, dbid: int, now: float) -> dict[str, Any]:
        """The control API's JSON view of one group."""
        group = self.group(dbid)
        sim_now = self.clock(now)
        self._catch_up(group, sim_now)
        agents = self._definitions[dbid].model.agents
        return _view(group, agents, self._statistics(group, sim_now))

    def views(self, now: float) -> list[dict[str, Any]]:
        return [self.view(dbid, now) for dbid in self._groups]

    def dbids_after(self, after: int, limit: int) -> list[int]:
        """Up to ``limit`` DBIDs greater than ``after``, ascending: one page of the
        control API's listing, found in O(log N) (the order is sorted once per change
        of the set of groups, not per page)."""
        if self._ascending is None:
            self._ascending = sorted(self._groups)
        start = bisect.bisect_right(self._ascending, after)
        return self._ascending[start : start + limit]


def _changes_on_its_own(group: CampaignGroup) -> bool:
    """Whether the group's status can change without a request: it must be stepped."""
    status = group.status
    return status == GroupStatus.WAITING_UNLOAD or (
        status == GroupStatus.RUNNING and group.auto_complete
    )


def _coded(member: Any) -> dict[str, Any]:
    return {"code": int(member), "name": label(member)}


def _view(group: CampaignGroup, agents: int, stats: GroupStatistics) -> dict[str, Any]:
    ident = group.identity
    dialing = group.dialing
    return {
        "name": ident.name,
        "dbid": ident.dbid,
        "uuid": ident.uuid,
        "campaign": ident.campaign,
        "group": ident.group,
        "template": ident.template,
        "queue": ident.queue,
        "agents": agents,
        "status": {"code": int(group.status), "name": status_name(group.status)},
        "dial_mode": _coded(dialing.mode) if dialing else None,
        "optimize_by": _coded(dialing.optimize_by) if dialing and dialing.optimize_by else None,
        "optimize_goal": dialing.optimize_goal if dialing and dialing.optimize_by else None,
        "auto_complete": group.auto_complete,
        "calls_in_progress": group.calls_in_progress,
        "statistics": {
            "busy_factor": stats.busy_factor,
            "hit_ratio": stats.hit_ratio,
            "overdial_rate": stats.overdial_rate,
            "time_to_complete": stats.time_to_complete,
            "calling_lists": [
                {
                    "name": cl.name,
                    "dbid": cl.dbid,
                    "hit_ratio": cl.hit_ratio,
                    "time_to_complete": cl.time_to_complete,
                }
                for cl in stats.calling_lists
            ],
        },
    }
