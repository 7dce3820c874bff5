"""The Engine: requests and ticks in, immutable snapshots out."""

from __future__ import annotations

import json

import pytest
from support.identities import numbered_identity

from ocsd.core.body import GroupSnapshot
from ocsd.core.engine import Engine, GroupDefinition, UnknownGroup
from ocsd.core.genesys import Action, Actor, DialMode, GroupStatus, OptimizeBy, Request
from ocsd.core.lifecycle import Dialing, DialingChange, RequestRefused
from ocsd.core.simulation import GroupModel, ListModel

NOW = 1763912345.5


def definition(
    dbid: int, dialing: Dialing, *lists: tuple[str, int], agents: int = 10
) -> GroupDefinition:
    identity = numbered_identity(dbid, lists)
    model = GroupModel(
        name=identity.name,
        dbid=dbid,
        lists=tuple(ListModel(name, list_dbid) for name, list_dbid in lists),
        agents=agents,
    )
    return GroupDefinition(identity, dialing, model)


PREDICTIVE = Dialing(DialMode.PREDICTIVE, OptimizeBy.BUSY_FACTOR, 85)
PROGRESSIVE = Dialing(DialMode.PROGRESSIVE)


@pytest.fixture
def engine() -> Engine:
    return Engine(
        wall_start=NOW - 60,
        seed=1,
        definitions=[
            definition(101, PREDICTIVE, ("Q4", 201), ("Lapsed", 202), agents=25),
            definition(102, PROGRESSIVE, ("Collections", 211)),
            definition(103, PREDICTIVE, ("Survey", 221)),
            definition(104, PROGRESSIVE, ("Spare", 231)),
        ],
    )


def list_ids(snapshot: GroupSnapshot) -> list[tuple[str, int]]:
    return [(cl.name, cl.dbid) for cl in snapshot.statistics.calling_lists]


def test_request_returns_a_snapshot_per_transition_with_every_calling_list(
    engine: Engine,
) -> None:
    [loaded] = engine.request(101, Request.LOAD, Actor.CLIENT, NOW)
    engine.request(101, Request.START, Actor.CLIENT, NOW + 1)
    # Predictive dialing starts at once: calls are ringing when the unload comes, so the
    # group stops, waits (WaitingUnload) and is unloaded when the last call has ended.
    [stop] = engine.request(101, Request.UNLOAD, Actor.SCHEDULE, NOW + 2)
    assert engine.group(101).status == GroupStatus.WAITING_UNLOAD
    assert engine.group(101).calls_in_progress > 0
    assert engine.advance(NOW + 3) == []
    [unload] = engine.advance(NOW + 3600)

    assert (loaded.action, loaded.actor, loaded.status, loaded.at) == (
        Action.LOAD,
        Actor.CLIENT,
        GroupStatus.ACTIVE,
        NOW,
    )
    assert loaded.identity.dbid == 101
    assert (stop.action, stop.status) == (Action.STOP, GroupStatus.ACTIVE)
    assert (unload.action, unload.actor, unload.status) == (
        Action.UNLOAD,
        Actor.SCHEDULE,
        GroupStatus.NOT_LOADED,
    )
    for snapshot in (loaded, stop, unload):
        assert list_ids(snapshot) == [("Q4", 201), ("Lapsed", 202)]


def test_a_start_snapshot_carries_the_dialing(engine: Engine) -> None:
    engine.request(102, Request.LOAD, Actor.CLIENT, NOW)

    [started] = engine.request(102, Request.START, Actor.CLIENT, NOW)

    assert started.status == GroupStatus.RUNNING
    assert started.dialing == PROGRESSIVE


def test_a_refused_request_raises_and_changes_nothing(engine: Engine) -> None:
    with pytest.raises(RequestRefused):
        engine.request(101, Request.START, Actor.CLIENT, NOW)

    assert engine.group(101).status == GroupStatus.NOT_LOADED
    assert engine.periodic(NOW) == []


def test_periodic_reports_every_loaded_group_and_no_other(engine: Engine) -> None:
    engine.request(101, Request.LOAD, Actor.CLIENT, NOW)
    engine.request(101, Request.START, Actor.CLIENT, NOW)
    engine.request(102, Request.LOAD, Actor.CLIENT, NOW)
    engine.request(103, Request.LOAD, Actor.CLIENT, NOW)
    engine.request(103, Request.START, Actor.CLIENT, NOW)
    engine.advance(NOW + 5)
    engine.request(103, Request.UNLOAD, Actor.CLIENT, NOW + 5)  # calls still ringing
    # 104 stays NotLoaded

    tick = NOW + 10
    snapshots = engine.periodic(tick)

    assert [(s.identity.dbid, s.status) for s in snapshots] == [
        (101, GroupStatus.RUNNING),
        (102, GroupStatus.ACTIVE),
        (103, GroupStatus.WAITING_UNLOAD),
    ]
    for snapshot in snapshots:
        assert snapshot.action == Action.PERIODIC == 0
        assert snapshot.actor == Actor.UNKNOWN == 0
        assert snapshot.periodic
        assert snapshot.at == tick
        assert list_ids(snapshot) == [(cl.name, cl.dbid) for cl in snapshot.identity.calling_lists]
    assert snapshots[0].dialing == PREDICTIVE
    assert snapshots[1].dialing is None
    assert snapshots[2].dialing is None


def test_periodic_with_no_loaded_group_is_empty(engine: Engine) -> None:
    engine.request(101, Request.LOAD, Actor.CLIENT, NOW)
    engine.request(101, Request.FORCE_UNLOAD, Actor.CLIENT, NOW)

    assert engine.periodic(NOW + 10) == []


def test_an_unknown_dbid_is_refused(engine: Engine) -> None:
    with pytest.raises(UnknownGroup):
        engine.request(999, Request.LOAD, Actor.CLIENT, NOW)
    with pytest.raises(UnknownGroup):
        engine.view(999, NOW)
    with pytest.raises(UnknownGroup):
        engine.group(999)
    assert 999 not in engine
    assert 101 in engine


def test_view_of_a_group_through_its_life_cycle(engine: Engine) -> None:
    def view() -> dict[str, object]:
        result = engine.view(101, NOW)
        assert json.loads(json.dumps(result)) == result  # plain JSON
        return result

    not_loaded = view()
    assert not_loaded["status"] == {"code": 0, "name": "NotLoaded"}
    assert not_loaded["dial_mode"] is None
    assert not_loaded["dbid"] == 101
    assert not_loaded["agents"] == 25

    engine.request(101, Request.LOAD, Actor.CLIENT, NOW)
    assert view()["status"] == {"code": 4, "name": "Active"}
    assert view()["dial_mode"] is None

    engine.request(101, Request.START, Actor.CLIENT, NOW)
    running = view()
    assert running["status"] == {"code": 5, "name": "Running"}
    assert running["dial_mode"] == {"code": 1, "name": "predictive"}
    assert running["optimize_by"] == {"code": 1, "name": "busy-factor"}
    assert running["optimize_goal"] == 85

    engine.request(
        101, Request.SET_DIAL_MODE, Actor.CLIENT, NOW, DialingChange(DialMode.PROGRESSIVE)
    )
    progressive = view()
    assert progressive["dial_mode"] == {"code": 2, "name": "progressive"}
    assert progressive["optimize_by"] is None
    assert progressive["optimize_goal"] is None

    engine.request(101, Request.STOP, Actor.CLIENT, NOW)
    stopped = view()
    assert stopped["status"] == {"code": 4, "name": "Active"}
    assert stopped["dial_mode"] is None


def test_view_lists_the_statistics_of_every_calling_list(engine: Engine) -> None:
    statistics = engine.view(101, NOW)["statistics"]

    assert [(cl["name"], cl["dbid"]) for cl in statistics["calling_lists"]] == [
        ("Q4", 201),
        ("Lapsed", 202),
    ]
    assert set(statistics) == {
        "busy_factor",
        "hit_ratio",
        "overdial_rate",
        "time_to_complete",
        "calling_lists",
    }


def test_views_follow_the_configuration_order(engine: Engine) -> None:
    assert [view["dbid"] for view in engine.views(NOW)] == [101, 102, 103, 104]


def test_auto_completion_stops_and_unloads_with_actor_3_when_the_list_runs_out() -> None:
    tiny = definition(301, PREDICTIVE, ("Tiny", 401), agents=5)
    tiny_lists = (ListModel("Tiny", 401, records=20, max_attempts=1),)
    tiny = GroupDefinition(
        tiny.identity, tiny.dialing, GroupModel("Group 301", 301, tiny_lists, agents=5)
    )
    engine = Engine([tiny], wall_start=NOW, seed=3)
    engine.request(301, Request.LOAD, Actor.CLIENT, NOW)
    # GSW_AUTO_COMPLETION is asked for per request (spec 5): here on StartDialing.
    engine.request(301, Request.START, Actor.CLIENT, NOW, auto_complete=True)

    changes = []
    for second in range(1, 7200):
        changes = engine.advance(NOW + second)
        if changes:
            break

    assert [(c.action, c.actor, c.status) for c in changes] == [
        (Action.STOP, Actor.OCS, GroupStatus.ACTIVE),
        (Action.UNLOAD, Actor.OCS, GroupStatus.NOT_LOADED),
    ]
    assert changes[-1].statistics.time_to_complete == 0


def test_without_auto_completion_an_exhausted_group_keeps_running() -> None:
    lists = (ListModel("Tiny", 401, records=20, max_attempts=1),)
    group = GroupDefinition(
        definition(301, PREDICTIVE, ("Tiny", 401)).identity,
        PREDICTIVE,
        GroupModel("Group 301", 301, lists, agents=5),
    )
    engine = Engine([group], wall_start=NOW, seed=3)
    engine.request(301, Request.LOAD, Actor.CLIENT, NOW)
    engine.request(301, Request.START, Actor.CLIENT, NOW)

    assert all(engine.advance(NOW + second) == [] for second in range(1, 7200, 10))
    assert engine.group(301).status == GroupStatus.RUNNING
    [tick] = engine.periodic(NOW + 7200)
    assert tick.statistics.time_to_complete == 0


# -- lazy simulations: read when needed, caught up in the background -----------------


def _running_engine() -> Engine:
    engine = Engine(
        wall_start=NOW,
        seed=7,
        definitions=[
            definition(101, PREDICTIVE, ("Q4", 201), ("Lapsed", 202), agents=25),
            definition(102, PROGRESSIVE, ("Collections", 211)),
        ],
    )
    for dbid in (101, 102):
        engine.request(dbid, Request.LOAD, Actor.CLIENT, NOW)
        engine.request(dbid, Request.START, Actor.CLIENT, NOW)
    return engine


def test_a_group_read_once_reports_what_a_group_stepped_all_along_reports() -> None:
    stepped, lazy = _running_engine(), _running_engine()
    for quarter in range(1, 4 * 600 + 1):  # ten minutes in the daemon's 0.25 s steps
        stepped.advance(NOW + quarter / 4)
        stepped.catch_up(NOW + quarter / 4, share=1.0, older_than=0.0)

    at = NOW + 600
    assert stepped.periodic(at) == lazy.periodic(at)
    assert stepped.view(101, at) == lazy.view(101, at)
    assert lazy.view(101, at)["statistics"]["busy_factor"] is not None


def test_background_catch_up_keeps_every_simulation_near_the_present() -> None:
    engine = _running_engine()
    # nobody reads the groups (a receiver that hangs): only the daemon's steps run
    for quarter in range(1, 4 * 60 + 1):
        engine.catch_up(NOW + quarter / 4, share=0.25 / 5, older_than=5)
    sim_now = engine.clock(NOW + 60)
    lags = [sim_now - engine._simulations[dbid].now for dbid in (101, 102)]
    assert all(0 <= lag <= 5.5 for lag in lags), lags


def test_only_groups_that_can_change_on_their_own_are_stepped() -> None:
    engine = _running_engine()
    engine.advance(NOW + 30)
    # running without auto-completion: nothing can change by itself, nothing advanced
    assert engine._simulations[101].now == engine.clock(NOW)
    engine.request(102, Request.UNLOAD, Actor.CLIENT, NOW + 30)  # calls still up
    assert engine.group(102).status == GroupStatus.WAITING_UNLOAD
    changes: list[GroupSnapshot] = []
    for second in range(31, 600):
        changes = engine.advance(NOW + second)
        if changes:
            break
    assert [(c.action, c.status) for c in changes] == [(Action.UNLOAD, GroupStatus.NOT_LOADED)]
    assert engine._simulations[101].now == engine.clock(NOW), "101 was stepped"


def test_pages_of_dbids_follow_additions_and_removals() -> None:
    """dbids_after: ascending DBIDs after a cursor, whatever the configuration order."""
    engine = Engine(
        [definition(dbid, PROGRESSIVE, (f"L{dbid}", dbid + 1000)) for dbid in (30, 10, 20)],
        wall_start=NOW,
    )
    assert engine.dbids_after(0, 2) == [10, 20]
    assert engine.dbids_after(20, 2) == [30]
    assert engine.dbids_after(30, 2) == []
    engine.add(definition(15, PROGRESSIVE, ("L15", 1015)))
    engine.remove(20, NOW)
    assert engine.dbids_after(0, 10) == [10, 15, 30]
    assert engine.dbids_after(12, 1) == [15]
