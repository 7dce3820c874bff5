"""End to end: the statistics of spec section 3 in the bodies of a real ``ocsd run``
driven by its dialing simulation, and auto-completion (spec section 5).

The daemon runs simulated time fast (``[ocsd] time-scale``) so a few wall seconds hold
minutes of dialing. Tolerances come from the simulation's own noise: the hit ratio is
a windowed binomial share (about 500 attempts here, standard deviation ~0.02), and
the busy factor climbs from its first value (agents idle while the first calls ring)
by 0.08 or more in every one of 300 offline runs of the same set-up.
"""

from __future__ import annotations

import pytest
from support.ini import group_d

pytestmark = pytest.mark.e2e

GROUP_A = "Renewals@Retention Team"  # 101, predictive busy-factor 85
LIVE_ANSWER_RATE = 0.35
STATS = (
    "GSW_STAT_BUSY_FACTOR",
    "GSW_STAT_HIT_RATIO",
    "GSW_STAT_OVERDIAL_RATE",
    "GSW_STAT_TIME_TO_COMPLETE",
)


def _number(value, low=0.0, high=None):
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= low
    return ok and (high is None or value <= high)


def _running_periodic(dbid):
    return lambda r: r.periodic and r.dbid == str(dbid) and r.status == 5


async def test_statistics_of_running_groups(
    receiver, ini_sections, write_ini, ocsd_process, control_for
):
    sections = ini_sections(
        receiver.url,
        interval=1,
        ocsd={"time-scale": 180, "stats-window": 900},
        **{
            f"campaign-group:{GROUP_A}": {"agents": 50},
            "calling-list:Renewals_Q4": {"live-answer-rate": LIVE_ANSWER_RATE},
            "calling-list:Renewals_Lapsed": {"live-answer-rate": LIVE_ANSWER_RATE},
            **group_d("preview", agents=10),
        },
    )
    async with ocsd_process(write_ini(sections)) as proc:
        control = control_for(proc.control_url)
        for dbid in (101, 102, 103, 104):
            await control.ok(dbid, "LoadCampaign")
            await control.ok(dbid, "StartDialing")  # each group's configured dial mode
        # five periodic bodies of the running 101: about 800 simulated seconds of dialing
        bodies_a = [r.json for r in await receiver.wait_for(5, _running_periodic(101), within=12)]
        views = {dbid: await control.group(dbid) for dbid in (101, 102, 103, 104)}
        code = await proc.stop()
    assert code == 0, proc.stderr_text

    # not dialed yet: every statistic null, every list present with null values
    load_a = receiver.matching(lambda r: r.dbid == "101" and r.action == 7)[0].json
    assert all(load_a[name] is None for name in STATS), load_a
    assert [
        (cl["GSW_CALLING_LIST_DBID"], cl["GSW_STAT_HIT_RATIO"], cl["GSW_STAT_TIME_TO_COMPLETE"])
        for cl in load_a["GSW_CALLING_LISTS"]
    ] == [("201", None, None), ("202", None, None)]

    # predictive, busy factor 85, 50 agents
    for body in bodies_a:
        assert (body["GSW_DIAL_MODE"], body["GSW_OPTIMIZE_BY"], body["GSW_OPTIMIZE_GOAL"]) == (
            1,
            1,
            85,
        )
    busy = [body["GSW_STAT_BUSY_FACTOR"] for body in bodies_a]
    assert all(_number(value, high=1.0) for value in busy), busy
    assert busy[-1] >= busy[0] + 0.04, f"the busy factor does not rise as agents get calls: {busy}"
    assert busy[-1] > 0.6, busy
    for body in bodies_a[-3:]:  # with data: numbers, never null
        for name in STATS:
            assert _number(body[name]), (name, body[name])
        assert body["GSW_STAT_OVERDIAL_RATE"] <= 1
        assert body["GSW_STAT_TIME_TO_COMPLETE"] > 0, "1500 records cannot be done yet"
    last = bodies_a[-1]
    assert abs(last["GSW_STAT_HIT_RATIO"] - LIVE_ANSWER_RATE) <= 0.1, last
    lists = {cl["GSW_CALLING_LIST_NAME"]: cl for cl in last["GSW_CALLING_LISTS"]}
    assert list(lists) == ["Renewals_Q4", "Renewals_Lapsed"]
    for cl in lists.values():
        assert abs(cl["GSW_STAT_HIT_RATIO"] - LIVE_ANSWER_RATE) <= 0.15, cl
        assert _number(cl["GSW_STAT_TIME_TO_COMPLETE"]) and cl["GSW_STAT_TIME_TO_COMPLETE"] > 0

    # progressive (102) and preview (104): no optimization, cannot overdial
    for dbid, mode in ((102, 2), (104, 3)):
        last = receiver.matching(_running_periodic(dbid))[-1].json
        assert last["GSW_DIAL_MODE"] == mode
        assert "GSW_OPTIMIZE_BY" not in last and "GSW_OPTIMIZE_GOAL" not in last
        assert _number(last["GSW_STAT_BUSY_FACTOR"], high=1.0), last
        assert _number(last["GSW_STAT_HIT_RATIO"], high=1.0), last
        assert last["GSW_STAT_OVERDIAL_RATE"] == 0, f"mode {mode} overdialed: {last}"
        assert _number(last["GSW_STAT_TIME_TO_COMPLETE"]), last
        for cl in last["GSW_CALLING_LISTS"]:
            assert _number(cl["GSW_STAT_HIT_RATIO"], high=1.0), cl

    # GVP (103): no agents, so no busy factor, ever; the other statistics are numbers
    bodies_c = [r.json for r in receiver.matching(lambda r: r.dbid == "103")]
    assert len(bodies_c) >= 5
    assert [b["GSW_STAT_BUSY_FACTOR"] for b in bodies_c] == [None] * len(bodies_c)
    last_c = receiver.matching(_running_periodic(103))[-1].json
    assert last_c["GSW_DIAL_MODE"] == 10
    assert _number(last_c["GSW_STAT_HIT_RATIO"], high=1.0), last_c
    assert _number(last_c["GSW_STAT_OVERDIAL_RATE"], high=1.0), last_c

    # the control API shows the same statistics
    stats_a = views[101]["statistics"]
    assert _number(stats_a["busy_factor"], low=0.6, high=1.0), stats_a
    assert abs(stats_a["hit_ratio"] - LIVE_ANSWER_RATE) <= 0.1, stats_a
    assert _number(stats_a["overdial_rate"], high=1.0), stats_a
    assert _number(stats_a["time_to_complete"]) and stats_a["time_to_complete"] > 0
    assert [(cl["name"], cl["dbid"]) for cl in stats_a["calling_lists"]] == [
        ("Renewals_Q4", 201),
        ("Renewals_Lapsed", 202),
    ]
    assert all(_number(cl["hit_ratio"], high=1.0) for cl in stats_a["calling_lists"])
    assert views[101]["calls_in_progress"] > 0
    assert views[103]["statistics"]["busy_factor"] is None
    assert _number(views[103]["statistics"]["hit_ratio"], high=1.0)
    assert views[104]["statistics"]["overdial_rate"] == 0


def _small_group(dbid, calling_list, **options):
    return {
        "dbid": dbid,
        "campaign": f"Small {dbid}",
        "group": "Small Team",
        "queue": "7005",
        "agents": 10,
        "talk-time": 60,
        "dial-mode": "progressive",
        "calling-lists": calling_list,
        **options,
    }


async def test_auto_completion_when_the_records_run_out(
    receiver, ini_sections, write_ini, ocsd_process, control_for
):
    """30 records, one attempt each: about 600 simulated seconds of work (1 s of wall)."""
    small = {"records": 30, "max-attempts": 1}
    sections = ini_sections(
        receiver.url,
        interval=1,
        ocsd={"time-scale": 600},
        **{
            "calling-list:Small_A": {"dbid": 241, **small},
            "calling-list:Small_B": {"dbid": 242, **small},
            "calling-list:Small_C": {"dbid": 243, **small},
            "campaign-group:ByConfig@Small": _small_group(
                105, "Small_A", **{"auto-complete": True}
            ),
            "campaign-group:ByRequest@Small": _small_group(106, "Small_B"),
            "campaign-group:Manual@Small": _small_group(107, "Small_C"),
        },
    )
    async with ocsd_process(write_ini(sections)) as proc:
        control = control_for(proc.control_url)
        for dbid in (105, 106, 107):
            await control.ok(dbid, "LoadCampaign")
        await control.ok(105, "StartDialing")  # auto-complete = true in its configuration
        await control.ok(106, "StartDialing", GSW_AUTO_COMPLETION=1)  # asked for per request
        await control.ok(107, "StartDialing")  # no auto-completion
        for dbid in (105, 106):
            await receiver.wait_for(
                1, lambda r, d=str(dbid): r.dbid == d and r.action == 8, within=8
            )
        # the group without auto-completion has nothing left either, yet keeps running
        done = await receiver.wait_for(
            1,
            lambda r: (
                r.periodic
                and r.dbid == "107"
                and r.status == 5
                and r.json["GSW_STAT_TIME_TO_COMPLETE"] == 0
            ),
            within=8,
        )
        views = {dbid: await control.group(dbid) for dbid in (105, 106, 107)}
        await receiver.settle(1.1)  # a periodic tick: nothing more for 105 and 106
        code = await proc.stop()
    assert code == 0, proc.stderr_text

    for dbid in (105, 106):
        state = receiver.matching(receiver.state_of(dbid))
        assert [(r.action, r.status, r.actor) for r in state] == [
            (7, 4, 1),
            (9, 5, 1),
            (10, 4, 3),
            (8, 0, 3),
        ], f"{dbid}: stop then unload by OCS itself (actor 3): {state}"
        stop, unload = state[2].json, state[3].json
        assert stop["GSW_STAT_TIME_TO_COMPLETE"] == 0, "nothing left to do"
        assert float(stop["GSW_DATE_TIME"]) <= float(unload["GSW_DATE_TIME"])
        assert views[dbid]["status"]["code"] == 0
        unloaded_at = state[3].at
        late = [r for r in receiver.matching(receiver.periodic_of(dbid)) if r.at > unloaded_at]
        assert late == [], f"periodic bodies after the auto-completion: {late}"
        assert proc.json_lines(event="campaign group changed by OCS", action=8, actor="ocs")

    body = done[-1].json
    assert [cl["GSW_STAT_TIME_TO_COMPLETE"] for cl in body["GSW_CALLING_LISTS"]] == [0]
    assert [r.action for r in receiver.matching(receiver.state_of(107))] == [7, 9]
    assert views[107]["status"]["code"] == 5
    assert views[107]["statistics"]["time_to_complete"] == 0
    assert views[107]["calls_in_progress"] == 0
