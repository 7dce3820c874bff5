"""Refused and malformed control requests: 404/409/400, a clear error, no change, no body.

"No body sent" is proven with a sentinel: after the bad request, a valid request on the
same group must produce the only new body. Bodies of one group leave in order, so a
body wrongly produced by the bad request would arrive before the sentinel's.
"""

from __future__ import annotations

import pytest

LOAD = ("LoadCampaign", {})
START = (
    "StartDialing",
    {"dialmode": "predictive", "optimizeby": "busy-factor", "optimizegoal": 85},
)


async def _prepare(ocsd, receiver, setup):
    for req, params in setup:
        await ocsd.control.ok(101, req, **params)
    await receiver.wait_for(len(setup), receiver.state_of(101))
    return receiver.count()


async def _assert_only_sentinel_follows(ocsd, receiver, before):
    """Send a request that must notify; it must be the only body since ``before``."""
    loaded = await ocsd.control.status_code(101) != 0
    req, action = ("ForceUnloadCampaign", 29) if loaded else ("LoadCampaign", 7)
    await ocsd.control.ok(101, req)
    await receiver.wait_for(before + 1)
    new = receiver.received[before:]
    assert [r.action for r in new] == [action], f"a refused request sent a body: {new}"


async def test_unknown_group_is_404_and_sends_nothing(start_daemon, receiver, ini_sections):
    ocsd = await start_daemon(ini_sections(receiver.url))
    status, data = await ocsd.control.request("GET", "/campaigngroups/999")
    assert status == 404
    assert "999" in data["error"]
    for req in ("LoadCampaign", "StartDialing", "UnloadCampaign", "ForceUnloadCampaign"):
        status, data = await ocsd.control.act(999, req)
        assert status == 404, (req, data)
        assert "999" in data["error"]
    await _assert_only_sentinel_follows(ocsd, receiver, 0)


NOT_ALLOWED = [
    pytest.param([], "StartDialing", {}, "NotLoaded", id="start-not-loaded"),
    pytest.param([], "StopDialing", {}, "NotLoaded", id="stop-not-loaded"),
    pytest.param(
        [], "SetDialingMode", {"dialmode": "progressive"}, "NotLoaded", id="setmode-not-loaded"
    ),
    pytest.param([], "UnloadCampaign", {}, "NotLoaded", id="unload-not-loaded"),
    pytest.param([], "ForceUnloadCampaign", {}, "NotLoaded", id="force-unload-not-loaded"),
    pytest.param([LOAD], "LoadCampaign", {}, "Active", id="load-active"),
    pytest.param([LOAD], "StopDialing", {}, "Active", id="stop-active"),
    pytest.param(
        [LOAD], "SetDialingMode", {"dialmode": "progressive"}, "Active", id="setmode-active"
    ),
    pytest.param([LOAD, START], "StartDialing", {}, "Running", id="start-running"),
    pytest.param([LOAD, START], "LoadCampaign", {}, "Running", id="load-running"),
]


@pytest.mark.parametrize(("setup", "req", "params", "status_name"), NOT_ALLOWED)
async def test_request_not_allowed_is_409(
    start_daemon, receiver, ini_sections, setup, req, params, status_name
):
    ocsd = await start_daemon(ini_sections(receiver.url))
    before = await _prepare(ocsd, receiver, setup)
    view_before = await ocsd.control.group(101)

    status, data = await ocsd.control.act(101, req, **params)

    assert status == 409, data
    assert status_name in data["error"], f"the error must name the status: {data}"
    assert await ocsd.control.group(101) == view_before, "a refused request changed the group"
    await _assert_only_sentinel_follows(ocsd, receiver, before)


BAD_PARAMETERS = [
    pytest.param({"req": "Dance"}, "req", id="unknown-req"),
    pytest.param({}, "req", id="missing-req"),
    pytest.param({"req": "StartDialing", "dialmode": "warp"}, "dialmode", id="bad-dialmode"),
    pytest.param({"req": "StartDialing", "dialmode": "none"}, "dialmode", id="dialmode-none"),
    pytest.param({"req": "StartDialing", "optimizeby": "luck"}, "optimizeby", id="bad-optimizeby"),
    pytest.param(
        {"req": "StartDialing", "optimizegoal": "lots"}, "optimizegoal", id="goal-not-a-number"
    ),
    pytest.param(
        {"req": "StartDialing", "dialmode": "1", "optimizeby": "1", "optimizegoal": "150"},
        "optimizegoal",
        id="busy-factor-goal-over-100",
    ),
    pytest.param(  # was accepted and dropped in silence: progressive has no goal
        {"req": "StartDialing", "dialmode": "progressive", "optimizegoal": "-5"},
        "optimizegoal",
        id="negative-goal-of-a-mode-without-goals",
    ),
    pytest.param(
        {"req": "StartDialing", "dialmode": "predictive", "optimizeby": "none"},
        "optimizeby",
        id="predictive-without-method",
    ),
    pytest.param({"req": "StartDialing", "colour": "blue"}, "colour", id="unknown-parameter"),
    pytest.param({"req": "Start" * 2000}, "req", id="long-unknown-req"),
    pytest.param(
        {"req": "StartDialing", "GSW_AUTO_COMPLETION": "maybe"},
        "gsw_auto_completion",
        id="bad-auto-completion",
    ),
    pytest.param(
        {"req": "StopDialing", "dialmode": "predictive"}, "dialmode", id="dialing-params-on-stop"
    ),
]


@pytest.mark.parametrize(("params", "parameter"), BAD_PARAMETERS)
async def test_bad_parameter_is_400_naming_it(
    start_daemon, receiver, ini_sections, params, parameter
):
    ocsd = await start_daemon(ini_sections(receiver.url))
    before = await _prepare(ocsd, receiver, [LOAD])  # Active: StartDialing would be allowed

    status, data = await ocsd.control.request("POST", "/campaigngroups/101", params=params)

    assert status == 400, data
    assert parameter.lower() in data["error"].lower(), f"the error must name {parameter}: {data}"
    assert len(data["error"]) < 600, "a refusal quotes at most a short part of the request"
    assert await ocsd.control.status_code(101) == 4
    await _assert_only_sentinel_follows(ocsd, receiver, before)


@pytest.mark.parametrize(
    ("path", "data", "parameter"),
    [
        pytest.param("/campaigngroups/101", b"{not json", "body", id="invalid-json"),
        pytest.param("/campaigngroups/101", b'["StartDialing"]', "body", id="json-array"),
        pytest.param(
            "/campaigngroups/101",
            b'{"req": "StartDialing", "dialmode": null}',
            "dialmode",
            id="null",
        ),
        pytest.param("/campaigngroups/abc", b'{"req": "StartDialing"}', "dbid", id="dbid-text"),
    ],
)
async def test_malformed_request_body_is_400(
    start_daemon, receiver, ini_sections, path, data, parameter
):
    ocsd = await start_daemon(ini_sections(receiver.url))
    before = await _prepare(ocsd, receiver, [LOAD])

    async with ocsd.control.session.post(
        ocsd.base_url + path, data=data, headers={"Content-Type": "application/json"}
    ) as response:
        status, answer = response.status, await response.json()

    assert status == 400, answer
    assert parameter in answer["error"], answer
    assert await ocsd.control.status_code(101) == 4
    await _assert_only_sentinel_follows(ocsd, receiver, before)


@pytest.mark.parametrize("mode", ["preview", "push-preview"])
async def test_switch_to_preview_while_running_is_refused(
    start_daemon, receiver, ini_sections, mode
):
    """Spec 4.1: a switch to or from a preview mode needs a stop and a new start."""
    ocsd = await start_daemon(ini_sections(receiver.url))
    before = await _prepare(ocsd, receiver, [LOAD, START])

    status, data = await ocsd.control.act(101, "SetDialingMode", dialmode=mode)

    assert status == 409, data
    assert "preview" in data["error"].lower()
    view = await ocsd.control.group(101)
    assert view["status"]["code"] == 5
    assert view["dial_mode"]["code"] == 1, "the refused switch changed the dial mode"
    await _assert_only_sentinel_follows(ocsd, receiver, before)


async def test_switch_out_of_preview_while_running_is_refused(start_daemon, receiver, ini_sections):
    ocsd = await start_daemon(ini_sections(receiver.url))
    before = await _prepare(ocsd, receiver, [LOAD, ("StartDialing", {"dialmode": "preview"})])

    status, data = await ocsd.control.act(101, "SetDialingMode", dialmode="progressive")

    assert status == 409, data
    assert "preview" in data["error"].lower()
    assert (await ocsd.control.group(101))["dial_mode"]["code"] == 3
    await _assert_only_sentinel_follows(ocsd, receiver, before)


async def test_a_bug_is_a_logged_500_never_a_misleading_404_or_409(
    start_daemon, receiver, ini_sections, monkeypatch
):
    """A KeyError or RuntimeError from a bug is not "not found" or "not allowed"."""
    import structlog

    ocsd = await start_daemon(ini_sections(receiver.url))
    engine = ocsd.daemon.engine

    def view(dbid: int, now: float) -> dict[str, object]:
        raise KeyError("a bug looking something up")

    monkeypatch.setattr(engine, "view", view)
    with structlog.testing.capture_logs() as logs:
        status, answer = await ocsd.control.request("GET", "/campaigngroups/101")
        assert status == 500, answer
        assert answer == {"error": "internal error; see the ocsd log"}

        async def resend(message_id: str | None) -> dict[str, object]:
            raise RuntimeError("a bug while re-sending")

        monkeypatch.setattr(ocsd.daemon.control, "resend_dead_letters", resend)
        status, answer = await ocsd.control.request("POST", "/deadletters/resend")
        assert status == 500, answer
    failures = [e for e in logs if e["event"] == "control request failed"]
    assert len(failures) == 2 and all(e.get("exc_info") for e in failures)
    assert (await ocsd.control.request("GET", "/healthz"))[0] == 200, "the API still answers"
