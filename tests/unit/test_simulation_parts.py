"""The parts of the dialing simulation (ocsd.core.simulation), each on its own.

The whole simulation is tested through GroupSimulation (test_simulation*.py); these tests
pin down the rules of the parts that have some: the order in which records are taken
and given back, the compaction of the redial queues, the busy-time integral, the event
order, the statistics window, the young calls and the pacing's learning and gain.
"""

from __future__ import annotations

import copy
import math
import random
from heapq import heappop

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocsd.core.genesys import DialMode, OptimizeBy
from ocsd.core.lifecycle import Dialing
from ocsd.core.simulation import GroupModel, GroupSimulation, ListModel
from ocsd.core.simulation.counters import Counters
from ocsd.core.simulation.events import ABANDON, LIVE, RESULT, WAKE, EventQueue
from ocsd.core.simulation.pacing import (
    CONTROL_STEP,
    G_START,
    HISTORY_LENGTH,
    LEARN_TIME,
    PRIOR_ATTEMPTS,
    PRIOR_HIT_RATIO,
    Pacing,
    YoungCalls,
    optimization,
)
from ocsd.core.simulation.records import COMPACT, Records
from ocsd.core.simulation.servers import ServerPool
from ocsd.core.simulation.window import StatisticsWindow

# -- records ---------------------------------------------------------------------------


def records(*sizes: int, max_attempts: int = 3, redial_delay: float = 10.0) -> Records:
    return Records(
        [
            ListModel(f"L{i}", i, records=n, max_attempts=max_attempts, redial_delay=redial_delay)
            for i, n in enumerate(sizes)
        ]
    )


def test_due_redials_go_first_and_the_lists_take_turns() -> None:
    r = records(2, 1)
    r.fresh[0] -= 1
    r.failed(0.0, 0, 1)  # list 0's first record: redial at 10 s, attempt 2
    taken = [r.take(5.0) for _ in range(4)]
    assert taken == [(0, 1), (1, 1), None, None]  # the redial is not due yet
    assert r.take(10.0) == (0, 2)
    assert r.take(10.0) is None and r.remaining() == 3


def test_the_last_failed_attempt_finishes_the_record() -> None:
    r = records(1, max_attempts=2)
    r.fresh[0] = 0
    r.failed(0.0, 0, 1)
    assert (r.waiting(0), r.finished) == (1, [0])
    assert r.take_redial(0, 10.0) == 2
    r.failed(20.0, 0, 2)
    assert (r.waiting(0), r.finished, r.remaining()) == (0, [1], 0)
    assert r.next_due() == math.inf


def test_a_record_given_back_is_first_in_line() -> None:
    r = records(5)
    assert r.take(0.0) == (0, 1)
    r.give_back(0.0, 0, 1)  # a fresh record goes back to the fresh ones
    assert r.fresh == [5]
    for failed_at in (0.0, 1.0, 2.0):  # three first attempts fail: redials due at 10, 11, 12
        r.failed(failed_at, 0, 1)
    assert list(r.redial_due[0]) == [10.0, 11.0, 12.0]
    assert r.take_redial(0, 20.0) == 2
    r.give_back(15.0, 0, 2)  # back into the slot it came from, due when given back
    assert (r.head, list(r.redial_due[0])) == ([0], [15.0, 11.0, 12.0])
    r.give_back(16.0, 0, 3)  # no slot free at the head: it is inserted before it
    assert list(r.redial_due[0]) == [16.0, 15.0, 11.0, 12.0]
    assert list(r.redial_attempt[0]) == [3, 2, 2, 2]
    assert [r.take_redial(0, 20.0) for _ in range(5)] == [3, 2, 2, 2, 0]


def test_the_redial_queue_is_compacted_once_half_is_consumed() -> None:
    r = records(0)
    for k in range(3 * COMPACT):
        r.failed(float(k), 0, 1 + k % 2)  # due at 10 + k, attempt 2 or 3
    length = 3 * COMPACT
    for k in range(length):
        assert r.take_redial(0, 1e9) == 2 + k % 2
        consumed = k + 1
        if consumed < 3 * COMPACT // 2:
            assert (r.head[0], len(r.redial_due[0])) == (consumed, length)
        elif consumed == 3 * COMPACT // 2:  # half of the array, and at least COMPACT
            assert (r.head[0], len(r.redial_due[0])) == (0, length - consumed)
            assert r.redial_due[0][0] == 10.0 + consumed  # the order is kept
    assert r.waiting(0) == 0 and r.take_redial(0, 1e9) == 0


def test_next_due_is_the_earliest_head() -> None:
    r = records(0, 0, redial_delay=100.0)
    assert r.next_due() == math.inf
    r.failed(5.0, 1, 1)
    r.failed(3.0, 0, 1)
    r.failed(1.0, 1, 1)  # later in list 1's queue than the one at 5 s: not its head
    assert r.next_due() == 103.0
    r.take_redial(0, 103.0)
    assert r.next_due() == 105.0


# -- servers and events ----------------------------------------------------------------


def test_the_busy_time_integral() -> None:
    pool = ServerPool(3, start=5.0)
    pool.take(10.0)
    pool.take(20.0)
    pool.release(30.0)
    assert (pool.occupied, pool.busy) == (1, 1)
    assert pool.busy_seconds(40.0) == 10 + 2 * 10 + 10
    assert pool.busy_seconds(30.0) == 30.0  # no change since: the integral is linear


def test_talking_agents_drop_the_talks_that_ended() -> None:
    pool = ServerPool(3, start=0.0)
    pool.talk_ends.extend([5.0, 9.0, 7.0])
    pool.talk_ends.sort()
    assert pool.talking(6.0) == 2 and pool.talk_ends == [7.0, 9.0]
    assert pool.talking(9.0) == 0


def test_events_of_equal_time_pop_in_the_order_they_were_pushed() -> None:
    events = EventQueue()
    numbers = [
        events.push(2.0, RESULT, 0, 1, 0.5),
        events.push(1.0, WAKE, 0, 0, 0.0),
        events.push(2.0, LIVE, 1, 2, 0.25),  # a smaller kind: still after the RESULT
        events.push(2.0, ABANDON, 0, 1, 1.75),
    ]
    assert numbers == [1, 2, 3, 4] and events.seq == 4
    popped = [heappop(events.heap) for _ in range(4)]
    assert [(e[0], e[1], e[2]) for e in popped] == [
        (1.0, 2, WAKE),
        (2.0, 1, RESULT),
        (2.0, 3, LIVE),
        (2.0, 4, ABANDON),
    ]


# -- the statistics window -------------------------------------------------------------


def window_parts(agents: int = 2) -> tuple[StatisticsWindow, ServerPool, Counters, Records]:
    lists = [ListModel("L", 2, records=1000)]
    pool, counts, recs = ServerPool(agents, 0.0), Counters(1), Records(lists)
    return StatisticsWindow(lists, 0.0, 60.0, pool, counts, recs), pool, counts, recs


def test_the_window_covers_its_last_sixty_buckets() -> None:
    """One attempt a second, live every fourth, a record finished every second one."""
    window, _pool, counts, recs = window_parts()
    window.started(0.0, agents=True, preview=False)
    for s in range(1, 121):
        t = float(s)
        if t >= window.next_roll:
            window.roll(t)  # before the event: the counters hold since the last one
        counts.finished_attempts[0] += 1
        counts.live_answers[0] += s % 4 == 0
        recs.finished[0] += s % 2 == 0
    stats = window.read(120.0)
    # the base is boundary 61 (1 s buckets): attempts at 61..120, lives at 64, 68, ..., 120
    assert window.ring.last == 120 and window.data[window.ring.base] == 61.0
    assert stats.hit_ratio == 15 / 60
    assert stats.time_to_complete == (1000 - 60) * 59.0 / 30  # remaining x span / finished
    assert stats.busy_factor == 0.0 and stats.overdial_rate == 0.0
    assert stats.calling_lists[0].hit_ratio == stats.hit_ratio


def test_the_window_measures_busy_agents_and_overdials() -> None:
    window, pool, counts, _recs = window_parts(agents=4)
    assert window.read(0.0).busy_factor is None  # not started: no agent logged in
    window.started(0.0, agents=True, preview=False)
    pool.take(0.0)
    pool.take(0.0)  # two of four agents busy from the start
    counts.live_answers[0] = 10
    counts.abandoned, counts.dropped = 2, 1
    window.roll(30.0)
    stats = window.read(30.0)  # the first 30 s: the window is not full yet
    assert stats.busy_factor == 0.5 and stats.overdial_rate == 0.3
    window.started(30.0, agents=True, preview=True)  # a preview mode cannot overdial
    assert window.read(30.0).overdial_rate == 0.0
    assert window.first_start == 0.0  # agents stay logged in from the first start
    window.started(30.0, agents=False, preview=False)  # IVR ports: no busy factor
    assert window.read(30.0).busy_factor is None


def test_a_long_gap_records_only_the_last_window() -> None:
    window, _pool, counts, _recs = window_parts()
    window.started(0.0, agents=True, preview=False)
    counts.finished_attempts[0] = 7  # all before the gap
    window.roll(10_000.5)
    assert window.ring.last == 10_000 and window.next_roll == 10_001.0
    assert window.data[window.ring.base] == 9941.0  # boundaries 9941..10000 only
    assert window.read(10_000.5).hit_ratio is None  # nothing happened in the window


# -- young calls and pacing --------------------------------------------------------------


def young_calls() -> YoungCalls:
    return YoungCalls([ListModel("L", 2, no_answer_timeout=30.0)], start=0.0)


def dial(young: YoungCalls, second: int, calls: int) -> None:
    young.count += calls
    young.by_second[second % young.size] += calls
    young.dialed_by_second[second % young.size] += calls


def test_young_calls_age_into_the_cohort() -> None:
    young = young_calls()
    assert young.span == 31.0  # the longest no-answer timeout + the transfer delay
    dial(young, 0, 3)
    dial(young, 5, 2)
    young.count -= 1  # one of second 0's calls was answered live
    young.by_second[0] -= 1
    young.live_by_second[0] += 1
    assert young.age(20.0) == 4 and young.cohort_attempts == 0  # all still young
    assert young.age(33.0) == 2  # second 0 is older than the span now, second 5 not
    assert (young.cohort_attempts, young.cohort_lives, young.aged) == (3, 1, 1)
    young.cancel(5.5)
    young.cancel(0.5)  # aged out already: nothing to take back
    assert young.count == 1 and young.dialed_by_second[5] == 1


def test_the_chance_to_be_live_is_learned_by_age() -> None:
    young = young_calls()
    young.ended_at_age[3] = 40
    young.live_at_age[3] = 20
    young.learn_chances(0.0)  # too few attempts yet: the priors stay
    assert young.live_chance[0] == PRIOR_HIT_RATIO
    young.ended_at_age[10] = 60  # none of them live
    young.learn_chances(0.0)
    assert list(young.live_chance[:5]) == [0.2] * 4 + [0.0]
    dial(young, 97, 5)  # five calls 2 s old at 99 s, three 0 s old
    dial(young, 99, 3)
    young.aged = 90
    assert young.expected_lives(99.0) == pytest.approx(5 * 0.2 + 3 * 0.2)


def pacing(cohort: int = HISTORY_LENGTH, agents: int = 10) -> tuple[Pacing, ServerPool]:
    young = young_calls()
    young.cohort_attempts = cohort
    pool = ServerPool(agents, 0.0)
    return Pacing(young, Counters(1), Records([ListModel("L", 2)]), pool, 0.0), pool


def test_the_optimization_goal() -> None:
    predictive = Dialing(DialMode.PREDICTIVE, OptimizeBy.OVERDIAL_RATE, 3)
    assert optimization(predictive, True) == (OptimizeBy.OVERDIAL_RATE, 0.03)
    waiting = Dialing(DialMode.PREDICTIVE, OptimizeBy.AVERAGE_WAITING_TIME, 20)
    assert optimization(waiting, True) == (OptimizeBy.AVERAGE_WAITING_TIME, 20.0)
    assert optimization(Dialing(DialMode.PREDICTIVE), True) == (OptimizeBy.BUSY_FACTOR, 0.85)
    assert optimization(Dialing(DialMode.PROGRESSIVE), False)[0] == OptimizeBy.NONE
    p, pool = pacing(agents=20)
    p.configure(OptimizeBy.AVERAGE_DISTRIBUTION_TIME, 5.0, pool, 0.0)
    assert (p.abandon_grace, p.small_group, p.at_least_progressive) == (20.0, True, True)
    p.configure(OptimizeBy.BUSY_FACTOR, 0.85, ServerPool(21, 0.0), 0.0)
    assert (p.abandon_grace, p.small_group, p.at_least_progressive) == (2.0, False, False)


def test_the_gain_rises_while_agents_idle_below_the_goal() -> None:
    p, pool = pacing()
    p.configure(OptimizeBy.BUSY_FACTOR, 0.85, pool, 0.0)
    p.control(CONTROL_STEP)  # nobody busy for a step
    assert p.gain > G_START
    assert p.gain_over_hit_ratio == p.gain / p.hit_ratio
    assert p.next_control == 2 * CONTROL_STEP


def test_the_gain_falls_above_the_goal_and_does_not_wind_up() -> None:
    p, pool = pacing()
    p.configure(OptimizeBy.BUSY_FACTOR, 0.85, pool, 0.0)
    p._records.starved = True  # the lists cannot keep up: no rise
    p.control(CONTROL_STEP)
    assert p.log_gain == math.log(G_START)
    for _ in range(pool.capacity):  # every agent busy: above the goal, it falls
        pool.take(CONTROL_STEP)
    p.control(2 * CONTROL_STEP)
    assert p.gain < G_START
    learning, pool = pacing(cohort=HISTORY_LENGTH - 1)
    learning.control(CONTROL_STEP)  # too little history: the gain holds
    assert learning.log_gain == math.log(G_START)


def test_the_hit_ratio_is_learned_from_the_cohort() -> None:
    p, _pool = pacing(cohort=0)
    p._young.cohort_attempts, p._young.cohort_lives = 100, 50
    p.control(CONTROL_STEP)
    decay = math.exp(-CONTROL_STEP / LEARN_TIME)
    prior_lives = PRIOR_ATTEMPTS * PRIOR_HIT_RATIO
    expected = (prior_lives * decay + 50) / (PRIOR_ATTEMPTS * decay + 100)
    assert p.hit_ratio == pytest.approx(expected)
    p.control(2 * CONTROL_STEP)  # nothing new: it decays towards what it saw
    assert p.hit_ratio == pytest.approx(expected)


# -- the dialer ------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    fresh=st.lists(st.integers(0, 3), min_size=1, max_size=3),
    redials=st.lists(st.integers(0, 3 * COMPACT), min_size=3, max_size=3),  # per list
    spacing=st.sampled_from([0.0, 0.1, 0.25]),  # s between the due times of a list's redials
    turn=st.integers(0, 2),
    calls=st.lists(st.integers(1, 3 * COMPACT), min_size=1, max_size=4),
)
def test_the_dialer_takes_records_as_records_take_says(
    fresh: list[int], redials: list[int], spacing: float, turn: int, calls: list[int]
) -> None:
    """Dialer.dial writes the record-taking rule out inline: the same as Records.take,
    compaction of the redial queues included."""
    group = GroupModel(
        "G", 1, lists=tuple(ListModel(f"L{i}", 2 + i, records=k) for i, k in enumerate(fresh))
    )
    sim = GroupSimulation(group, random.Random(1))
    recs = sim._records
    for li, count in enumerate(redials[: len(fresh)]):
        for k in range(count):  # due from 0 s on (the default delay is 900 s)
            recs.failed(0.0, li, 1 + k % 2)
            recs.redial_due[li][-1] = k * spacing  # at 10 s: all, or the first 40 or 100
    recs.turn = turn % len(fresh)
    expected = copy.deepcopy(recs)
    taken: list[tuple[int, int]] = []
    for n in calls:
        before = len(taken)
        for _ in range(n):
            record = expected.take(10.0)
            if record is None:
                break
            taken.append(record)
        sim._dialer.dial(10.0, n)
        assert recs.starved == (len(taken) - before < n)
        assert (recs.fresh, recs.head, recs.turn) == (expected.fresh, expected.head, expected.turn)
        assert recs.redial_due == expected.redial_due
        assert recs.redial_attempt == expected.redial_attempt
    dialed = [e for e in sim._events.heap if e[2] in (LIVE, RESULT)]
    assert [(e[3], e[4]) for e in sorted(dialed, key=lambda e: e[1])] == taken
    assert sim.totals().dial_attempts == len(taken)


def test_a_starved_dialer_wakes_up_when_the_next_redial_is_due() -> None:
    group = GroupModel("G", 1, lists=(ListModel("L", 2, records=1, redial_delay=60.0),))
    sim = GroupSimulation(group, random.Random(1))
    sim._records.failed(0.0, 0, 1)  # a redial due at 60 s; the one fresh record is left
    sim._dialer.dial(5.0, 3)  # one record ready of three wanted
    wakes = [e for e in sim._events.heap if e[2] == WAKE]
    assert [e[0] for e in wakes] == [60.0] and sim._dialer.wake_at == 60.0
    assert sim._records.starved
    sim._dialer.dial(6.0, 1)  # still starved: no second wake for the same redial
    assert len([e for e in sim._events.heap if e[2] == WAKE]) == 1
