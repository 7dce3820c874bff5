"""The life-cycle rules of spec section 5 (ocsd.receiver.validate.LifeCycleChecker), each named."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.identities import group_snapshot, numbered_identity

from ocsd.core.body import build_body
from ocsd.core.genesys import (
    LOADED_STATUSES,
    Action,
    Actor,
    DialMode,
    GroupStatus,
    OptimizeBy,
    Request,
)
from ocsd.core.identity import Tenant
from ocsd.core.lifecycle import (
    CampaignGroup,
    Dialing,
    DialingChange,
    InvalidParameter,
    RequestRefused,
)
from ocsd.receiver.validate import (
    TRANSITIONS,
    LifeCycleChecker,
    action_status_problem,
    schema_problems,
)

A, P, S, ST, U, F, M = 7, 0, 9, 10, 8, 29, 11  # load, periodic, start, stop, unload, force, mode
NOT_LOADED, WAITING, ACTIVE, RUNNING = 0, 1, 4, 5
PREDICTIVE = Dialing(DialMode.PREDICTIVE, OptimizeBy.BUSY_FACTOR, 85)


def msg(
    action: int,
    status: int,
    at: float,
    dbid: int = 101,
    dialing: Dialing | None = None,
    actor: Actor | None = None,
) -> dict[str, Any]:
    """A real body (build_body) of one notification."""
    if status == RUNNING and dialing is None:
        dialing = PREDICTIVE
    if actor is None:
        actor = Actor.UNKNOWN if action == 0 else Actor.CLIENT
    snapshot = group_snapshot(
        numbered_identity(dbid), GroupStatus(status), dialing, Action(action), actor, at
    )
    return build_body(snapshot, Tenant())


def judge(*steps: tuple[int, int] | tuple[int, int, float]) -> list[list[tuple[str, str | None]]]:
    """Feed (action, status[, at]) messages of group 101 to a fresh checker; the problems."""
    checker = LifeCycleChecker()
    found = []
    for index, step in enumerate(steps):
        action, status, *rest = step
        at = rest[0] if rest else 1000.0 + index
        found.append([(p.rule, p.field) for p in checker.check(msg(action, status, at))])
    return found


def clean(results: list[list[Any]]) -> bool:
    return all(not r for r in results)


# -- what the spec allows ------------------------------------------------------------------


def test_a_full_life_cycle_with_periodic_notifications_is_clean():
    assert clean(
        judge(
            (A, ACTIVE),
            (P, ACTIVE),
            (S, RUNNING),
            (P, RUNNING),
            (M, RUNNING),
            (P, RUNNING),
            (ST, ACTIVE),
            (P, ACTIVE),
            (P, WAITING),  # an unload waits for calls in progress: not notified
            (P, WAITING),
            (U, NOT_LOADED),
            (A, ACTIVE),  # and again
            (S, RUNNING),
            (F, NOT_LOADED),
        )
    )


def test_unload_of_a_running_group_is_stop_then_unload_at_the_same_instant():
    assert clean(judge((A, ACTIVE), (S, RUNNING), (ST, ACTIVE, 1005.0), (U, NOT_LOADED, 1005.0)))


def test_without_periodic_notifications_a_waiting_unload_is_seen_as_active_then_unloaded():
    assert clean(judge((A, ACTIVE), (S, RUNNING), (ST, ACTIVE), (U, NOT_LOADED)))


@pytest.mark.parametrize("loaded", [ACTIVE, RUNNING, WAITING])
def test_force_unload_from_any_loaded_status(loaded):
    path = {ACTIVE: [(A, ACTIVE)], RUNNING: [(A, ACTIVE), (S, RUNNING)]}.get(
        loaded, [(A, ACTIVE), (P, WAITING)]
    )
    assert clean(judge(*path, (F, NOT_LOADED)))


def test_a_new_dial_mode_with_its_set_dialing_mode_notification_is_clean():
    checker = LifeCycleChecker()
    progressive = Dialing(DialMode.PROGRESSIVE)
    steps = [
        msg(A, ACTIVE, 1),
        msg(S, RUNNING, 2),
        msg(P, RUNNING, 3),
        msg(M, RUNNING, 4, dialing=progressive),
        msg(P, RUNNING, 5, dialing=progressive),
    ]
    assert [checker.check(m) for m in steps] == [[]] * 5


# -- each violation, named ----------------------------------------------------------------

ALL_PAIRS = list(itertools.product([int(a) for a in Action], [int(s) for s in GroupStatus]))


@pytest.mark.parametrize(("action", "status"), ALL_PAIRS)
def test_action_status_pairs_follow_the_spec_table(action, status):
    expected = {
        7: {4},
        9: {5},
        11: {5},
        10: {4},
        8: {0},
        29: {0},
        0: {1, 4, 5},
    }[action]
    problem = action_status_problem(action, status)
    assert (problem is None) == (status in expected)
    if problem is not None:
        assert problem.rule == "action-status"
        assert problem.field == "GSW_CAMPAIGN_GROUP_STATUS"
        # and the checker reports it even on the first message of a group
        assert ("action-status", "GSW_CAMPAIGN_GROUP_STATUS") in judge((action, status))[0]


def test_a_periodic_notification_for_a_group_that_is_not_loaded():
    found = judge((A, ACTIVE), (U, NOT_LOADED), (P, ACTIVE))
    assert found[-1] == [("periodic-not-loaded", "GSW_CAMPAIGN_GROUP_ACTION")]
    # with status NotLoaded it also breaks the action/status pair
    found = judge((A, ACTIVE), (U, NOT_LOADED), (P, NOT_LOADED))
    assert ("periodic-not-loaded", "GSW_CAMPAIGN_GROUP_ACTION") in found[-1]
    assert ("action-status", "GSW_CAMPAIGN_GROUP_STATUS") in found[-1]


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        pytest.param([(A, ACTIVE), (U, NOT_LOADED)], (S, RUNNING), id="start-not-loaded"),
        pytest.param([(A, ACTIVE)], (A, ACTIVE), id="load-twice"),
        pytest.param([(A, ACTIVE), (S, RUNNING)], (A, ACTIVE), id="load-running"),
        pytest.param([(A, ACTIVE)], (ST, ACTIVE), id="stop-active"),
        pytest.param([(A, ACTIVE)], (M, RUNNING), id="setmode-active"),
        pytest.param([(A, ACTIVE), (S, RUNNING)], (S, RUNNING), id="start-running"),
        pytest.param([(A, ACTIVE), (S, RUNNING)], (U, NOT_LOADED), id="unload-without-stop"),
        pytest.param([(A, ACTIVE), (U, NOT_LOADED)], (U, NOT_LOADED), id="unload-twice"),
        pytest.param([(A, ACTIVE), (U, NOT_LOADED)], (F, NOT_LOADED), id="force-not-loaded"),
        pytest.param([(A, ACTIVE), (P, WAITING)], (S, RUNNING), id="start-waiting"),
    ],
)
def test_a_transition_the_spec_does_not_allow(path, bad):
    found = judge(*path, bad)
    assert clean(found[:-1])
    assert found[-1] == [("transition", "GSW_CAMPAIGN_GROUP_ACTION")]


@pytest.mark.parametrize(
    ("path", "periodic_status"),
    [
        pytest.param([(A, ACTIVE)], RUNNING, id="active-to-running"),
        pytest.param([(A, ACTIVE), (S, RUNNING)], ACTIVE, id="running-to-active"),
        pytest.param([(A, ACTIVE), (S, RUNNING)], WAITING, id="running-to-waiting"),
        pytest.param([(A, ACTIVE), (P, WAITING)], ACTIVE, id="waiting-to-active"),
    ],
)
def test_a_periodic_notification_may_not_show_an_unnotified_change(path, periodic_status):
    found = judge(*path, (P, periodic_status))
    assert found[-1] == [("transition", "GSW_CAMPAIGN_GROUP_STATUS")]


def test_a_dial_mode_change_without_set_dialing_mode_is_named():
    checker = LifeCycleChecker()
    assert checker.check(msg(A, ACTIVE, 1)) == []
    assert checker.check(msg(S, RUNNING, 2)) == []
    (problem,) = checker.check(msg(P, RUNNING, 3, dialing=Dialing(DialMode.PROGRESSIVE)))
    assert (problem.rule, problem.field) == ("transition", "GSW_DIAL_MODE")
    assert "SetDialingMode" in problem.message


def test_a_message_older_than_one_received_is_out_of_order_and_changes_nothing():
    checker = LifeCycleChecker()
    assert checker.check(msg(A, ACTIVE, 100.0)) == []
    assert checker.check(msg(S, RUNNING, 101.0)) == []
    (problem,) = checker.check(msg(P, ACTIVE, 100.5))  # stale: older than the start
    assert (problem.rule, problem.field) == ("out-of-order", "GSW_DATE_TIME")
    assert "100.500" in problem.message and "101.000" in problem.message
    assert checker.known_status(101) == GroupStatus.RUNNING, "the stale message changed nothing"
    assert checker.check(msg(P, RUNNING, 102.0)) == []
    assert checker.check(msg(ST, ACTIVE, 102.0)) == [], "the same instant is not backwards"


def test_the_same_body_twice_is_a_duplicate_and_changes_nothing():
    checker = LifeCycleChecker()
    assert checker.check(msg(A, ACTIVE, 100.0)) == []
    assert checker.check(msg(S, RUNNING, 101.0)) == []
    (problem,) = checker.check(msg(S, RUNNING, 101.0))
    assert problem.rule == "duplicate" and "delivered twice" in problem.message
    assert checker.known_status(101) == GroupStatus.RUNNING
    assert checker.check(msg(P, RUNNING, 102.0)) == [], "the next message is judged as usual"


def test_timestamps_are_compared_per_group():
    checker = LifeCycleChecker()
    assert checker.check(msg(A, ACTIVE, 200.0, dbid=101)) == []
    assert checker.check(msg(A, ACTIVE, 100.0, dbid=102)) == []  # another group, older: fine
    assert checker.check(msg(P, ACTIVE, 201.0, dbid=101)) == []
    assert checker.check(msg(P, ACTIVE, 101.0, dbid=102)) == []


def test_every_problem_names_its_rule_field_and_statuses():
    checker = LifeCycleChecker()
    checker.check(msg(A, ACTIVE, 1))
    (problem,) = checker.check(msg(ST, ACTIVE, 2))
    assert str(problem) == (
        "GSW_CAMPAIGN_GROUP_ACTION: StopDialing (10) is not allowed from Active (4) (the status "
        "the group's last message left it in); the contract allows it from Running (5) "
        "(contract: Transitions (docs/contract.md#transitions)) [transition]"
    )


# -- tolerance -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "status"),
    [(P, RUNNING), (P, WAITING), (ST, ACTIVE), (U, NOT_LOADED), (M, RUNNING), (F, NOT_LOADED)],
)
def test_the_first_message_of_an_unseen_group_establishes_its_state(action, status):
    """A sink that starts after the daemon sees groups mid-life: no violation for that."""
    checker = LifeCycleChecker()
    assert checker.check(msg(action, status, 50.0)) == []
    assert checker.known_status(101) == GroupStatus(status)


def test_one_missed_message_gives_one_violation_not_a_cascade():
    # the StartDialing notification was lost: the StopDialing is a violation, and the
    # group is then known Active again, so the unload after it is fine
    found = judge((A, ACTIVE), (ST, ACTIVE), (P, ACTIVE), (U, NOT_LOADED), (A, ACTIVE))
    assert found == [[], [("transition", "GSW_CAMPAIGN_GROUP_ACTION")], [], [], []]


def test_a_restarted_producer_shows_as_one_transition_violation():
    found = judge((A, ACTIVE), (S, RUNNING), (A, ACTIVE), (S, RUNNING))
    assert found == [[], [], [("transition", "GSW_CAMPAIGN_GROUP_ACTION")], []]


def test_the_transition_table_is_the_spec_table():
    before = {a: {int(s) for s in TRANSITIONS[a][0]} for a in TRANSITIONS}
    assert before == {
        Action.LOAD: {0},
        Action.START: {4},
        Action.SET_DIAL_MODE: {5},
        Action.STOP: {5},
        Action.UNLOAD: {4, 1},
        Action.FORCE_UNLOAD: {int(s) for s in LOADED_STATUSES},
        Action.PERIODIC: {1, 4, 5},
    }


# -- the daemon's own state machine never breaks the rules (property) -------------------------

REQUESTS = list(Request)


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from([*REQUESTS, "periodic", "calls", "calls-end"]),
            st.sampled_from([DialMode.PREDICTIVE, DialMode.PROGRESSIVE, DialMode.POWER, None]),
            st.sampled_from([Actor.CLIENT, Actor.SCHEDULE, Actor.OCS]),
        ),
        max_size=40,
    ),
    late_start=st.integers(min_value=0, max_value=10),
)
def test_every_sequence_of_the_campaign_state_machine_passes_the_checker(steps, late_start):
    """Random requests to ocsd.core.lifecycle.CampaignGroup, with periodic notifications of its
    status and calls coming and going: every body is schema-valid and no rule fires, even
    for a checker that starts listening late."""
    group = CampaignGroup(numbered_identity(101), default_dialing=PREDICTIVE)
    checker = LifeCycleChecker()
    clock = itertools.count(1000)
    for index, (step, mode, actor) in enumerate(steps):
        now = float(next(clock))
        transitions = []
        if step == "periodic":
            bodies = [msg(P, group.status, now, dialing=group.dialing)] if group.loaded else []
        else:
            if step == "calls":
                group.calls_in_progress += 3
                continue
            if step == "calls-end":
                transitions = group.calls_ended(now)
            else:
                change = DialingChange(mode=mode) if mode is not None else DialingChange()
                try:
                    transitions = group.apply(step, actor, now, change)
                except (RequestRefused, InvalidParameter):
                    continue
            bodies = [
                msg(t.action, t.status, t.at, dialing=t.dialing, actor=t.actor) for t in transitions
            ]
        for body in bodies:
            assert schema_problems(body) == []
            if index >= late_start:
                assert checker.check(body) == [], (step, body)


def test_the_checker_forgets_the_least_recently_seen_group_beyond_its_limit():
    checker = LifeCycleChecker(max_groups=2)
    checker.check(msg(A, ACTIVE, 1.0, dbid=1))
    checker.check(msg(A, ACTIVE, 1.0, dbid=2))
    checker.check(msg(P, ACTIVE, 2.0, dbid=1))  # 1 is now the most recently seen
    checker.check(msg(A, ACTIVE, 1.0, dbid=3))  # forgets 2
    assert set(checker.groups) == {"1", "3"}
    assert checker.check(msg(S, RUNNING, 3.0, dbid=2)) == [], "2 starts over as a first message"
    assert set(checker.groups) == {"3", "2"}
