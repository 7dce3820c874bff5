"""Group identities, the tenant and snapshots for tests that build bodies by hand.

``identity()`` is group 101 of the test configuration (support.ini.make_sections),
Renewals@Retention Team; ``numbered_identity(dbid)`` is one of many made-up groups named
after their DBID. A test that asserts on a value passes it here explicitly.
"""

from __future__ import annotations

from collections.abc import Iterable

from ocsd.core.body import GroupSnapshot
from ocsd.core.genesys import Action, Actor, GroupStatus
from ocsd.core.identity import CallingListIdentity, GroupIdentity, Tenant
from ocsd.core.lifecycle import Dialing
from ocsd.core.statistics import GroupStatistics

#: The UUID of group 101 (Renewals@Retention Team) in the tests.
RENEWALS_UUID = "0d6b3a52-9a7e-4c71-8f0e-2f5d1c7b9e44"
#: The tenant the unit tests of the body put in their bodies.
TENANT = Tenant("Environment", "101")


def calling_lists(lists: Iterable[tuple[str, int]]) -> tuple[CallingListIdentity, ...]:
    """Calling list identities from ``(name, dbid)`` pairs."""
    return tuple(CallingListIdentity(name, dbid) for name, dbid in lists)


def identity(
    dbid: int = 101,
    name: str = "Renewals@Retention Team",
    *,
    uuid: str = RENEWALS_UUID,
    campaign: str = "Renewals",
    group: str = "Retention Team",
    queue: str = "7001",
    template: str | None = None,
    lists: Iterable[tuple[str, int]] = (),
) -> GroupIdentity:
    """A group's identity; by default Renewals@Retention Team (dbid 101, queue 7001), with
    no template and no calling lists. ``lists``: ``(name, dbid)`` pairs."""
    return GroupIdentity(
        name=name,
        dbid=dbid,
        uuid=uuid,
        campaign=campaign,
        group=group,
        queue=queue,
        template=template,
        calling_lists=calling_lists(lists),
    )


def numbered_identity(dbid: int, lists: Iterable[tuple[str, int]] = ()) -> GroupIdentity:
    """A made-up group named after its DBID: "Group {dbid}" of "Campaign {dbid}" and
    "Team {dbid}", queue "7{dbid}", UUID 00000000-0000-4000-8000-{dbid:012d}."""
    return identity(
        dbid,
        f"Group {dbid}",
        uuid=f"00000000-0000-4000-8000-{dbid:012d}",
        campaign=f"Campaign {dbid}",
        group=f"Team {dbid}",
        queue=f"7{dbid}",
        lists=lists,
    )


def group_snapshot(
    group: GroupIdentity | None = None,
    status: GroupStatus = GroupStatus.RUNNING,
    dialing: Dialing | None = None,
    action: Action = Action.START,
    actor: Actor = Actor.CLIENT,
    at: float = 0.0,
    statistics: GroupStatistics | None = None,
) -> GroupSnapshot:
    """A GroupSnapshot (arguments in its own order); by default group 101 running, started
    by a client, at the epoch, with no statistics."""
    return GroupSnapshot(
        group if group is not None else identity(),
        status,
        dialing,
        action,
        actor,
        at,
        statistics if statistics is not None else GroupStatistics(),
    )
