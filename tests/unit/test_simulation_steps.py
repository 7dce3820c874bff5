"""Lazy advancing (ocsd.core.simulation): one big step gives the state many small steps give.

The daemon advances a group's simulation only when it reads it (a notification, a
request), with large and irregular steps, so the outcome must not depend on how
simulated time was cut into steps: same seed, same model, same dialing changes at the
same instants, therefore the same state, to the bit.
"""

from __future__ import annotations

import random
from array import array
from collections import deque
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocsd.core.genesys import DialMode, OptimizeBy
from ocsd.core.lifecycle import Dialing
from ocsd.core.simulation import GroupModel, GroupSimulation, ListModel
from ocsd.core.statistics import GroupStatistics

DIALINGS = [
    Dialing(DialMode.PREDICTIVE, OptimizeBy.BUSY_FACTOR, 85),
    Dialing(DialMode.PREDICTIVE, OptimizeBy.OVERDIAL_RATE, 3),
    Dialing(DialMode.PREDICTIVE, OptimizeBy.AVERAGE_WAITING_TIME, 20),
    Dialing(DialMode.PREDICTIVE, OptimizeBy.AVERAGE_DISTRIBUTION_TIME, 3),
    Dialing(DialMode.PREDICTIVE_WITH_SEIZING, OptimizeBy.BUSY_FACTOR, 80),
    Dialing(DialMode.PREDICTIVE_GVP, OptimizeBy.OVERDIAL_RATE, 5),
    Dialing(DialMode.PROGRESSIVE),
    Dialing(DialMode.PROGRESSIVE_GVP),
    Dialing(DialMode.POWER),
    Dialing(DialMode.PREVIEW),
    Dialing(DialMode.PUSH_PREVIEW),
]

#: What happens at a change instant: a dialing, a stop (None) or a force unload ("drop").
Change = Dialing | None | str


@dataclass(frozen=True)
class Scenario:
    group: GroupModel
    seed: int
    window: float
    start: float
    changes: tuple[tuple[float, Change], ...]  # (offset from start, change), offsets rising
    end: float  # offset from start


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    nlists = draw(st.integers(1, 3))
    lists = tuple(
        ListModel(
            f"L{i}",
            10 + i,
            records=draw(st.sampled_from([300, 3000, 40, 0])),
            live_answer_rate=draw(st.sampled_from([0.1, 0.3, 0.6])),
            max_attempts=draw(st.integers(1, 3)),
            redial_delay=draw(st.sampled_from([0.0, 7.5, 60.0, 900.0])),
            no_answer_timeout=draw(st.sampled_from([20.0, 30.0, 45.5])),
        )
        for i in range(nlists)
    )
    group = GroupModel(
        "G",
        1,
        lists=lists,
        agents=draw(st.sampled_from([10, 3, 25, 1, 0])),
        ports=draw(st.sampled_from([30, 5, 0])),
        talk_time=draw(st.sampled_from([20.0, 180.0])),
        wrap_up_time=draw(st.sampled_from([0.0, 30.0])),
    )
    first = draw(st.sampled_from(DIALINGS))
    end = draw(st.one_of(st.sampled_from([1800.0, 3600.0]), st.floats(60.0, 3600.0)))
    later = draw(
        st.lists(
            st.tuples(
                st.floats(0.0, 1.0).map(lambda share: round(share * end, 3)),
                st.one_of(st.sampled_from(DIALINGS), st.none(), st.just("drop")),
            ),
            max_size=3,
        )
    )
    changes = ((0.0, first), *sorted(later, key=lambda change: change[0]))
    return Scenario(
        group=group,
        seed=draw(st.integers(0, 2**32 - 1)),
        window=draw(st.sampled_from([300.0, 60.0, 7.0])),
        start=draw(st.sampled_from([0.0, 12.25, 86_400.0])),
        changes=changes,
        end=end,
    )


def apply(sim: GroupSimulation, change: Change, now: float) -> None:
    if change == "drop":
        sim.drop_calls(now)
    else:
        assert not isinstance(change, str)
        sim.set_dialing(change, now)


def run_big(s: Scenario) -> GroupSimulation:
    """Straight from change to change, then to the end."""
    sim = GroupSimulation(s.group, random.Random(s.seed), start=s.start, window=s.window)
    for offset, change in s.changes:
        if offset <= s.end:
            apply(sim, change, s.start + offset)
    sim.advance(s.start + s.end)
    return sim


MAX_STEPS = 1500


def run_small(s: Scenario, steps: list[float], reads: list[bool]) -> GroupSimulation:
    """The same in many small steps, reading the simulation now and then (as the daemon)."""
    sim = GroupSimulation(s.group, random.Random(s.seed), start=s.start, window=s.window)
    changes = [(s.start + offset, change) for offset, change in s.changes if offset <= s.end]
    end = s.start + s.end
    t = s.start
    i = 0
    while True:
        while changes and changes[0][0] <= t:
            when, change = changes.pop(0)
            sim.advance(when)
            apply(sim, change, when)
        if t >= end:
            break
        sim.advance(t)
        if reads[i % len(reads)]:
            sim.statistics(t)  # reading must not change what happens next
            sim.latest_statistics()
            assert sim.calls_in_progress >= 0
        # at most MAX_STEPS steps (tiny steps are drawn too), then the rest in one
        t = min(end, t + steps[i % len(steps)]) if i < MAX_STEPS else end
        if changes and changes[0][0] < t:
            t = changes[0][0]
        i += 1
    sim.advance(end)
    return sim


def normal(value: Any, now: float) -> Any:
    """A comparable image of the simulation's state (whatever containers hold it)."""
    if isinstance(value, GroupSimulation | type(None) | int | float | str | bool):
        if isinstance(value, GroupSimulation):
            return normal_object(value, now)
        return value
    if isinstance(value, deque | list | tuple | array):
        return [normal(item, now) for item in value]
    if isinstance(value, dict):
        return [(key, normal(item, now)) for key, item in value.items()]
    if hasattr(type(value), "__slots__") and not hasattr(value, "__dataclass_fields__"):
        return normal_object(value, now)
    return value


def normal_object(obj: Any, now: float) -> dict[str, Any]:
    names = [n for cls in type(obj).__mro__ for n in getattr(cls, "__slots__", ())]
    names += list(getattr(obj, "__dict__", {}))
    image: dict[str, Any] = {}
    for name in names:
        if name == "_rand":  # a bound method of the generator: compared by its state
            continue
        value = getattr(obj, name)
        if name == "talk_ends":  # popped lazily: only the talks still running matter
            value = sorted(end for end in value if end > now)
        elif name == "heap":
            value = sorted(value)
        image[name] = normal(value, now)
    return image


def observable(sim: GroupSimulation) -> tuple[Any, ...]:
    now = sim.now
    return (
        now,
        sim.calls_in_progress,
        sim.exhausted,
        sim.records_remaining,
        sim.agents_ready,
        sim.agents_busy,
        sim.totals(),
        sim.statistics(now),
    )


step_sizes = st.lists(
    st.one_of(
        st.sampled_from([0.25, 1.0, 5.0, 10.0]),
        st.integers(1, 120).map(float),
        st.floats(0.001, 300.0, allow_nan=False),
    ),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenario=scenarios(), steps=step_sizes, reads=st.lists(st.booleans(), min_size=1))
def test_one_big_step_equals_many_small_steps(
    scenario: Scenario, steps: list[float], reads: list[bool]
) -> None:
    big = run_big(scenario)
    small = run_small(scenario, steps, reads)
    assert observable(big) == observable(small)
    assert normal_object(big, big.now) == normal_object(small, small.now)


def same_statistics(a: GroupStatistics, b: GroupStatistics) -> bool:
    """Equal, and equal in repr too (so 0.0 and -0.0, or 1 and 1.0, are told apart)."""
    return a == b and repr(a) == repr(b)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenario=scenarios(), steps=step_sizes)
def test_latest_statistics_reads_the_last_advance_and_changes_nothing(
    scenario: Scenario, steps: list[float]
) -> None:
    """After any advance, stop, start or drop: latest_statistics() is statistics(now), and
    neither call changes the state (all of it, part by part), however often it is called."""
    s = scenario
    sim = GroupSimulation(s.group, random.Random(s.seed), start=s.start, window=s.window)
    changes = [(s.start + offset, change) for offset, change in s.changes if offset <= s.end]
    end = s.start + s.end
    t = s.start
    for i in range(60):
        while changes and changes[0][0] <= t:
            when, change = changes.pop(0)
            apply(sim, change, when)
        sim.advance(t)
        image = normal_object(sim, sim.now)
        now, totals, events = sim.now, sim.totals(), len(sim._events.heap)
        latest = [sim.latest_statistics() for _ in range(3)]
        assert (sim.now, sim.totals(), len(sim._events.heap)) == (now, totals, events)
        assert normal_object(sim, sim.now) == image
        assert all(same_statistics(stats, latest[0]) for stats in latest)
        assert same_statistics(latest[0], sim.statistics(now))
        assert normal_object(sim, sim.now) == image  # nothing was left to do at now
        if t >= end:
            break
        t = min(end, t + steps[i % len(steps)])


@pytest.mark.parametrize(
    "dialing",
    [d for d in DIALINGS if d.mode != DialMode.PREDICTIVE_GVP],
    ids=lambda d: f"{d.mode.name}-{d.optimize_by.name}",
)
def test_steps_of_a_quarter_second_equal_one_step(dialing: Dialing) -> None:
    """The daemon's former 0.25 s ticks against one step per notification (1-10 s)."""
    group = GroupModel("G", 1, lists=(ListModel("L", 2, records=2000),), agents=10)
    ticks = GroupSimulation(group, random.Random(11))
    lazy = GroupSimulation(group, random.Random(11))
    ticks.set_dialing(dialing, 0.0)
    lazy.set_dialing(dialing, 0.0)
    rng = random.Random(5)
    t = 0.0
    samples: list[tuple[GroupStatistics, GroupStatistics]] = []
    while t < 1800.0:
        t += rng.choice([1.0, 2.5, 7.0, 10.0, 60.0])
        while ticks.now + 0.25 <= t:
            ticks.advance(ticks.now + 0.25)
        samples.append((ticks.statistics(t), lazy.statistics(t)))
    assert all(a == b for a, b in samples)
    assert observable(ticks) == observable(lazy)


def test_a_long_idle_group_has_sane_statistics() -> None:
    """An hour of simulated time at once: the same as stepping, and plausible values."""
    group = GroupModel("G", 1, lists=(ListModel("L", 2, records=100_000),), agents=20)
    dialing = Dialing(DialMode.PREDICTIVE, OptimizeBy.BUSY_FACTOR, 85)
    lazy = GroupSimulation(group, random.Random(3))
    stepped = GroupSimulation(group, random.Random(3))
    for sim in (lazy, stepped):
        sim.set_dialing(dialing, 0.0)
        sim.statistics(5.0)
    for second in range(6, 3601):
        stepped.advance(float(second))
    stats = lazy.statistics(3600.0)  # the first read after an hour
    assert stats == stepped.statistics(3600.0)
    assert stats.busy_factor is not None and abs(stats.busy_factor - 0.85) < 0.1
    assert stats.hit_ratio is not None and abs(stats.hit_ratio - 0.30) < 0.1
    assert stats.overdial_rate is not None and 0.0 <= stats.overdial_rate < 0.2
    assert stats.time_to_complete is not None and stats.time_to_complete > 3600.0
    assert stats.calling_lists[0].hit_ratio == stats.hit_ratio
    totals = lazy.totals()
    assert totals.agent_logged_seconds == 20 * 3600.0
    assert 0.7 < totals.agent_busy_seconds / totals.agent_logged_seconds < 0.95

    # stopped, then nobody reads it for an hour: logged in and idle, no attempt in the window
    lazy.set_dialing(None, 3600.0)
    idle = lazy.statistics(2 * 3600.0)
    assert idle.busy_factor == 0.0
    assert (idle.hit_ratio, idle.overdial_rate, idle.time_to_complete) == (None, None, None)
    assert lazy.calls_in_progress == 0 and lazy.agents_busy == 0
