"""The CampaignGroupState JSON body (docs/contract.md#body), built from an immutable snapshot."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
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
from ocsd.core.statistics import GroupStatistics, ListStatistics


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


# The periodic send path builds one snapshot per notification: set through the slots'
# descriptors, as ocsd.core.statistics's fast constructors do (a frozen dataclass's
# __init__ goes through object.__setattr__ per field, about twice the time).
_set_snapshot_fields: tuple[Callable[[object, object], None], ...] = tuple(
    getattr(GroupSnapshot, f.name).__set__ for f in fields(GroupSnapshot)
)


def periodic_snapshot(
    identity: GroupIdentity,
    status: GroupStatus,
    dialing: Dialing | None,
    at: float,
    statistics: GroupStatistics,
) -> GroupSnapshot:
    """``GroupSnapshot(identity, status, dialing, Action.PERIODIC, Actor.UNKNOWN, at,
    statistics)``, faster."""
    snapshot: GroupSnapshot = object.__new__(GroupSnapshot)
    set_identity, set_status, set_dialing, set_action, set_actor, set_at, set_statistics = (
        _set_snapshot_fields
    )
    set_identity(snapshot, identity)
    set_status(snapshot, status)
    set_dialing(snapshot, dialing)
    set_action(snapshot, Action.PERIODIC)
    set_actor(snapshot, Actor.UNKNOWN)
    set_at(snapshot, at)
    set_statistics(snapshot, statistics)
    return snapshot


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


#: Where a statistic goes in a group's body template (see :class:`BodyEncoder`).
_SLOT = "\x00"
_SLOT_JSON = '"\\u0000"'  # how orjson writes it: split the encoded body there


def _number_text(value: float | None) -> str:
    """``orjson.dumps(_number(value))`` as text, without ``round``.

    ``round(x, 4)`` and ``repr`` each run a correctly rounded decimal conversion: about
    8,000 instructions a statistic (callgrind), six per body. ``f"{x:.4f}"`` is the same
    correctly rounded decimal in one conversion (2,400); below 1e11 it has at most 15
    significant digits, so it is also the shortest form of the float ``round`` gives,
    which is what orjson writes (tests/unit/test_body.py holds the three equal). Larger
    values, NaN and the infinities take the long way (orjson writes ``null`` for the
    last three).
    """
    if value is None:
        return "null"
    number = float(value)
    if -1e11 < number < 1e11:
        text = f"{number:.4f}".rstrip("0")
        return text + "0" if text[-1] == "." else text
    rounded = round(number, 4)
    if -1e308 < rounded < 1e308:
        return repr(rounded)
    return orjson.dumps(rounded).decode()


def _template(snapshot: GroupSnapshot, tenant: Tenant) -> tuple[str, ...] | None:
    """The body of this snapshot as text around its statistics: the pieces between
    ``GSW_DATE_TIME``'s value and the first statistic, between each two statistics, and
    after the last. Statistics in order: busy factor, hit ratio, overdial rate, time to
    complete, then each list's hit ratio and time to complete."""
    body = build_body(snapshot, tenant)
    body[GSW_DATE_TIME] = ""
    for key in (GSW_STAT_BUSY_FACTOR, GSW_STAT_HIT_RATIO, GSW_STAT_OVERDIAL_RATE):
        body[key] = _SLOT
    body[GSW_STAT_TIME_TO_COMPLETE] = _SLOT
    for entry in body[GSW_CALLING_LISTS]:
        entry[GSW_STAT_HIT_RATIO] = entry[GSW_STAT_TIME_TO_COMPLETE] = _SLOT
    text = orjson.dumps(body).decode()
    pieces = tuple(text[len(_HEAD) :].split(_SLOT_JSON))  # text[len(_HEAD)] is '"'
    if len(pieces) != 5 + 2 * len(body[GSW_CALLING_LISTS]):
        return None  # a name that is exactly the gap's mark: no template for this group
    return pieces


_HEAD = '{"' + GSW_USER_EVENT + '":"' + USER_EVENT + '","' + GSW_DATE_TIME + '":"'


class BodyEncoder:
    """``encode(build_body(snapshot, tenant))``, byte for byte, from a template per group.

    Between two notifications of a group only ``GSW_DATE_TIME`` and the statistics
    change (while its status, dial mode, action and actor stay): the rest of its body
    is kept as text with a gap for each of those, made once, and a body is the pieces
    and the numbers joined. Counted with callgrind (the periodic body of a running
    one-list group, bench/body_instructions.py): 36,500 instructions a body, against
    49,500 for the encoder it replaced (identity fields cached, the rest a dict through
    orjson) and 63,000 for ``encode(build_body(...))``; a single ``%`` format per group
    instead of the pieces took 44,100 (the format is parsed each time). A property test
    (tests/unit/test_body.py) holds the two byte-identical.
    """

    def __init__(self) -> None:
        # dbid -> what its template was made from, and the template
        self._templates: dict[int, _Template] = {}

    def encode(self, snapshot: GroupSnapshot, tenant: Tenant) -> bytes:
        ident = snapshot.identity
        stats = snapshot.statistics
        lists = stats.calling_lists
        entry = self._templates.get(ident.dbid)
        if (
            entry is None
            or entry.identity is not ident
            or entry.tenant is not tenant
            or entry.status is not snapshot.status
            or entry.dialing is not snapshot.dialing
            or entry.action is not snapshot.action
            or entry.actor is not snapshot.actor
            or not entry.has_lists(lists)
        ):
            entry = _Template(snapshot, tenant)
            self._templates[ident.dbid] = entry
        pieces = entry.pieces
        if pieces is None:
            return encode(build_body(snapshot, tenant))
        parts = [
            _HEAD,
            format_date_time(snapshot.at),
            pieces[0],
            _number_text(stats.busy_factor),
            pieces[1],
            _number_text(stats.hit_ratio),
            pieces[2],
            _number_text(stats.overdial_rate),
            pieces[3],
            _number_text(stats.time_to_complete),
        ]
        index = 4
        for cl in lists:
            parts += (
                pieces[index],
                _number_text(cl.hit_ratio),
                pieces[index + 1],
                _number_text(cl.time_to_complete),
            )
            index += 2
        parts.append(pieces[index])
        return "".join(parts).encode()

    def forget(self, dbid: int) -> None:
        """A group gone from the configuration."""
        self._templates.pop(dbid, None)


class _Template:
    """A group's body template and what it was made from (compared by identity)."""

    __slots__ = ("action", "actor", "dialing", "identity", "lists", "pieces", "status", "tenant")

    def __init__(self, snapshot: GroupSnapshot, tenant: Tenant) -> None:
        self.identity = snapshot.identity
        self.tenant = tenant
        self.status = snapshot.status
        self.dialing = snapshot.dialing
        self.action = snapshot.action
        self.actor = snapshot.actor
        self.lists = [(cl.name, cl.dbid) for cl in snapshot.statistics.calling_lists]
        self.pieces = _template(snapshot, tenant)

    def has_lists(self, lists: tuple[ListStatistics, ...]) -> bool:
        """Whether the template was made for these calling lists (names and DBIDs)."""
        mine = self.lists
        if len(mine) != len(lists):
            return False
        for (name, dbid), cl in zip(mine, lists, strict=True):
            if cl.name != name or cl.dbid != dbid:
                return False
        return True
