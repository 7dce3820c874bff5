"""Periodic notifications (81001): every interval, for loaded groups only, off at 0."""

from __future__ import annotations

import itertools
import time

from support.ini import IDLE_A, extra_groups


async def test_periodic_bodies_every_interval_for_loaded_groups_only(
    start_daemon, receiver, ini_sections
):
    # 101 without records dials nothing, so its unload below completes at once; periodic
    # bodies while an unload waits for calls: test_waiting_unload.py
    idle_a = IDLE_A
    ocsd = await start_daemon(ini_sections(receiver.url, interval=1, **idle_a))
    await ocsd.control.ok(101, "LoadCampaign")
    await ocsd.control.ok(103, "LoadCampaign")  # 102 stays NotLoaded

    ticks = await receiver.wait_for(3, receiver.periodic_of(101), within=5)
    for r in ticks:
        body = r.json
        assert body["GSW_USER_EVENT"] == "CampaignGroupState"
        assert body["GSW_CAMPAIGN_GROUP_ACTION"] == 0
        assert body["GSW_CAMPAIGN_GROUP_ACTOR"] == 0
        assert body["GSW_CAMPAIGN_GROUP_STATUS"] == 4
        assert "GSW_DIAL_MODE" not in body
    gaps = [b.at - a.at for a, b in itertools.pairwise(ticks[:3])]
    assert all(0.7 < gap < 1.3 for gap in gaps), f"periodic bodies not ~1 s apart: {gaps}"
    stamps = [float(r.json["GSW_DATE_TIME"]) for r in ticks[:3]]
    assert all(0.7 < b - a < 1.3 for a, b in itertools.pairwise(stamps)), stamps
    await receiver.wait_for(2, receiver.periodic_of(103), within=2)
    assert receiver.count(receiver.periodic_of(102)) == 0, "periodic body for a NotLoaded group"

    # running: periodic bodies carry the dialing
    await ocsd.control.ok(101, "StartDialing")
    running = await receiver.wait_for(
        1, lambda r: r.periodic and r.dbid == "101" and r.json["GSW_CAMPAIGN_GROUP_STATUS"] == 5
    )
    assert running[0].json["GSW_DIAL_MODE"] == 1
    assert running[0].json["GSW_OPTIMIZE_BY"] == 1
    assert running[0].json["GSW_OPTIMIZE_GOAL"] == 85

    # unloaded: no more periodic bodies for it
    await ocsd.control.ok(101, "UnloadCampaign")
    await ocsd.control.ok(103, "ForceUnloadCampaign")
    await receiver.wait_for(1, lambda r: r.action == 8 and r.dbid == "101")
    await receiver.wait_for(1, lambda r: r.action == 29 and r.dbid == "103")
    unloaded_at = len(receiver.received)
    await receiver.settle(1.6)
    late = [r for r in receiver.received[unloaded_at:] if r.periodic]
    assert late == [], f"periodic bodies after unload: {late}"


async def test_interval_zero_turns_periodic_notifications_off(start_daemon, receiver, ini_sections):
    ocsd = await start_daemon(ini_sections(receiver.url, interval=0))
    await ocsd.control.ok(101, "LoadCampaign")
    await ocsd.control.ok(102, "LoadCampaign")
    await ocsd.control.ok(102, "StartDialing")
    await receiver.wait_for(3)
    await receiver.settle(1.5)
    # bodies of different groups may arrive in either order
    assert sorted(r.action for r in receiver.received) == [7, 7, 9], receiver.received
    assert receiver.count(lambda r: r.periodic) == 0


async def test_groups_report_at_their_own_phase_spread_over_the_interval(
    start_daemon, receiver, ini_sections
):
    """40 loaded groups at interval 1 s: each group every 1 s on the dot, the groups
    spread over the interval instead of 40 POSTs in one burst."""
    ocsd = await start_daemon(ini_sections(receiver.url, interval=1, **extra_groups(40, 1000)))
    dbids = [str(1000 + i) for i in range(40)]
    for dbid in dbids:
        await ocsd.control.ok(int(dbid), "LoadCampaign")
    await receiver.wait_for(40 * 4, lambda r: r.periodic and r.dbid in dbids, within=8)

    by_group: dict[str, list[float]] = {}
    for r in receiver.matching(lambda r: r.periodic and r.dbid in dbids):
        by_group.setdefault(r.dbid, []).append(r.at)
    for dbid, arrivals in by_group.items():
        gaps = [b - a for a, b in itertools.pairwise(arrivals[:4])]
        assert all(0.95 < gap < 1.05 for gap in gaps), f"group {dbid}: gaps {gaps}"
    # the phase of each group in the interval: one second's arrivals, folded
    phases = sorted(arrivals[1] % 1.0 for arrivals in by_group.values())
    widest_gap = max(
        [b - a for a, b in itertools.pairwise(phases)] + [1.0 - phases[-1] + phases[0]]
    )
    assert widest_gap < 0.3, f"periodic POSTs bunched in time: phases {phases}"
    # each body is stamped with its own due time
    stamps = {r.json["GSW_DATE_TIME"] for r in receiver.matching(lambda r: r.periodic)}
    assert len(stamps) > 40


async def test_a_periodic_body_says_when_its_group_fell_due_not_when_the_post_went(
    start_daemon, make_fault_receiver, ini_sections
):
    """docs/contract.md#periodic: a body is made when the group's slot comes; behind a
    slow receiver it waits for a connection and still carries that moment."""
    receiver = await make_fault_receiver()
    receiver.slow_s = 0.4
    receiver.set_behaviour("slow")
    # one connection, three groups due every second, 0.4 s a POST: bodies must wait
    ocsd = await start_daemon(ini_sections(receiver.url, interval=1, pool_size=1, **IDLE_A))
    for dbid in (101, 102, 103):
        await ocsd.control.ok(dbid, "LoadCampaign")
    periodic = await receiver.wait_for(9, lambda r: r.periodic, within=15)

    # how long each body waited between its moment and its arrival (wall clock)
    waited = [
        (time.time() - (time.monotonic() - r.at)) - float(r.json["GSW_DATE_TIME"]) for r in periodic
    ]
    assert max(waited) > 0.3, f"bodies made at the POST, not when due: {waited}"
    assert all(-0.05 < w < 3.0 for w in waited), waited
    for dbid in ("101", "102", "103"):
        stamps = [float(r.json["GSW_DATE_TIME"]) for r in periodic if r.dbid == dbid]
        assert stamps == sorted(stamps), (dbid, stamps)
