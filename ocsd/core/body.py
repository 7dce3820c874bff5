"""The CampaignGroupState JSON body (docs/contract.md#body), built from an immutable snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ocsd.core.genesys import (
    GSW_CALLING_LIST_DBID,
    GSW_CALLING_LIST_NAME,
    GSW_CALLING_LISTS,
    GSW_CAMPAIGN_GROUP_ACTION,
    GSW_CAMPAIGN_GROUP_ACTOR,
    GSW_CAMPAIGN_GROUP_DBID,
    GSW_CAMPAIGN_GROUP_NAME,
    GSW_CAMPAIGN_GROUP_STATUS,
    GSW_CAMPAIGN_GROUP_UUID,
    GSW_CAMPAIGN_NAME,
    GSW_CAMPAIGN_TEMPLATE_NAME,
    GSW_DATE_TIME,
    GSW_DIAL_MODE,
    GSW_GROUP_NAME,
    GSW_OPTIMIZE_BY,
    GSW_OPTIMIZE_GOAL,
    GSW_QUEUE_NAME,
    GSW_STAT_BUSY_FACTOR,
    GSW_STAT_HIT_RATIO,
    GSW_STAT_OVERDIAL_RATE,
    GSW_STAT_TIME_TO_COMPLETE,
    GSW_TENANT_CCID,
    GSW_TENANT_NAME,
    GSW_USER_EVENT,
    USER_EVENT,
    Action,
    Actor,
    GroupStatus,
    is_predictive,
)
from ocsd.core.identity import GroupIdentity, Tenant
from ocsd.core.lifecycle import Dialing
from ocsd.core.statistics import GroupStatistics


@dataclass(frozen=True, slots=True)
class GroupSnapshot:
    """Everything one notification says about one group at one instant."""

    identity: GroupIdentity
    status: GroupStatus
    dialing: Dialing | None
    action: Action
    actor: Actor
    at: float  # epoch seconds
    statistics: GroupStatistics

    @property
    def periodic(self) -> bool:
        return self.action == Action.PERIODIC


def format_date_time(epoch: float) -> str:
    """Epoch seconds with millisecond precision, as a string: ``"1763912345.123"``."""
    return f"{epoch:.3f}"


def _number(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def build_body(snapshot: GroupSnapshot, tenant: Tenant) -> dict[str, Any]:
    """The JSON object of docs/contract.md#body; optional fields are left out, not null."""
    return {
        GSW_USER_EVENT: USER_EVENT,
        GSW_DATE_TIME: format_date_time(snapshot.at),
        **_identity_fields(snapshot.identity, tenant),
        **_changing_fields(snapshot),
    }


def _identity_fields(ident: GroupIdentity, tenant: Tenant) -> dict[str, Any]:
    """The fields that change only with the configuration: tenant and group identity."""
    fields: dict[str, Any] = {
        GSW_TENANT_NAME: tenant.name,
        GSW_TENANT_CCID: tenant.ccid,
        GSW_CAMPAIGN_GROUP_NAME: ident.name,
        GSW_CAMPAIGN_GROUP_UUID: ident.uuid,
        GSW_CAMPAIGN_GROUP_DBID: str(ident.dbid),
        GSW_GROUP_NAME: ident.group,
        GSW_CAMPAIGN_NAME: ident.campaign,
    }
    if ident.template is not None:
        fields[GSW_CAMPAIGN_TEMPLATE_NAME] = ident.template
    fields[GSW_QUEUE_NAME] = ident.queue
    return fields


def _changing_fields(snapshot: GroupSnapshot) -> dict[str, Any]:
    """The fields that change from one notification to the next: state and statistics."""
    stats = snapshot.statistics
    fields: dict[str, Any] = {}
    if snapshot.status == GroupStatus.RUNNING and snapshot.dialing is not None:
        fields[GSW_DIAL_MODE] = int(snapshot.dialing.mode)
        if is_predictive(snapshot.dialing.mode):
            fields[GSW_OPTIMIZE_BY] = int(snapshot.dialing.optimize_by)
            fields[GSW_OPTIMIZE_GOAL] = int(snapshot.dialing.optimize_goal)
    fields[GSW_CAMPAIGN_GROUP_STATUS] = int(snapshot.status)
    fields[GSW_CAMPAIGN_GROUP_ACTION] = int(snapshot.action)
    fields[GSW_CAMPAIGN_GROUP_ACTOR] = int(snapshot.actor)
    fields[GSW_STAT_BUSY_FACTOR] = _number(stats.busy_factor)
    fields[GSW_STAT_HIT_RATIO] = _number(stats.hit_ratio)
    fields[GSW_STAT_OVERDIAL_RATE] = _number(stats.overdial_rate)
    fields[GSW_STAT_TIME_TO_COMPLETE] = _number(stats.time_to_complete)
    fields[GSW_CALLING_LISTS] = [
        {
            GSW_CALLING_LIST_NAME: cl.name,
            GSW_CALLING_LIST_DBID: str(cl.dbid),
            GSW_STAT_HIT_RATIO: _number(cl.hit_ratio),
            GSW_STAT_TIME_TO_COMPLETE: _number(cl.time_to_complete),
        }
        for cl in stats.calling_lists
    ]
    return fields


def encode(body: dict[str, Any]) -> bytes:
    """Serialize once, with orjson; the bytes are what goes on the wire."""
    return orjson.dumps(body)


_HEAD = (
    b'{"'
    + GSW_USER_EVENT.encode()
    + b'":"'
    + USER_EVENT.encode()
    + b'","'
    + GSW_DATE_TIME.encode()
    + b'":"'
)


class BodyEncoder:
    """``encode(build_body(snapshot, tenant))``, byte for byte.

    What a group's body says about its identity and tenant (nine of its fields) only
    changes with a reload, so it is encoded once per group and spliced in; only the
    fields that change are built and serialized per notification. What it saves is
    memory traffic more than work: a notification reads one small bytes object per group
    instead of a dozen strings scattered in memory. python bench/fast_paths.py (18,000
    running groups, cold caches, best of 9 interleaved): 10.8-11.4 µs a body, against
    12.4-16.1 µs for ``encode(build_body(...))``; a property test holds them equal.
    """

    def __init__(self) -> None:
        # dbid -> (identity, tenant) it was made from, and the encoded fields
        self._identities: dict[int, tuple[GroupIdentity, Tenant, bytes]] = {}

    def encode(self, snapshot: GroupSnapshot, tenant: Tenant) -> bytes:
        ident = snapshot.identity
        cached = self._identities.get(ident.dbid)
        if cached is None or cached[0] is not ident or cached[1] is not tenant:
            cached = (ident, tenant, orjson.dumps(_identity_fields(ident, tenant))[1:-1])
            self._identities[ident.dbid] = cached
        stamp = format_date_time(snapshot.at).encode()
        # without its "{", not copied
        changed = memoryview(orjson.dumps(_changing_fields(snapshot)))[1:]
        return b"".join((_HEAD, stamp, b'",', cached[2], b",", changed))

    def forget(self, dbid: int) -> None:
        """A group gone from the configuration."""
        self._identities.pop(dbid, None)
