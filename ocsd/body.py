"""The CampaignGroupState JSON body (spec section 2), built from an immutable snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ocsd.campaign import Dialing, GroupIdentity
from ocsd.genesys import Action, Actor, GroupStatus, is_predictive
from ocsd.stats import GroupStatistics

USER_EVENT = "CampaignGroupState"
UNKNOWN = "Unknown"  # spec 2: tenant fields default to "Unknown"


@dataclass(frozen=True, slots=True)
class Tenant:
    name: str = UNKNOWN
    ccid: str = UNKNOWN


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
    """The JSON object of spec section 2; optional fields are left out, not null."""
    ident = snapshot.identity
    stats = snapshot.statistics
    body: dict[str, Any] = {
        "GSW_USER_EVENT": USER_EVENT,
        "GSW_DATE_TIME": format_date_time(snapshot.at),
        "GSW_TENANT_NAME": tenant.name,
        "GSW_TENANT_CCID": tenant.ccid,
        "GSW_CAMPAIGN_GROUP_NAME": ident.name,
        "GSW_CAMPAIGN_GROUP_UUID": ident.uuid,
        "GSW_CAMPAIGN_GROUP_DBID": str(ident.dbid),
        "GSW_GROUP_NAME": ident.group,
        "GSW_CAMPAIGN_NAME": ident.campaign,
    }
    if ident.template is not None:
        body["GSW_CAMPAIGN_TEMPLATE_NAME"] = ident.template
    body["GSW_QUEUE_NAME"] = ident.queue
    if snapshot.status == GroupStatus.RUNNING and snapshot.dialing is not None:
        body["GSW_DIAL_MODE"] = int(snapshot.dialing.mode)
        if is_predictive(snapshot.dialing.mode):
            body["GSW_OPTIMIZE_BY"] = int(snapshot.dialing.optimize_by)
            body["GSW_OPTIMIZE_GOAL"] = int(snapshot.dialing.optimize_goal)
    body["GSW_CAMPAIGN_GROUP_STATUS"] = int(snapshot.status)
    body["GSW_CAMPAIGN_GROUP_ACTION"] = int(snapshot.action)
    body["GSW_CAMPAIGN_GROUP_ACTOR"] = int(snapshot.actor)
    body["GSW_STAT_BUSY_FACTOR"] = _number(stats.busy_factor)
    body["GSW_STAT_HIT_RATIO"] = _number(stats.hit_ratio)
    body["GSW_STAT_OVERDIAL_RATE"] = _number(stats.overdial_rate)
    body["GSW_STAT_TIME_TO_COMPLETE"] = _number(stats.time_to_complete)
    body["GSW_CALLING_LISTS"] = [
        {
            "GSW_CALLING_LIST_NAME": cl.name,
            "GSW_CALLING_LIST_DBID": str(cl.dbid),
            "GSW_STAT_HIT_RATIO": _number(cl.hit_ratio),
            "GSW_STAT_TIME_TO_COMPLETE": _number(cl.time_to_complete),
        }
        for cl in stats.calling_lists
    ]
    return body


def encode(body: dict[str, Any]) -> bytes:
    """Serialize once, with orjson; the bytes are what goes on the wire."""
    return orjson.dumps(body)
