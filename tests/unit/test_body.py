"""The CampaignGroupState JSON body of spec section 2."""

from __future__ import annotations

import json
import re
from dataclasses import FrozenInstanceError, replace
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.contract import DIALING_FIELDS, assert_mandatory_fields
from support.identities import TENANT, identity

from ocsd.core.body import (
    BodyEncoder,
    GroupSnapshot,
    _number,
    _number_text,
    build_body,
    encode,
    format_date_time,
    periodic_snapshot,
)
from ocsd.core.genesys import Action, Actor, DialMode, GroupStatus, OptimizeBy
from ocsd.core.identity import CallingListIdentity, GroupIdentity, Tenant
from ocsd.core.lifecycle import Dialing
from ocsd.core.statistics import GroupStatistics, ListStatistics

AT = 1763912345.1234

IDENTITY = identity(lists=[("Renewals_Q4", 201), ("Renewals_Lapsed", 202)])
STATISTICS = GroupStatistics(
    busy_factor=0.85,
    hit_ratio=0.3,
    overdial_rate=0.02,
    time_to_complete=600.0,
    calling_lists=(
        ListStatistics("Renewals_Q4", 201, hit_ratio=0.25, time_to_complete=420.0),
        ListStatistics("Renewals_Lapsed", 202),
    ),
)

PREDICTIVE_MODES = {1, 5, 10}


def snapshot(
    status: GroupStatus = GroupStatus.RUNNING,
    dialing: Dialing | None = None,
    *,
    identity: GroupIdentity = IDENTITY,
    action: Action = Action.START,
    actor: Actor = Actor.CLIENT,
    at: float = AT,
    statistics: GroupStatistics = STATISTICS,
) -> GroupSnapshot:
    return GroupSnapshot(identity, status, dialing, action, actor, at, statistics)


def common_fields(status: GroupStatus, action: Action) -> dict[str, Any]:
    return {
        "GSW_USER_EVENT": "CampaignGroupState",
        "GSW_DATE_TIME": "1763912345.123",
        "GSW_TENANT_NAME": "Environment",
        "GSW_TENANT_CCID": "101",
        "GSW_CAMPAIGN_GROUP_NAME": "Renewals@Retention Team",
        "GSW_CAMPAIGN_GROUP_UUID": "0d6b3a52-9a7e-4c71-8f0e-2f5d1c7b9e44",
        "GSW_CAMPAIGN_GROUP_DBID": "101",
        "GSW_GROUP_NAME": "Retention Team",
        "GSW_CAMPAIGN_NAME": "Renewals",
        "GSW_QUEUE_NAME": "7001",
        "GSW_CAMPAIGN_GROUP_STATUS": int(status),
        "GSW_CAMPAIGN_GROUP_ACTION": int(action),
        "GSW_CAMPAIGN_GROUP_ACTOR": 1,
        "GSW_STAT_BUSY_FACTOR": 0.85,
        "GSW_STAT_HIT_RATIO": 0.3,
        "GSW_STAT_OVERDIAL_RATE": 0.02,
        "GSW_STAT_TIME_TO_COMPLETE": 600,
        "GSW_CALLING_LISTS": [
            {
                "GSW_CALLING_LIST_NAME": "Renewals_Q4",
                "GSW_CALLING_LIST_DBID": "201",
                "GSW_STAT_HIT_RATIO": 0.25,
                "GSW_STAT_TIME_TO_COMPLETE": 420,
            },
            {
                "GSW_CALLING_LIST_NAME": "Renewals_Lapsed",
                "GSW_CALLING_LIST_DBID": "202",
                "GSW_STAT_HIT_RATIO": None,
                "GSW_STAT_TIME_TO_COMPLETE": None,
            },
        ],
    }


def test_running_predictive_group() -> None:
    dialing = Dialing(DialMode.PREDICTIVE, OptimizeBy.BUSY_FACTOR, 85)

    body = build_body(snapshot(GroupStatus.RUNNING, dialing), TENANT)

    assert body == {
        **common_fields(GroupStatus.RUNNING, Action.START),
        "GSW_DIAL_MODE": 1,
        "GSW_OPTIMIZE_BY": 1,
        "GSW_OPTIMIZE_GOAL": 85,
    }


def test_running_progressive_group_has_a_dial_mode_but_no_optimization() -> None:
    body = build_body(snapshot(GroupStatus.RUNNING, Dialing(DialMode.PROGRESSIVE)), TENANT)

    assert body == {**common_fields(GroupStatus.RUNNING, Action.START), "GSW_DIAL_MODE": 2}


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (GroupStatus.ACTIVE, Action.LOAD),
        (GroupStatus.ACTIVE, Action.STOP),
        (GroupStatus.NOT_LOADED, Action.UNLOAD),
        (GroupStatus.WAITING_UNLOAD, Action.PERIODIC),
    ],
)
def test_a_group_that_is_not_running_has_no_dial_mode(status: GroupStatus, action: Action) -> None:
    body = build_body(snapshot(status, None, action=action), TENANT)

    assert body == common_fields(status, action)


def test_no_dial_mode_when_not_running_even_if_the_snapshot_holds_a_dialing() -> None:
    dialing = Dialing(DialMode.PREDICTIVE, OptimizeBy.BUSY_FACTOR, 85)

    body = build_body(snapshot(GroupStatus.ACTIVE, dialing, action=Action.STOP), TENANT)

    assert DIALING_FIELDS.isdisjoint(body)


def test_the_template_name_is_sent_only_when_configured() -> None:
    with_template = replace(IDENTITY, template="Retention Outbound Template")

    assert "GSW_CAMPAIGN_TEMPLATE_NAME" not in build_body(snapshot(), TENANT)
    body = build_body(snapshot(identity=with_template), TENANT)
    assert body["GSW_CAMPAIGN_TEMPLATE_NAME"] == "Retention Outbound Template"


def test_tenant_fields_default_to_unknown() -> None:
    body = build_body(snapshot(), Tenant())

    assert body["GSW_TENANT_NAME"] == "Unknown"
    assert body["GSW_TENANT_CCID"] == "Unknown"


@pytest.mark.parametrize(
    ("epoch", "text"),
    [
        (1763912345.1234, "1763912345.123"),
        (1763912345.0, "1763912345.000"),
        (1763912345.5, "1763912345.500"),
        (1763912345.05, "1763912345.050"),
    ],
)
def test_date_time_is_epoch_seconds_with_milliseconds(epoch: float, text: str) -> None:
    assert format_date_time(epoch) == text
    assert build_body(snapshot(at=epoch), TENANT)["GSW_DATE_TIME"] == text


def test_statistics_are_null_before_there_is_data() -> None:
    empty = GroupStatistics(calling_lists=(ListStatistics("Renewals_Q4", 201),))

    body = build_body(snapshot(statistics=empty), TENANT)

    for field in (
        "GSW_STAT_BUSY_FACTOR",
        "GSW_STAT_HIT_RATIO",
        "GSW_STAT_OVERDIAL_RATE",
        "GSW_STAT_TIME_TO_COMPLETE",
    ):
        assert field in body
        assert body[field] is None
    assert body["GSW_CALLING_LISTS"] == [
        {
            "GSW_CALLING_LIST_NAME": "Renewals_Q4",
            "GSW_CALLING_LIST_DBID": "201",
            "GSW_STAT_HIT_RATIO": None,
            "GSW_STAT_TIME_TO_COMPLETE": None,
        }
    ]


def test_zero_statistics_are_numbers_not_null() -> None:
    zero = GroupStatistics(0.0, 0.0, 0.0, 0.0)

    body = build_body(snapshot(statistics=zero), TENANT)

    assert body["GSW_STAT_OVERDIAL_RATE"] == 0
    assert body["GSW_STAT_TIME_TO_COMPLETE"] == 0
    assert body["GSW_STAT_BUSY_FACTOR"] is not None


@pytest.mark.parametrize("loads", [orjson.loads, json.loads])
def test_encode_gives_bytes_that_parse_back_to_the_body(loads: Any) -> None:
    dialing = Dialing(DialMode.PREDICTIVE, OptimizeBy.BUSY_FACTOR, 85)
    identity = replace(IDENTITY, name='Énquête «Q4» "x"', template="Modèle")
    body = build_body(snapshot(GroupStatus.RUNNING, dialing, identity=identity), TENANT)

    wire = encode(body)

    assert isinstance(wire, bytes)
    assert loads(wire) == body


# -- property: the presence rules of spec section 2 ---------------------------------

_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
_stat = st.none() | st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)


@st.composite
def snapshots(draw: st.DrawFn) -> GroupSnapshot:
    lists = draw(
        st.lists(
            st.builds(ListStatistics, _text, st.integers(1, 2**31 - 1), _stat, _stat),
            max_size=4,
        )
    )
    identity = GroupIdentity(
        name=draw(_text),
        dbid=draw(st.integers(1, 2**31 - 1)),
        uuid=str(draw(st.uuids())),
        campaign=draw(_text),
        group=draw(_text),
        queue=draw(_text),
        template=draw(st.none() | _text),
        calling_lists=tuple(CallingListIdentity(cl.name, cl.dbid) for cl in lists),
    )
    status = draw(st.sampled_from(GroupStatus))
    dialing = draw(
        st.builds(
            Dialing,
            st.sampled_from(DialMode),
            st.sampled_from(OptimizeBy),
            st.integers(0, 3600),
        )
    )
    if status != GroupStatus.RUNNING and draw(st.booleans()):
        dialing = None  # a group that is not running usually has no dialing at all
    return GroupSnapshot(
        identity=identity,
        status=status,
        dialing=dialing,
        action=draw(st.sampled_from(Action)),
        actor=draw(st.sampled_from(Actor)),
        at=draw(st.floats(min_value=0, max_value=4e9)),
        statistics=GroupStatistics(
            draw(_stat), draw(_stat), draw(_stat), draw(_stat), tuple(lists)
        ),
    )


def _is_json_number_or_null(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


@given(snapshots(), _text, _text)
def test_every_body_obeys_the_presence_rules(
    snap: GroupSnapshot, tenant_name: str, tenant_ccid: str
) -> None:
    body = orjson.loads(encode(build_body(snap, Tenant(tenant_name, tenant_ccid))))

    assert_mandatory_fields(body)
    assert abs(float(body["GSW_DATE_TIME"]) - snap.at) < 0.001
    assert (body["GSW_TENANT_NAME"], body["GSW_TENANT_CCID"]) == (tenant_name, tenant_ccid)
    assert re.fullmatch(r"\d+", body["GSW_CAMPAIGN_GROUP_DBID"])
    assert int(body["GSW_CAMPAIGN_GROUP_DBID"]) == snap.identity.dbid
    assert body["GSW_CAMPAIGN_GROUP_STATUS"] == int(snap.status)
    assert body["GSW_CAMPAIGN_GROUP_ACTION"] == int(snap.action)
    assert body["GSW_CAMPAIGN_GROUP_ACTOR"] == int(snap.actor)
    assert ("GSW_CAMPAIGN_TEMPLATE_NAME" in body) == (snap.identity.template is not None)

    running = snap.status == GroupStatus.RUNNING
    assert ("GSW_DIAL_MODE" in body) == running
    predictive = running and snap.dialing is not None and snap.dialing.mode in PREDICTIVE_MODES
    assert ("GSW_OPTIMIZE_BY" in body) == predictive
    assert ("GSW_OPTIMIZE_GOAL" in body) == predictive
    if running:
        assert snap.dialing is not None
        assert body["GSW_DIAL_MODE"] == int(snap.dialing.mode)
        assert isinstance(body["GSW_DIAL_MODE"], int)
    if predictive:
        assert snap.dialing is not None
        assert body["GSW_OPTIMIZE_BY"] == int(snap.dialing.optimize_by)
        assert body["GSW_OPTIMIZE_GOAL"] == snap.dialing.optimize_goal

    for field, value in (
        ("GSW_STAT_BUSY_FACTOR", snap.statistics.busy_factor),
        ("GSW_STAT_HIT_RATIO", snap.statistics.hit_ratio),
        ("GSW_STAT_OVERDIAL_RATE", snap.statistics.overdial_rate),
        ("GSW_STAT_TIME_TO_COMPLETE", snap.statistics.time_to_complete),
    ):
        assert (body[field] is None) == (value is None), field
        if value is not None:
            assert body[field] >= 0
            assert body[field] == pytest.approx(value, abs=1e-4)

    assert len(body["GSW_CALLING_LISTS"]) == len(snap.statistics.calling_lists)
    for entry, cl in zip(body["GSW_CALLING_LISTS"], snap.statistics.calling_lists, strict=True):
        assert set(entry) == {
            "GSW_CALLING_LIST_NAME",
            "GSW_CALLING_LIST_DBID",
            "GSW_STAT_HIT_RATIO",
            "GSW_STAT_TIME_TO_COMPLETE",
        }
        assert entry["GSW_CALLING_LIST_NAME"] == cl.name
        assert entry["GSW_CALLING_LIST_DBID"] == str(cl.dbid)
        assert _is_json_number_or_null(entry["GSW_STAT_HIT_RATIO"])
        assert _is_json_number_or_null(entry["GSW_STAT_TIME_TO_COMPLETE"])
        assert (entry["GSW_STAT_HIT_RATIO"] is None) == (cl.hit_ratio is None)
        assert (entry["GSW_STAT_TIME_TO_COMPLETE"] is None) == (cl.time_to_complete is None)


@given(snapshots(), _text, _text)
def test_the_fast_encoder_writes_exactly_what_build_body_and_encode_write(
    snapshot: GroupSnapshot, tenant_name: str, tenant_ccid: str
) -> None:
    tenant = Tenant(tenant_name, tenant_ccid)
    encoder = BodyEncoder()
    assert encoder.encode(snapshot, tenant) == encode(build_body(snapshot, tenant))
    # again from its cache, and after the tenant changed (a reload)
    assert encoder.encode(snapshot, tenant) == encode(build_body(snapshot, tenant))
    other = Tenant(tenant_name + "x", tenant_ccid)
    assert encoder.encode(snapshot, other) == encode(build_body(snapshot, other))


def test_the_fast_encoder_follows_a_renamed_group() -> None:
    encoder = BodyEncoder()
    before = snapshot(GroupStatus.ACTIVE, action=Action.PERIODIC)
    renamed = replace(before, identity=replace(before.identity, name="Renamed@Team"))
    encoder.encode(before, Tenant())
    body = orjson.loads(encoder.encode(renamed, Tenant()))
    assert body["GSW_CAMPAIGN_GROUP_NAME"] == "Renamed@Team"


_any_stat = st.none() | st.floats(allow_nan=True, allow_infinity=True)


@given(st.lists(snapshots(), min_size=1, max_size=8), st.data())
def test_one_encoder_follows_a_group_through_any_sequence_of_snapshots(
    sequence: list[GroupSnapshot], data: st.DataObject
) -> None:
    """The daemon keeps one encoder for its life: each group's template must follow a
    change of status, dial mode, action, actor, calling lists or tenant, and any
    statistic (NaN, infinities and huge values included) must come out as orjson writes
    it."""
    encoder = BodyEncoder()
    tenant = Tenant()
    for drawn in sequence:
        same_group = replace(drawn, identity=sequence[0].identity)
        lists = tuple(
            replace(cl, hit_ratio=data.draw(_any_stat), time_to_complete=data.draw(_any_stat))
            for cl in same_group.statistics.calling_lists
        )
        stats = GroupStatistics(
            data.draw(_any_stat), data.draw(_any_stat), data.draw(_any_stat),
            data.draw(_any_stat), lists,
        )  # fmt: skip
        snap = replace(same_group, statistics=stats)
        if data.draw(st.booleans()):
            tenant = Tenant(data.draw(_text), data.draw(_text))
        assert encoder.encode(snap, tenant) == encode(build_body(snap, tenant))


def test_a_name_that_is_exactly_the_templates_gap_mark_is_encoded_right() -> None:
    encoder = BodyEncoder()
    for name in ("\x00", "a\x00b"):
        snap = snapshot(identity=replace(IDENTITY, name=name, queue="\x00"))
        assert encoder.encode(snap, Tenant("\x00", "\x00")) == encode(
            build_body(snap, Tenant("\x00", "\x00"))
        )


@given(snapshots())
def test_the_fast_periodic_snapshot_is_the_dataclasss_own(drawn: GroupSnapshot) -> None:
    fast = periodic_snapshot(
        drawn.identity, drawn.status, drawn.dialing, drawn.at, drawn.statistics
    )
    expected = replace(drawn, action=Action.PERIODIC, actor=Actor.UNKNOWN)
    assert fast == expected and hash(fast) == hash(expected)
    with pytest.raises(FrozenInstanceError):
        fast.at = 0.0  # type: ignore[misc]


@given(
    st.none()
    | st.floats()
    | st.floats(min_value=-1e12, max_value=1e12)
    | st.floats(min_value=-1, max_value=1)
    | st.integers(0, 10**6).map(lambda n: n / 10_000 + 0.00005)  # exactly half-way, nearly
)
def test_a_statistic_is_written_as_orjson_writes_it_rounded(value: float | None) -> None:
    assert _number_text(value) == orjson.dumps(_number(value)).decode()
