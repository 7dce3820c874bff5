"""The Campaign Group life cycle of spec section 5, driven with a fake clock."""

from __future__ import annotations

import itertools

import pytest
from support.identities import identity

from ocsd.core.genesys import Action, Actor, DialMode, GroupStatus, OptimizeBy, Request
from ocsd.core.lifecycle import (
    CampaignGroup,
    Dialing,
    DialingChange,
    InvalidParameter,
    RequestRefused,
    Transition,
    validate_dialing,
)

NOW = 1763912345.25
LATER = NOW + 42.5

IDENTITY = identity(lists=[("Renewals_Q4", 201)])
CONFIGURED = Dialing(DialMode.PREDICTIVE, OptimizeBy.BUSY_FACTOR, 85)

NOT_LOADED, WAITING_UNLOAD = GroupStatus.NOT_LOADED, GroupStatus.WAITING_UNLOAD
ACTIVE, RUNNING = GroupStatus.ACTIVE, GroupStatus.RUNNING
STATUSES = (NOT_LOADED, ACTIVE, RUNNING, WAITING_UNLOAD)

#: Spec 5, written out: the statuses in which each request is allowed.
ALLOWED: dict[Request, set[GroupStatus]] = {
    Request.LOAD: {NOT_LOADED},
    Request.START: {ACTIVE},
    Request.SET_DIAL_MODE: {RUNNING},
    Request.STOP: {RUNNING},
    Request.UNLOAD: {ACTIVE, RUNNING},
    Request.FORCE_UNLOAD: {ACTIVE, RUNNING, WAITING_UNLOAD},
}
REFUSED = [
    (request, status)
    for request, status in itertools.product(Request, STATUSES)
    if status not in ALLOWED[request]
]


def new_group(
    dialing: Dialing = CONFIGURED, *, default_auto_complete: bool = False
) -> CampaignGroup:
    return CampaignGroup(IDENTITY, dialing, default_auto_complete=default_auto_complete)


def group_in(status: GroupStatus, *, calls: int = 0) -> CampaignGroup:
    """A group brought to ``status`` through the requests a user would send."""
    group = new_group()
    if status == NOT_LOADED:
        return group
    group.apply(Request.LOAD, Actor.CLIENT, NOW - 3)
    if status in (RUNNING, WAITING_UNLOAD):
        group.apply(Request.START, Actor.CLIENT, NOW - 2)
    if status == WAITING_UNLOAD:
        group.calls_in_progress = 3
        group.apply(Request.UNLOAD, Actor.CLIENT, NOW - 1)
    group.calls_in_progress = calls
    assert group.status == status
    return group


# -- allowed transitions ------------------------------------------------------------


@pytest.mark.parametrize("actor", list(Actor))
def test_load_makes_the_group_active(actor: Actor) -> None:
    group = new_group()

    assert group.apply(Request.LOAD, actor, NOW) == [
        Transition(Action.LOAD, actor, ACTIVE, None, NOW)
    ]
    assert group.status == ACTIVE
    assert group.dialing is None


def test_start_runs_with_the_requested_dialing() -> None:
    group = group_in(ACTIVE)
    change = DialingChange(DialMode.PREDICTIVE_WITH_SEIZING, OptimizeBy.OVERDIAL_RATE, 3)
    expected = Dialing(DialMode.PREDICTIVE_WITH_SEIZING, OptimizeBy.OVERDIAL_RATE, 3)

    assert group.apply(Request.START, Actor.SCHEDULE, NOW, change) == [
        Transition(Action.START, Actor.SCHEDULE, RUNNING, expected, NOW)
    ]
    assert group.status == RUNNING
    assert group.dialing == expected


def test_start_without_parameters_runs_with_the_configured_dialing() -> None:
    group = group_in(ACTIVE)

    assert group.apply(Request.START, Actor.CLIENT, NOW) == [
        Transition(Action.START, Actor.CLIENT, RUNNING, CONFIGURED, NOW)
    ]


def test_start_in_a_non_predictive_mode_carries_no_optimization() -> None:
    group = group_in(ACTIVE)
    change = DialingChange(DialMode.PROGRESSIVE, OptimizeBy.BUSY_FACTOR, 85)

    [transition] = group.apply(Request.START, Actor.CLIENT, NOW, change)

    assert transition.dialing == Dialing(DialMode.PROGRESSIVE, OptimizeBy.NONE, 0)


def test_set_dialing_mode_keeps_the_group_running() -> None:
    group = group_in(RUNNING)
    change = DialingChange(DialMode.PROGRESSIVE)

    assert group.apply(Request.SET_DIAL_MODE, Actor.CLIENT, NOW, change) == [
        Transition(Action.SET_DIAL_MODE, Actor.CLIENT, RUNNING, Dialing(DialMode.PROGRESSIVE), NOW)
    ]
    assert group.status == RUNNING
    assert group.dialing == Dialing(DialMode.PROGRESSIVE)


def test_set_dialing_mode_can_change_only_the_goal() -> None:
    group = group_in(RUNNING)

    [transition] = group.apply(
        Request.SET_DIAL_MODE, Actor.CLIENT, NOW, DialingChange(optimize_goal=70)
    )

    assert transition.dialing == Dialing(DialMode.PREDICTIVE, OptimizeBy.BUSY_FACTOR, 70)


def test_set_dialing_mode_without_any_parameter_is_invalid() -> None:
    group = group_in(RUNNING)

    with pytest.raises(InvalidParameter) as info:
        group.apply(Request.SET_DIAL_MODE, Actor.CLIENT, NOW, DialingChange())

    assert info.value.parameter == "dialmode"
    assert group.dialing == CONFIGURED


def test_stop_makes_the_group_active_at_once() -> None:
    group = group_in(RUNNING, calls=4)

    assert group.apply(Request.STOP, Actor.CLIENT, NOW) == [
        Transition(Action.STOP, Actor.CLIENT, ACTIVE, None, NOW)
    ]
    assert group.status == ACTIVE
    assert group.dialing is None


def test_unload_of_an_active_group_without_calls() -> None:
    group = group_in(ACTIVE)

    assert group.apply(Request.UNLOAD, Actor.CLIENT, NOW) == [
        Transition(Action.UNLOAD, Actor.CLIENT, NOT_LOADED, None, NOW)
    ]
    assert group.status == NOT_LOADED


def test_unload_of_a_running_group_stops_then_unloads() -> None:
    group = group_in(RUNNING)

    assert group.apply(Request.UNLOAD, Actor.SCHEDULE, NOW) == [
        Transition(Action.STOP, Actor.SCHEDULE, ACTIVE, None, NOW),
        Transition(Action.UNLOAD, Actor.SCHEDULE, NOT_LOADED, None, NOW),
    ]
    assert group.status == NOT_LOADED
    assert group.dialing is None


def test_unload_with_calls_in_progress_waits_then_completes_with_its_actor() -> None:
    group = group_in(ACTIVE, calls=2)

    assert group.apply(Request.UNLOAD, Actor.SCHEDULE, NOW) == []
    assert group.status == WAITING_UNLOAD

    assert group.calls_ended(LATER) == [
        Transition(Action.UNLOAD, Actor.SCHEDULE, NOT_LOADED, None, LATER)
    ]
    assert group.status == NOT_LOADED


def test_unload_of_a_running_group_with_calls_notifies_only_the_stop_until_calls_end() -> None:
    group = group_in(RUNNING, calls=2)

    assert group.apply(Request.UNLOAD, Actor.OCS, NOW) == [
        Transition(Action.STOP, Actor.OCS, ACTIVE, None, NOW)
    ]
    assert group.status == WAITING_UNLOAD
    assert group.dialing is None

    assert group.calls_ended(LATER) == [
        Transition(Action.UNLOAD, Actor.OCS, NOT_LOADED, None, LATER)
    ]
    assert group.status == NOT_LOADED


@pytest.mark.parametrize("status", [NOT_LOADED, ACTIVE, RUNNING])
def test_calls_ending_outside_a_waiting_unload_changes_nothing(status: GroupStatus) -> None:
    group = group_in(status, calls=2)
    dialing = group.dialing

    assert group.calls_ended(LATER) == []
    assert group.status == status
    assert group.dialing == dialing


@pytest.mark.parametrize("status", [ACTIVE, RUNNING, WAITING_UNLOAD])
def test_force_unload_from_every_loaded_status(status: GroupStatus) -> None:
    group = group_in(status, calls=5)

    assert group.apply(Request.FORCE_UNLOAD, Actor.CLIENT, NOW) == [
        Transition(Action.FORCE_UNLOAD, Actor.CLIENT, NOT_LOADED, None, NOW)
    ]
    assert group.status == NOT_LOADED
    assert group.dialing is None
    assert group.calls_in_progress == 0
    assert group.calls_ended(LATER) == []  # the dropped calls do not unload a second time


def test_a_group_can_be_loaded_and_started_again_after_an_unload() -> None:
    group = group_in(RUNNING)
    group.apply(Request.UNLOAD, Actor.CLIENT, NOW)

    group.apply(Request.LOAD, Actor.CLIENT, LATER)
    [transition] = group.apply(Request.START, Actor.CLIENT, LATER)

    assert transition == Transition(Action.START, Actor.CLIENT, RUNNING, CONFIGURED, LATER)


# -- refusals -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "status"), REFUSED, ids=[f"{r.value}-in-{s.name}" for r, s in REFUSED]
)
def test_a_request_the_status_does_not_allow_is_refused_and_changes_nothing(
    request_: Request, status: GroupStatus
) -> None:
    group = group_in(status, calls=1)
    before = (group.status, group.dialing, group.auto_complete, group.calls_in_progress)
    change = DialingChange(DialMode.PROGRESSIVE)

    with pytest.raises(RequestRefused) as info:
        group.apply(request_, Actor.CLIENT, NOW, change, auto_complete=True)

    assert info.value.request == request_
    assert info.value.status == status
    assert request_.value in str(info.value)
    assert (group.status, group.dialing, group.auto_complete, group.calls_in_progress) == before


# -- dial-mode switches while running (spec 4.1) ------------------------------------

#: Modes a running group with agents may switch between (spec 4.1: predictive and
#: progressive and their seizing variants; power the same, by the ocsd decision).
AGENT_MODES = {1, 2, 4, 5, 6, 7}
PREVIEW = {3, 8}  # never entered or left while running
GVP = {9, 10, 11}  # no agents: switch only among themselves
PREDICTIVE = {1, 5, 10}


def switch_allowed(current: int, new: int) -> bool:
    return current == new or {current, new} <= AGENT_MODES or {current, new} <= GVP


MODE_PAIRS = list(itertools.product(DialMode, DialMode))


@pytest.mark.parametrize(
    ("current", "new"), MODE_PAIRS, ids=[f"{a.name}-to-{b.name}" for a, b in MODE_PAIRS]
)
def test_dial_mode_switch_while_running(current: DialMode, new: DialMode) -> None:
    group = group_in(ACTIVE)
    if current == DialMode.NONE:
        with pytest.raises(InvalidParameter) as started:
            group.apply(Request.START, Actor.CLIENT, NOW, DialingChange(current))
        assert started.value.parameter == "dialmode"
        assert group.status == ACTIVE
        return
    group.apply(
        Request.START,
        Actor.CLIENT,
        NOW,
        DialingChange(current, OptimizeBy.BUSY_FACTOR, 80),
    )
    running = group.dialing
    change = DialingChange(new, OptimizeBy.AVERAGE_WAITING_TIME, 12)

    if new == DialMode.NONE:
        with pytest.raises(InvalidParameter) as invalid:
            group.apply(Request.SET_DIAL_MODE, Actor.CLIENT, LATER, change)
        assert invalid.value.parameter == "dialmode"
    elif switch_allowed(current, new):
        expected = (
            Dialing(new, OptimizeBy.AVERAGE_WAITING_TIME, 12) if new in PREDICTIVE else Dialing(new)
        )
        assert group.apply(Request.SET_DIAL_MODE, Actor.CLIENT, LATER, change) == [
            Transition(Action.SET_DIAL_MODE, Actor.CLIENT, RUNNING, expected, LATER)
        ]
        assert group.dialing == expected
        return
    else:
        with pytest.raises(RequestRefused) as refused:
            group.apply(Request.SET_DIAL_MODE, Actor.CLIENT, LATER, change)
        assert "stop" in refused.value.reason
    assert group.status == RUNNING
    assert group.dialing == running


# -- DialingChange.resolve ------------------------------------------------------------


def test_an_empty_change_keeps_the_current_dialing() -> None:
    current = Dialing(DialMode.PREDICTIVE, OptimizeBy.OVERDIAL_RATE, 4)
    assert DialingChange().resolve(current, CONFIGURED) == current


def test_a_new_goal_keeps_the_current_method() -> None:
    current = Dialing(DialMode.PREDICTIVE, OptimizeBy.OVERDIAL_RATE, 4)
    assert DialingChange(optimize_goal=2).resolve(current, CONFIGURED) == Dialing(
        DialMode.PREDICTIVE, OptimizeBy.OVERDIAL_RATE, 2
    )


def test_a_new_mode_keeps_the_current_method_and_goal() -> None:
    current = Dialing(DialMode.PREDICTIVE, OptimizeBy.OVERDIAL_RATE, 4)
    assert DialingChange(DialMode.PREDICTIVE_WITH_SEIZING).resolve(current, CONFIGURED) == (
        Dialing(DialMode.PREDICTIVE_WITH_SEIZING, OptimizeBy.OVERDIAL_RATE, 4)
    )


def test_a_new_method_without_goal_takes_the_configured_goal_of_that_method() -> None:
    current = Dialing(DialMode.PREDICTIVE, OptimizeBy.OVERDIAL_RATE, 4)
    assert DialingChange(optimize_by=OptimizeBy.BUSY_FACTOR).resolve(current, CONFIGURED) == (
        Dialing(DialMode.PREDICTIVE, OptimizeBy.BUSY_FACTOR, 85)
    )


def test_a_goal_is_never_carried_over_to_another_method() -> None:
    change = DialingChange(optimize_by=OptimizeBy.AVERAGE_DISTRIBUTION_TIME)

    with pytest.raises(InvalidParameter) as info:
        change.resolve(CONFIGURED, CONFIGURED)

    assert info.value.parameter == "optimizegoal"
    assert str(info.value).startswith("optimizegoal:")


def test_entering_a_predictive_mode_takes_the_configured_optimization() -> None:
    current = Dialing(DialMode.PROGRESSIVE)
    assert DialingChange(DialMode.PREDICTIVE).resolve(current, CONFIGURED) == CONFIGURED


def test_entering_a_predictive_mode_without_any_known_method_names_optimizeby() -> None:
    progressive = Dialing(DialMode.PROGRESSIVE)

    with pytest.raises(InvalidParameter) as info:
        DialingChange(DialMode.PREDICTIVE).resolve(progressive, progressive)

    assert info.value.parameter == "optimizeby"


def test_a_new_method_without_any_known_goal_names_optimizegoal() -> None:
    progressive = Dialing(DialMode.PROGRESSIVE)

    with pytest.raises(InvalidParameter) as info:
        DialingChange(DialMode.PREDICTIVE, OptimizeBy.OVERDIAL_RATE).resolve(
            progressive, progressive
        )

    assert info.value.parameter == "optimizegoal"


def test_a_non_predictive_mode_drops_the_optimization() -> None:
    change = DialingChange(DialMode.POWER, OptimizeBy.BUSY_FACTOR, 90)
    assert change.resolve(CONFIGURED, CONFIGURED) == Dialing(DialMode.POWER)


# -- validate_dialing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "goal", "valid"),
    [
        (OptimizeBy.BUSY_FACTOR, 1, True),
        (OptimizeBy.BUSY_FACTOR, 100, True),
        (OptimizeBy.BUSY_FACTOR, 0, False),
        (OptimizeBy.BUSY_FACTOR, 101, False),
        (OptimizeBy.BUSY_FACTOR, -5, False),
        (OptimizeBy.OVERDIAL_RATE, 1, True),
        (OptimizeBy.OVERDIAL_RATE, 100, True),
        (OptimizeBy.OVERDIAL_RATE, 0, False),
        (OptimizeBy.OVERDIAL_RATE, 101, False),
        (OptimizeBy.AVERAGE_WAITING_TIME, 1, True),
        (OptimizeBy.AVERAGE_WAITING_TIME, 3600, True),
        (OptimizeBy.AVERAGE_WAITING_TIME, 101, True),
        (OptimizeBy.AVERAGE_WAITING_TIME, 0, False),
        (OptimizeBy.AVERAGE_WAITING_TIME, 3601, False),
        (OptimizeBy.AVERAGE_DISTRIBUTION_TIME, 1, True),
        (OptimizeBy.AVERAGE_DISTRIBUTION_TIME, 3600, True),
        (OptimizeBy.AVERAGE_DISTRIBUTION_TIME, 0, False),
        (OptimizeBy.AVERAGE_DISTRIBUTION_TIME, 3601, False),
    ],
)
def test_goal_bounds(method: OptimizeBy, goal: int, valid: bool) -> None:
    dialing = Dialing(DialMode.PREDICTIVE, method, goal)
    if valid:
        assert validate_dialing(dialing) == dialing
    else:
        with pytest.raises(InvalidParameter) as info:
            validate_dialing(dialing)
        assert info.value.parameter == "optimizegoal"
        assert str(goal) in str(info.value)


def test_a_predictive_mode_needs_a_method() -> None:
    with pytest.raises(InvalidParameter) as info:
        validate_dialing(Dialing(DialMode.PREDICTIVE, OptimizeBy.NONE, 80))
    assert info.value.parameter == "optimizeby"


def test_mode_none_is_refused() -> None:
    with pytest.raises(InvalidParameter) as info:
        validate_dialing(Dialing(DialMode.NONE))
    assert info.value.parameter == "dialmode"


@pytest.mark.parametrize("mode", [m for m in DialMode if m not in PREDICTIVE and m != 0])
def test_validating_a_non_predictive_mode_clears_its_optimization(mode: DialMode) -> None:
    assert validate_dialing(Dialing(mode, OptimizeBy.BUSY_FACTOR, 500)) == Dialing(mode)


def test_a_start_with_an_invalid_goal_leaves_the_group_active() -> None:
    group = group_in(ACTIVE)

    with pytest.raises(InvalidParameter):
        group.apply(
            Request.START,
            Actor.CLIENT,
            NOW,
            DialingChange(DialMode.PREDICTIVE, OptimizeBy.BUSY_FACTOR, 101),
        )

    assert group.status == ACTIVE
    assert group.dialing is None


# -- GSW_AUTO_COMPLETION ---------------------------------------------------------------


@pytest.mark.parametrize("default", [False, True])
def test_load_without_the_parameter_takes_the_configured_default(default: bool) -> None:
    group = new_group(default_auto_complete=default)
    group.apply(Request.LOAD, Actor.CLIENT, NOW)
    assert group.auto_complete is default


@pytest.mark.parametrize(("default", "requested"), [(False, True), (True, False)])
def test_load_with_the_parameter_overrides_the_default(default: bool, requested: bool) -> None:
    group = new_group(default_auto_complete=default)
    group.apply(Request.LOAD, Actor.CLIENT, NOW, auto_complete=requested)
    assert group.auto_complete is requested


@pytest.mark.parametrize("requested", [True, False])
def test_start_sets_auto_completion(requested: bool) -> None:
    group = new_group(default_auto_complete=not requested)
    group.apply(Request.LOAD, Actor.CLIENT, NOW)

    group.apply(Request.START, Actor.CLIENT, NOW, auto_complete=requested)

    assert group.auto_complete is requested


@pytest.mark.parametrize("requested", [True, False])
def test_set_dialing_mode_sets_auto_completion(requested: bool) -> None:
    group = new_group(default_auto_complete=not requested)
    group.apply(Request.LOAD, Actor.CLIENT, NOW)
    group.apply(Request.START, Actor.CLIENT, NOW)

    group.apply(
        Request.SET_DIAL_MODE,
        Actor.CLIENT,
        LATER,
        DialingChange(DialMode.PROGRESSIVE),
        auto_complete=requested,
    )

    assert group.auto_complete is requested


def test_a_reload_starts_again_from_the_configured_default() -> None:
    group = new_group(default_auto_complete=False)
    group.apply(Request.LOAD, Actor.CLIENT, NOW, auto_complete=True)
    group.apply(Request.UNLOAD, Actor.CLIENT, NOW)

    group.apply(Request.LOAD, Actor.CLIENT, LATER)

    assert group.auto_complete is False
