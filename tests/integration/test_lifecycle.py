"""Spec section 5 through the control API of an in-process daemon, and the bodies of
spec section 2 that each transition sends to a real receiver."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from support.contract import OPTIMIZE, STATISTICS, assert_mandatory_fields
from support.ini import IDLE_A

from ocsd import __version__ as ocsd_version

GROUP_A = "Renewals@Retention Team"  # dbid 101, template, predictive busy-factor 85
GROUP_B = "Collections@Collections Desk"  # dbid 102, no template, progressive
GROUP_C = "Survey@IVR"  # dbid 103, predictive-gvp overdial-rate 3, configured uuid

LOAD = ("LoadCampaign", {})
START = (
    "StartDialing",
    {"dialmode": "predictive", "optimizeby": "busy-factor", "optimizegoal": 85},
)

#: Group 101 without records (support.ini.IDLE_A): running, it dials nothing, so no call
#: is ever in progress and every transition, unload included, completes at once. The
#: unload that waits for calls in progress (WaitingUnload) is tested in test_waiting_unload.py.


def assert_well_formed(body: dict[str, Any]) -> None:
    """Every mandatory field with its JSON type, and the rules between fields."""
    assert_mandatory_fields(body)
    assert abs(float(body["GSW_DATE_TIME"]) - time.time()) < 30
    assert body["GSW_CAMPAIGN_GROUP_DBID"].isdigit()
    uuid.UUID(body["GSW_CAMPAIGN_GROUP_UUID"])
    for name in STATISTICS:
        assert name in body, f"{name} missing"
        value = body[name]
        assert value is None or (isinstance(value, int | float) and value >= 0), (name, value)
    for calling_list in body["GSW_CALLING_LISTS"]:
        assert isinstance(calling_list["GSW_CALLING_LIST_NAME"], str)
        assert calling_list["GSW_CALLING_LIST_DBID"].isdigit()
        for name in ("GSW_STAT_HIT_RATIO", "GSW_STAT_TIME_TO_COMPLETE"):
            assert name in calling_list
    if "GSW_OPTIMIZE_BY" in body or "GSW_OPTIMIZE_GOAL" in body:
        assert "GSW_OPTIMIZE_BY" in body and "GSW_OPTIMIZE_GOAL" in body


# (setup requests, request under test, its params, [(action, status)] it must notify)
TRANSITIONS = [
    pytest.param([], "LoadCampaign", {}, [(7, 4)], id="NotLoaded-Load->Active"),
    pytest.param([LOAD], *START, [(9, 5)], id="Active-Start->Running"),
    pytest.param(
        [LOAD, START],
        "SetDialingMode",
        {"dialmode": "progressive"},
        [(11, 5)],
        id="Running-SetDialingMode->Running",
    ),
    pytest.param([LOAD, START], "StopDialing", {}, [(10, 4)], id="Running-Stop->Active"),
    pytest.param([LOAD], "UnloadCampaign", {}, [(8, 0)], id="Active-Unload->NotLoaded"),
    pytest.param(
        [LOAD, START], "UnloadCampaign", {}, [(10, 4), (8, 0)], id="Running-Unload->NotLoaded"
    ),
    pytest.param([LOAD], "ForceUnloadCampaign", {}, [(29, 0)], id="Active-ForceUnload"),
    pytest.param([LOAD, START], "ForceUnloadCampaign", {}, [(29, 0)], id="Running-ForceUnload"),
]


@pytest.mark.parametrize(("setup", "req", "params", "expected"), TRANSITIONS)
async def test_transition_sends_exactly_its_notifications(
    start_daemon, receiver, ini_sections, setup, req, params, expected
):
    ocsd = await start_daemon(ini_sections(receiver.url, **IDLE_A))
    for setup_req, setup_params in setup:
        await ocsd.control.ok(101, setup_req, **setup_params)
    await receiver.wait_for(len(setup), receiver.state_of(101))
    before = receiver.count()

    answer = await ocsd.control.ok(101, req, **params)

    assert [(n["action"], n["status"]) for n in answer["notifications"]] == expected
    assert answer["campaigngroup"]["status"]["code"] == expected[-1][1]
    assert await ocsd.control.status_code(101) == expected[-1][1]
    await receiver.wait_for(before + len(expected))
    await receiver.settle()
    new = receiver.received[before:]
    assert len(new) == len(expected), f"one body per change expected, got {new}"
    got = [(r.json["GSW_CAMPAIGN_GROUP_ACTION"], r.json["GSW_CAMPAIGN_GROUP_STATUS"]) for r in new]
    assert got == expected
    for r in new:
        assert r.method == "POST"
        assert r.path == "/ocs/campaign-group-state"
        assert r.headers.get("Content-Type", "").startswith("application/json")
        assert_well_formed(r.json)
        assert r.json["GSW_CAMPAIGN_GROUP_ACTOR"] == 1
        assert r.json["GSW_CAMPAIGN_GROUP_NAME"] == GROUP_A
        assert r.json["GSW_CAMPAIGN_GROUP_DBID"] == "101"


async def test_body_fields_follow_the_life_cycle(start_daemon, receiver, ini_sections):
    """Template present, dial mode only while running, optimization only when predictive."""
    ocsd = await start_daemon(ini_sections(receiver.url, **IDLE_A))
    view = await ocsd.control.group(101)
    for req, params in [
        LOAD,
        START,
        ("SetDialingMode", {"dialmode": "progressive"}),
        (
            "SetDialingMode",
            {
                "dialmode": "predictive-with-seizing",
                "optimizeby": "overdial-rate",
                "optimizegoal": 3,
            },
        ),
        ("StopDialing", {}),
        ("UnloadCampaign", {}),
    ]:
        await ocsd.control.ok(101, req, **params)
    bodies = [r.json for r in await receiver.wait_for(6, receiver.state_of(101))]
    load, start, progressive, seizing, stop, unload = bodies

    for body in bodies:
        assert_well_formed(body)
        assert body["GSW_TENANT_NAME"] == "Test Tenant"
        assert body["GSW_TENANT_CCID"] == "4242"
        assert body["GSW_CAMPAIGN_GROUP_NAME"] == GROUP_A
        assert body["GSW_CAMPAIGN_NAME"] == "Renewals"
        assert body["GSW_GROUP_NAME"] == "Retention Team"
        assert body["GSW_QUEUE_NAME"] == "7001"
        assert body["GSW_CAMPAIGN_TEMPLATE_NAME"] == "Retention Outbound Template"
        assert body["GSW_CAMPAIGN_GROUP_UUID"] == view["uuid"], "uuid must be stable"
        assert [
            (cl["GSW_CALLING_LIST_NAME"], cl["GSW_CALLING_LIST_DBID"])
            for cl in body["GSW_CALLING_LISTS"]
        ] == [("Renewals_Q4", "201"), ("Renewals_Lapsed", "202")]
    times = [float(b["GSW_DATE_TIME"]) for b in bodies]
    assert times == sorted(times)

    for not_running in (load, stop, unload):
        assert "GSW_DIAL_MODE" not in not_running
        for name in OPTIMIZE:
            assert name not in not_running
    assert (start["GSW_DIAL_MODE"], start["GSW_OPTIMIZE_BY"], start["GSW_OPTIMIZE_GOAL"]) == (
        1,
        1,
        85,
    )
    assert progressive["GSW_DIAL_MODE"] == 2
    for name in OPTIMIZE:
        assert name not in progressive, f"{name} sent for a progressive group"
    assert (
        seizing["GSW_DIAL_MODE"],
        seizing["GSW_OPTIMIZE_BY"],
        seizing["GSW_OPTIMIZE_GOAL"],
    ) == (5, 2, 3)


async def test_template_absent_and_configured_uuid(start_daemon, receiver, ini_sections):
    ocsd = await start_daemon(ini_sections(receiver.url))
    await ocsd.control.ok(102, "LoadCampaign")
    await ocsd.control.ok(102, "StartDialing")  # configured default: progressive
    await ocsd.control.ok(103, "LoadCampaign")
    await ocsd.control.ok(103, "StartDialing")  # configured default: predictive-gvp, overdial 3
    b_load, b_start = (r.json for r in await receiver.wait_for(2, receiver.state_of(102)))
    c_load, c_start = (r.json for r in await receiver.wait_for(2, receiver.state_of(103)))

    for body in (b_load, b_start):
        assert_well_formed(body)
        assert "GSW_CAMPAIGN_TEMPLATE_NAME" not in body, "template not configured: leave it out"
        assert body["GSW_CAMPAIGN_GROUP_NAME"] == GROUP_B
    assert b_start["GSW_DIAL_MODE"] == 2
    for name in OPTIMIZE:
        assert name not in b_start

    for body in (c_load, c_start):
        assert_well_formed(body)
        assert body["GSW_CAMPAIGN_GROUP_UUID"] == "0d6b3a52-9a7e-4c71-8f0e-2f5d1c7b9e44"
    assert (c_start["GSW_DIAL_MODE"], c_start["GSW_OPTIMIZE_BY"], c_start["GSW_OPTIMIZE_GOAL"]) == (
        10,
        2,
        3,
    )


async def test_parameters_in_a_json_body(start_daemon, receiver, ini_sections):
    ocsd = await start_daemon(ini_sections(receiver.url))
    control = ocsd.control

    status, answer = await control.request(
        "POST", "/campaigngroups/101", json_body={"req": "LoadCampaign", "GSW_AUTO_COMPLETION": 1}
    )
    assert status == 200, answer
    assert answer["campaigngroup"]["auto_complete"] is True

    status, answer = await control.request(
        "POST",
        "/campaigngroups/101",
        json_body={
            "req": "StartDialing",
            "dialmode": "predictive",
            "optimizeby": "overdial-rate",
            "optimizegoal": 4,
        },
    )
    assert status == 200, answer
    # Genesys numbers as JSON numbers; req in the query, the rest in the body
    status, answer = await control.request(
        "POST",
        "/campaigngroups/101",
        params={"req": "SetDialingMode"},
        json_body={"dialmode": 5, "optimizeby": 1, "optimizegoal": 90},
    )
    assert status == 200, answer
    view = await control.group(101)
    assert view["dial_mode"]["code"] == 5
    assert view["optimize_by"]["code"] == 1
    assert view["optimize_goal"] == 90

    load, start, setmode = (r.json for r in await receiver.wait_for(3, receiver.state_of(101)))
    assert load["GSW_CAMPAIGN_GROUP_ACTION"] == 7
    assert (start["GSW_DIAL_MODE"], start["GSW_OPTIMIZE_BY"], start["GSW_OPTIMIZE_GOAL"]) == (
        1,
        2,
        4,
    )
    assert setmode["GSW_CAMPAIGN_GROUP_ACTION"] == 11
    assert (
        setmode["GSW_DIAL_MODE"],
        setmode["GSW_OPTIMIZE_BY"],
        setmode["GSW_OPTIMIZE_GOAL"],
    ) == (5, 1, 90)


async def test_group_listing_and_health(start_daemon, receiver, ini_sections):
    ocsd = await start_daemon(ini_sections(receiver.url))
    status, data = await ocsd.control.request("GET", "/campaigngroups")
    assert status == 200
    assert [(g["dbid"], g["name"]) for g in data["campaigngroups"]] == [
        (101, GROUP_A),
        (102, GROUP_B),
        (103, GROUP_C),
    ]
    assert all(g["status"]["code"] == 0 for g in data["campaigngroups"])
    status, health = await ocsd.control.request("GET", "/healthz")
    assert status == 200 and health["status"] == "ok"


async def test_start_all_starts_a_group_that_was_already_loaded(
    start_daemon, receiver, ini_sections
):
    """--start-all's LoadCampaign is refused for a group a schedule or a client loaded
    first; its StartDialing still goes through, so every group ends up running."""
    ocsd = await start_daemon(ini_sections(receiver.url))
    await ocsd.control.ok(101, "LoadCampaign")
    await ocsd.daemon.feed.start_all()  # what `ocsd run --start-all` runs once started
    for dbid in (101, 102, 103):
        assert (await ocsd.control.group(dbid))["status"]["name"] == "Running", dbid
    await receiver.wait_for(1, lambda r: r.dbid == "101" and r.action == 9 and r.actor == 2)


async def test_every_post_says_json_and_names_ocsd_as_its_sender(
    start_daemon, receiver, ini_sections
):
    """Content-Type as the contract says, and a User-Agent that tells ocsd from OCS."""
    ocsd = await start_daemon(ini_sections(receiver.url, **IDLE_A))
    await ocsd.control.ok(101, *LOAD[:1])
    [request] = await receiver.wait_for(1, receiver.state_of(101))
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == f"ocsd/{ocsd_version}"
