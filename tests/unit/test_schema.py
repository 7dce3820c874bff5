"""The JSON Schema of the CampaignGroupState body (ocsd/schema/, ``ocsd schema``).

Every body ``ocsd.core.body.build_body`` can make from a possible group state validates
(hypothesis), and bodies that break a rule of spec section 2 are refused with a
problem naming the field and the rule.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from support.contract import LIST_FIELDS, MANDATORY, OPTIONAL
from support.identities import TENANT, identity

from ocsd.cli import main
from ocsd.core.body import GroupSnapshot, build_body, encode
from ocsd.core.genesys import (
    PREDICTIVE_MODES,
    Action,
    Actor,
    DialMode,
    GroupStatus,
    OptimizeBy,
)
from ocsd.core.identity import CallingListIdentity, GroupIdentity, Tenant
from ocsd.core.lifecycle import Dialing
from ocsd.core.statistics import GroupStatistics, ListStatistics
from ocsd.receiver.validate import is_valid, load_schema, schema_problems, schema_text, validator

IDENTITY = identity(template="Retention Outbound Template", lists=[("Renewals_Q4", 201)])
STATISTICS = GroupStatistics(
    busy_factor=0.85,
    hit_ratio=0.3,
    overdial_rate=0.02,
    time_to_complete=600.0,
    calling_lists=(ListStatistics("Renewals_Q4", 201, hit_ratio=0.25, time_to_complete=420.0),),
)


PREDICTIVE = Dialing(DialMode.PREDICTIVE, OptimizeBy.BUSY_FACTOR, 85)


def make_body(
    status: GroupStatus = GroupStatus.RUNNING,
    dialing: Dialing | None = PREDICTIVE,
    action: Action = Action.START,
    actor: Actor = Actor.CLIENT,
) -> dict[str, Any]:
    snapshot = GroupSnapshot(IDENTITY, status, dialing, action, actor, 1763912345.123, STATISTICS)
    return orjson.loads(encode(build_body(snapshot, TENANT)))


RUNNING = make_body()
ACTIVE = make_body(GroupStatus.ACTIVE, None, Action.STOP)
PROGRESSIVE = make_body(dialing=Dialing(DialMode.PROGRESSIVE))


def with_(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(body))
    copy.update(changes)
    return copy


def without(body: dict[str, Any], *names: str) -> dict[str, Any]:
    copy = json.loads(json.dumps(body))
    for name in names:
        del copy[name]
    return copy


def first_problem(body: Any) -> tuple[str | None, str]:
    problems = schema_problems(body)
    assert problems, f"the schema accepted {body!r}"
    assert not is_valid(body)
    return problems[0].field, problems[0].rule


# -- the document ----------------------------------------------------------------------


def test_the_schema_is_a_valid_draft_2020_12_schema_shipped_in_the_package():
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert set(schema["required"]) == set(MANDATORY)
    assert set(schema["properties"]) == set(MANDATORY) | set(OPTIONAL)
    assert schema["additionalProperties"] is False
    items = schema["properties"]["GSW_CALLING_LISTS"]["items"]
    assert set(items["required"]) == set(items["properties"]) == set(LIST_FIELDS)


def test_the_schema_enums_are_the_genesys_enums_of_the_code():
    props = load_schema()["properties"]
    assert props["GSW_DIAL_MODE"]["enum"] == [int(m) for m in DialMode]
    assert props["GSW_OPTIMIZE_BY"]["enum"] == [int(m) for m in OptimizeBy]
    assert props["GSW_CAMPAIGN_GROUP_STATUS"]["enum"] == [int(s) for s in GroupStatus]
    assert props["GSW_CAMPAIGN_GROUP_ACTION"]["enum"] == [int(a) for a in Action]
    assert props["GSW_CAMPAIGN_GROUP_ACTOR"]["enum"] == [int(a) for a in Actor]
    (predictive,) = [r for r in load_schema()["allOf"] if "predictive" in r["title"]]
    assert set(predictive["if"]["properties"]["GSW_DIAL_MODE"]["enum"]) == {
        int(m) for m in PREDICTIVE_MODES
    }


def test_ocsd_schema_prints_the_schema(capsys):
    assert main(["schema"]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed) == load_schema()
    assert printed == schema_text()


def test_a_user_validates_with_plain_jsonschema():
    import jsonschema

    jsonschema.validate(RUNNING, load_schema(), cls=Draft202012Validator)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(without(RUNNING, "GSW_DATE_TIME"), load_schema())


# -- every body the builder makes validates -----------------------------------------------

names = st.text(min_size=1, max_size=24)
dbids = st.integers(min_value=0, max_value=10**12)
fractions = st.none() | st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
seconds = st.none() | st.floats(min_value=0.0, max_value=1e9, allow_nan=False)
dialings = st.builds(
    Dialing,
    mode=st.sampled_from(DialMode),
    optimize_by=st.sampled_from(OptimizeBy),
    optimize_goal=st.integers(min_value=0, max_value=3600),
)


@st.composite
def snapshots(draw: st.DrawFn) -> GroupSnapshot:
    lists = draw(
        st.lists(st.builds(CallingListIdentity, name=names, dbid=dbids), min_size=0, max_size=6)
    )
    identity = GroupIdentity(
        name=draw(names),
        dbid=draw(dbids),
        uuid=str(draw(st.uuids())),
        campaign=draw(names),
        group=draw(names),
        queue=draw(names),
        template=draw(st.none() | names),
        calling_lists=tuple(lists),
    )
    status = draw(st.sampled_from(GroupStatus))
    # A running group always dials in some mode; any other keeps no dialing, or stale one.
    dialing = draw(dialings) if status == GroupStatus.RUNNING else draw(st.none() | dialings)
    action = draw(st.sampled_from(Action))
    actor = Actor.UNKNOWN if action == Action.PERIODIC else draw(st.sampled_from(Actor))
    statistics = GroupStatistics(
        busy_factor=draw(fractions),
        hit_ratio=draw(fractions),
        overdial_rate=draw(fractions),
        time_to_complete=draw(seconds),
        calling_lists=tuple(
            ListStatistics(cl.name, cl.dbid, draw(fractions), draw(seconds)) for cl in lists
        ),
    )
    at = draw(st.floats(min_value=0, max_value=4e9, allow_nan=False))
    return GroupSnapshot(identity, status, dialing, action, actor, at, statistics)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshot=snapshots(), tenant=st.builds(Tenant, names, names))
def test_every_body_built_from_a_group_state_validates(snapshot, tenant):
    wire = orjson.loads(encode(build_body(snapshot, tenant)))
    assert schema_problems(wire) == []
    validator().validate(wire)  # plain jsonschema agrees


@settings(deadline=None)
@given(snapshot=snapshots())
def test_dial_mode_and_optimization_appear_exactly_as_the_schema_requires(snapshot):
    body = build_body(snapshot, TENANT)
    running = snapshot.status == GroupStatus.RUNNING
    assert ("GSW_DIAL_MODE" in body) == running
    predictive = running and snapshot.dialing is not None and snapshot.dialing.mode in {1, 5, 10}
    assert ("GSW_OPTIMIZE_BY" in body) == ("GSW_OPTIMIZE_GOAL" in body) == predictive


# -- refusals ------------------------------------------------------------------------------


def test_the_reference_bodies_are_valid():
    for body in (RUNNING, ACTIVE, PROGRESSIVE, without(RUNNING, "GSW_CAMPAIGN_TEMPLATE_NAME")):
        assert schema_problems(body) == []


@pytest.mark.parametrize("name", list(MANDATORY))
def test_a_missing_mandatory_field_is_named(name):
    assert first_problem(without(RUNNING, name)) == (name, "schema.required")


@pytest.mark.parametrize("name", LIST_FIELDS)
def test_a_missing_calling_list_field_is_named(name):
    body = with_(RUNNING)
    del body["GSW_CALLING_LISTS"][0][name]
    assert first_problem(body) == (f"GSW_CALLING_LISTS[0].{name}", "schema.required")


@pytest.mark.parametrize("status", [-1, 0, 1, 2, 3, 4])
@pytest.mark.parametrize("name", ["GSW_DIAL_MODE", "GSW_OPTIMIZE_BY", "GSW_OPTIMIZE_GOAL"])
def test_dialing_fields_are_refused_while_not_running(status, name):
    body = with_(ACTIVE, GSW_CAMPAIGN_GROUP_STATUS=status, **{name: 1})
    problems = schema_problems(body)
    assert [(p.field, p.rule) for p in problems][:1] == [
        (name, "schema.dial-mode-only-while-running")
    ]
    assert "must be left out" in problems[0].message


def test_a_running_group_must_send_its_dial_mode():
    body = without(PROGRESSIVE, "GSW_DIAL_MODE")
    assert first_problem(body) == ("GSW_DIAL_MODE", "schema.dial-mode-only-while-running")


@pytest.mark.parametrize("mode", [0, 2, 3, 4, 6, 7, 8, 9, 11])
def test_optimize_fields_are_refused_with_a_non_predictive_mode(mode):
    body = with_(PROGRESSIVE, GSW_DIAL_MODE=mode, GSW_OPTIMIZE_BY=1, GSW_OPTIMIZE_GOAL=80)
    fields = [(p.field, p.rule) for p in schema_problems(body)]
    rule = "schema.optimize-only-for-predictive-modes"
    assert fields == [("GSW_OPTIMIZE_BY", rule), ("GSW_OPTIMIZE_GOAL", rule)]


@pytest.mark.parametrize("mode", [1, 5, 10])
@pytest.mark.parametrize("name", ["GSW_OPTIMIZE_BY", "GSW_OPTIMIZE_GOAL"])
def test_a_predictive_mode_sends_both_optimize_fields(mode, name):
    body = without(with_(RUNNING, GSW_DIAL_MODE=mode), name)
    assert first_problem(body) == (name, "schema.optimize-only-for-predictive-modes")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GSW_USER_EVENT", "CampaignState"),
        ("GSW_DATE_TIME", 1763912345.123),
        ("GSW_TENANT_NAME", None),
        ("GSW_TENANT_CCID", 101),
        ("GSW_CAMPAIGN_GROUP_NAME", ["a"]),
        ("GSW_CAMPAIGN_GROUP_UUID", "not-a-uuid"),
        ("GSW_CAMPAIGN_GROUP_DBID", 101),
        ("GSW_CAMPAIGN_GROUP_DBID", "10a"),
        ("GSW_CAMPAIGN_GROUP_DBID", "101\n"),
        ("GSW_QUEUE_NAME", ""),
        ("GSW_CAMPAIGN_TEMPLATE_NAME", ""),
        ("GSW_DIAL_MODE", "1"),
        ("GSW_DIAL_MODE", 1.5),
        ("GSW_OPTIMIZE_GOAL", "85"),
        ("GSW_OPTIMIZE_GOAL", -1),
        ("GSW_CAMPAIGN_GROUP_STATUS", "5"),
        ("GSW_CAMPAIGN_GROUP_ACTION", True),
        ("GSW_CAMPAIGN_GROUP_ACTOR", None),
        ("GSW_STAT_BUSY_FACTOR", "0.85"),
        ("GSW_STAT_BUSY_FACTOR", 85),  # a percentage where a fraction belongs
        ("GSW_STAT_HIT_RATIO", -0.1),
        ("GSW_STAT_OVERDIAL_RATE", 2),
        ("GSW_STAT_TIME_TO_COMPLETE", -1),
        ("GSW_STAT_TIME_TO_COMPLETE", False),
        ("GSW_CALLING_LISTS", {}),
        ("GSW_CALLING_LISTS", None),
    ],
)
def test_a_wrong_type_or_value_is_named(name, value):
    field, rule = first_problem(with_(RUNNING, **{name: value}))
    assert field == name
    assert rule.startswith("schema.")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GSW_CALLING_LIST_DBID", 201),
        ("GSW_CALLING_LIST_NAME", ""),
        ("GSW_STAT_HIT_RATIO", "0.3"),
        ("GSW_STAT_TIME_TO_COMPLETE", -5),
    ],
)
def test_a_wrong_calling_list_field_is_named(name, value):
    body = with_(RUNNING)
    body["GSW_CALLING_LISTS"][0][name] = value
    assert first_problem(body)[0] == f"GSW_CALLING_LISTS[0].{name}"


@pytest.mark.parametrize("status", [-2, 6, 100])
def test_an_unknown_status_is_refused(status):
    assert first_problem(with_(ACTIVE, GSW_CAMPAIGN_GROUP_STATUS=status)) == (
        "GSW_CAMPAIGN_GROUP_STATUS",
        "schema.enum",
    )


@pytest.mark.parametrize("action", [-1, 1, 6, 12, 28, 30])
def test_an_unknown_action_is_refused(action):
    assert first_problem(with_(ACTIVE, GSW_CAMPAIGN_GROUP_ACTION=action)) == (
        "GSW_CAMPAIGN_GROUP_ACTION",
        "schema.enum",
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [("GSW_CAMPAIGN_GROUP_ACTOR", 4), ("GSW_DIAL_MODE", 12), ("GSW_OPTIMIZE_BY", 5)],
)
def test_other_unknown_enum_values_are_refused(name, value):
    assert first_problem(with_(RUNNING, **{name: value})) == (name, "schema.enum")


@pytest.mark.parametrize(
    "stamp",
    [
        "1763912345",
        "1763912345.",
        "1763912345.12",
        "1763912345.1234",
        "1763912345,123",
        ".123",
        "-1763912345.123",
        " 1763912345.123",
        "1763912345.123 ",
        "1763912345.123\n",
        "2025-11-23T12:00:00.123Z",
        "\u0661\u0667\u0666\u0663.\u0661\u0662\u0663",  # Arabic-Indic digits are not [0-9]
        "",
    ],
)
def test_a_date_time_that_is_not_epoch_seconds_with_milliseconds_is_refused(stamp):
    assert first_problem(with_(RUNNING, GSW_DATE_TIME=stamp)) == (
        "GSW_DATE_TIME",
        "schema.pattern",
    )


@settings(deadline=None)
@given(st.text(max_size=20))
def test_any_date_time_text_is_judged_like_the_spec_pattern(stamp):
    matches = re.fullmatch(r"[0-9]+\.[0-9]{3}", stamp) is not None
    assert is_valid(with_(RUNNING, GSW_DATE_TIME=stamp)) == matches


@settings(deadline=None)
@given(st.from_regex(r"\A[0-9]{1,12}\.[0-9]{3}\Z"))
def test_every_epoch_with_milliseconds_is_accepted(stamp):
    assert is_valid(with_(RUNNING, GSW_DATE_TIME=stamp))


def test_a_periodic_notification_has_actor_0():
    body = with_(ACTIVE, GSW_CAMPAIGN_GROUP_ACTION=0, GSW_CAMPAIGN_GROUP_ACTOR=1)
    assert first_problem(body) == ("GSW_CAMPAIGN_GROUP_ACTOR", "schema.periodic-actor")
    assert is_valid(with_(ACTIVE, GSW_CAMPAIGN_GROUP_ACTION=0, GSW_CAMPAIGN_GROUP_ACTOR=0))


def test_an_unknown_field_is_named():
    assert first_problem(with_(RUNNING, GSW_SOMETHING=1)) == (
        "GSW_SOMETHING",
        "schema.additionalProperties",
    )
    body = with_(RUNNING)
    body["GSW_CALLING_LISTS"][0]["EXTRA"] = 1
    assert first_problem(body)[0] == "GSW_CALLING_LISTS[0].EXTRA"


def test_optional_fields_are_left_out_not_null():
    assert first_problem(with_(ACTIVE, GSW_CAMPAIGN_TEMPLATE_NAME=None))[0] == (
        "GSW_CAMPAIGN_TEMPLATE_NAME"
    )


@pytest.mark.parametrize("body", [[], "text", 42, None, [RUNNING]])
def test_a_body_that_is_not_an_object_is_refused_as_a_whole(body):
    problems = schema_problems(body)
    assert [(p.field, p.rule) for p in problems] == [(None, "schema.type")]
    assert "JSON object" in problems[0].message


def test_every_problem_reads_as_field_message_rule():
    problems = schema_problems(with_(ACTIVE, GSW_DIAL_MODE=2, GSW_STAT_HIT_RATIO="x"))
    texts = [str(p) for p in problems]
    # structural problems first, then the conditional rules
    assert texts[0].startswith("GSW_STAT_HIT_RATIO: must be of type number or null")
    assert texts[1].startswith("GSW_DIAL_MODE: must be left out")
    assert texts[1].endswith("[schema.dial-mode-only-while-running]")
    assert all(p.as_dict().keys() == {"rule", "field", "message"} for p in problems)
