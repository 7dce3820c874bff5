"""Unload of a group with calls in progress (spec section 5): WaitingUnload (status 1)
while the calls finish, the action-8 body only when the last one has ended.

Group 101 has 25 agents; started, it dials at once (one call per ready agent while it
learns). Its calling lists ring an unanswered call for 1200 simulated seconds and
the daemon runs at 600 simulated seconds per wall second, so every unanswered call
placed at the start ends 2 s of wall time later: the calls in progress outlive
the unload by about that much, and the test never waits long.
"""

from __future__ import annotations

import time

import pytest

GROUP_A = "Renewals@Retention Team"  # dbid 101
TIME_SCALE = 600
RING_OUT = 1200  # simulated s an unanswered call rings: 2 s of wall time
RING_OUT_WALL = RING_OUT / TIME_SCALE


def busy_sections(ini_sections, receiver):
    return ini_sections(
        receiver.url,
        interval=1,
        ocsd={"time-scale": TIME_SCALE, "seed": 7},
        **{
            "calling-list:Renewals_Q4": {"no-answer-timeout": RING_OUT},
            "calling-list:Renewals_Lapsed": {"no-answer-timeout": RING_OUT},
        },
    )


async def _running_with_calls(ocsd, receiver):
    """Load and start 101; return the start answer once calls are in progress."""
    await ocsd.control.ok(101, "LoadCampaign")
    started = await ocsd.control.ok(101, "StartDialing")
    await receiver.wait_for(2, receiver.state_of(101))
    view = await ocsd.control.group(101)
    assert view["status"]["code"] == 5
    assert view["calls_in_progress"] > 0, f"a running group of 25 agents dials: {view}"
    return started


@pytest.mark.parametrize(
    ("stop_first", "at_once"),
    [
        pytest.param(False, [(10, 4)], id="running"),  # spec 5: stop first, then unload
        pytest.param(True, [], id="stopped"),  # Active with calls: nothing until NotLoaded
    ],
)
async def test_unload_waits_for_the_calls_in_progress(
    start_daemon, receiver, ini_sections, stop_first, at_once
):
    ocsd = await start_daemon(busy_sections(ini_sections, receiver))
    await _running_with_calls(ocsd, receiver)
    if stop_first:
        stopped = await ocsd.control.ok(101, "StopDialing")
        assert [(n["action"], n["status"]) for n in stopped["notifications"]] == [(10, 4)]
        # StopDialing lets the calls finish with their agents
        assert stopped["campaigngroup"]["status"]["code"] == 4
        assert stopped["campaigngroup"]["calls_in_progress"] > 0
        await receiver.wait_for(3, receiver.state_of(101))
    before = receiver.count(receiver.state_of(101))
    asked = time.monotonic()

    answer = await ocsd.control.ok(101, "UnloadCampaign")

    assert [(n["action"], n["status"]) for n in answer["notifications"]] == at_once
    view = answer["campaigngroup"]
    assert view["status"] == {"code": 1, "name": "WaitingUnload"}
    assert view["calls_in_progress"] > 0
    assert "dial_mode" in view and view["dial_mode"] is None, "a waiting group does not dial"
    if at_once:
        (stop,) = (await receiver.wait_for(before + 1, receiver.state_of(101)))[before:]
        assert (stop.action, stop.status, stop.actor) == (10, 4, 1)
        assert "GSW_DIAL_MODE" not in stop.json

    # a second unload, or a load or a start, is refused while the unload waits
    for req in ("UnloadCampaign", "LoadCampaign", "StartDialing"):
        status, data = await ocsd.control.act(101, req)
        assert status == 409, (req, data)
        assert "WaitingUnload" in data["error"], data

    # periodic bodies keep coming meanwhile, with status 1 and no dialing
    waiting = await receiver.wait_for(
        1, lambda r: r.periodic and r.dbid == "101" and r.status == 1, within=RING_OUT_WALL
    )
    assert "GSW_DIAL_MODE" not in waiting[0].json
    assert waiting[0].actor == 0
    assert (await ocsd.control.group(101))["status"]["code"] == 1

    # the action-8 body comes when the last call has ended, not before
    (unload,) = [
        r
        for r in await receiver.wait_for(
            1, lambda r: r.dbid == "101" and r.action == 8, within=RING_OUT_WALL + 3
        )
    ]
    waited = unload.at - asked
    assert waited > RING_OUT_WALL - 1, f"unloaded after {waited:.2f} s, with calls in progress"
    assert (unload.status, unload.actor) == (0, 1), "status 0, actor of the unload request"
    assert "GSW_DIAL_MODE" not in unload.json
    view = await ocsd.control.group(101)
    assert view["status"] == {"code": 0, "name": "NotLoaded"}
    assert view["calls_in_progress"] == 0
    new_state = receiver.matching(receiver.state_of(101))[before:]
    assert [(r.action, r.status) for r in new_state] == [*at_once, (8, 0)], new_state

    # NotLoaded: no periodic body any more
    done = len(receiver.received)
    await receiver.settle(1.1)
    late = [r for r in receiver.received[done:] if r.periodic and r.dbid == "101"]
    assert late == [], f"periodic bodies after the unload completed: {late}"
    # the group can be loaded again
    reloaded = await ocsd.control.ok(101, "LoadCampaign")
    assert reloaded["campaigngroup"]["status"]["code"] == 4


async def test_force_unload_while_an_unload_waits(start_daemon, receiver, ini_sections):
    ocsd = await start_daemon(busy_sections(ini_sections, receiver))
    await _running_with_calls(ocsd, receiver)
    waiting = await ocsd.control.ok(101, "UnloadCampaign")
    assert waiting["campaigngroup"]["status"]["code"] == 1
    await receiver.wait_for(1, lambda r: r.periodic and r.dbid == "101" and r.status == 1)
    before = receiver.count(receiver.state_of(101))

    answer = await ocsd.control.ok(101, "ForceUnloadCampaign")

    assert [(n["action"], n["status"]) for n in answer["notifications"]] == [(29, 0)]
    assert answer["campaigngroup"]["status"]["code"] == 0
    assert answer["campaigngroup"]["calls_in_progress"] == 0, "force unload drops the calls"
    (force,) = (await receiver.wait_for(before + 1, receiver.state_of(101)))[before:]
    assert (force.action, force.status, force.actor) == (29, 0, 1)
    # the calls the unload was waiting for would have ended by now: no action-8 body
    # follows, and no periodic body either
    done = len(receiver.received)
    await receiver.settle(RING_OUT_WALL)
    late = [r for r in receiver.received[done:] if r.dbid == "101"]
    assert late == [], f"bodies after the force unload: {late}"
    assert [r.action for r in receiver.matching(receiver.state_of(101))] == [7, 9, 10, 29]
    view = await ocsd.control.group(101)
    assert (view["status"]["code"], view["calls_in_progress"]) == (0, 0)
