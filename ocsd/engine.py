"""All Campaign Groups of one tenant: requests in, immutable snapshots out.

Pure: the caller passes the time. The daemon turns each snapshot into a body and
hands it to the notifier; the engine never knows about HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ocsd.body import GroupSnapshot
from ocsd.campaign import (
    CampaignGroup,
    Dialing,
    DialingChange,
    GroupIdentity,
    Request,
    Transition,
)
from ocsd.genesys import Action, Actor, label, status_name
from ocsd.stats import GroupStatistics, no_data


class UnknownGroup(KeyError):
    """No configured Campaign Group has this DBID."""


@dataclass(frozen=True, slots=True)
class GroupDefinition:
    """What the configuration says about one group."""

    identity: GroupIdentity
    dialing: Dialing
    auto_complete: bool = False
    agents: int = 0


class Engine:
    """Owns every CampaignGroup, keyed by DBID, in configuration order."""

    def __init__(self, definitions: Iterable[GroupDefinition]) -> None:
        self._groups: dict[int, CampaignGroup] = {}
        self._definitions: dict[int, GroupDefinition] = {}
        for definition in definitions:
            self._add(definition)

    def _add(self, definition: GroupDefinition) -> None:
        dbid = definition.identity.dbid
        self._definitions[dbid] = definition
        self._groups[dbid] = CampaignGroup(
            identity=definition.identity,
            default_dialing=definition.dialing,
            default_auto_complete=definition.auto_complete,
        )

    def __len__(self) -> int:
        return len(self._groups)

    def __contains__(self, dbid: int) -> bool:
        return dbid in self._groups

    @property
    def groups(self) -> list[CampaignGroup]:
        return list(self._groups.values())

    def group(self, dbid: int) -> CampaignGroup:
        try:
            return self._groups[dbid]
        except KeyError:
            raise UnknownGroup(dbid) from None

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
        transitions = group.apply(request, actor, now, change, auto_complete)
        return [self._snapshot(group, t) for t in transitions]

    def periodic(self, now: float) -> list[GroupSnapshot]:
        """One periodic snapshot per loaded group (spec 1: active means loaded)."""
        return [
            GroupSnapshot(
                identity=group.identity,
                status=group.status,
                dialing=group.dialing,
                action=Action.PERIODIC,
                actor=Actor.UNKNOWN,
                at=now,
                statistics=self.statistics(group),
            )
            for group in self._groups.values()
            if group.loaded
        ]

    def statistics(self, group: CampaignGroup) -> GroupStatistics:
        return no_data(group.identity)

    def _snapshot(self, group: CampaignGroup, transition: Transition) -> GroupSnapshot:
        return GroupSnapshot(
            identity=group.identity,
            status=transition.status,
            dialing=transition.dialing,
            action=transition.action,
            actor=transition.actor,
            at=transition.at,
            statistics=self.statistics(group),
        )

    def view(self, dbid: int) -> dict[str, Any]:
        """The control API's JSON view of one group."""
        group = self.group(dbid)
        ident = group.identity
        stats = self.statistics(group)
        dialing = group.dialing
        return {
            "name": ident.name,
            "dbid": ident.dbid,
            "uuid": ident.uuid,
            "campaign": ident.campaign,
            "group": ident.group,
            "template": ident.template,
            "queue": ident.queue,
            "agents": self._definitions[dbid].agents,
            "status": {"code": int(group.status), "name": status_name(group.status)},
            "dial_mode": _coded(dialing.mode) if dialing else None,
            "optimize_by": _coded(dialing.optimize_by) if dialing and dialing.optimize_by else None,
            "optimize_goal": dialing.optimize_goal if dialing and dialing.optimize_by else None,
            "auto_complete": group.auto_complete,
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

    def views(self) -> list[dict[str, Any]]:
        return [self.view(dbid) for dbid in self._groups]


def _coded(member: Any) -> dict[str, Any]:
    return {"code": int(member), "name": label(member)}
