"""The dialing simulation (ocsd.core.simulation): accuracy with fixed seeds, life cycle, statistics.

Every run here is pure simulated time driven by the test (a fake clock) and a seeded
random generator, so each figure below is reproducible to the bit.
"""

from __future__ import annotations

import math
import random
import statistics as st
from dataclasses import dataclass

import pytest

from ocsd.config.definitions import group_model, resolve_group
from ocsd.config.settings import load_settings
from ocsd.core.genesys import DialMode, OptimizeBy
from ocsd.core.lifecycle import Dialing
from ocsd.core.simulation import GroupModel, GroupSimulation, ListModel, Totals
from ocsd.core.statistics import GroupStatistics, SnapshotRing, ratio, time_to_complete

BUSY_85 = Dialing(DialMode.PREDICTIVE, OptimizeBy.BUSY_FACTOR, 85)
OVERDIAL_3 = Dialing(DialMode.PREDICTIVE, OptimizeBy.OVERDIAL_RATE, 3)
PROGRESSIVE = Dialing(DialMode.PROGRESSIVE)
HOUR = 3600.0
WARM_UP = 1800.0  # the first half hour is learning; "steady state" starts after it


def model(
    agents: int = 50,
    records: int = 100_000,
    lists: tuple[ListModel, ...] | None = None,
    ports: int = 30,
) -> GroupModel:
    lists = lists or (ListModel("L", 2, records=records),)
    return GroupModel("G", 1, lists=lists, agents=agents, ports=ports)


@dataclass
class Run:
    sim: GroupSimulation
    samples: list[tuple[float, GroupStatistics]]  # every 5 simulated minutes

    def steady(self, field: str) -> list[float]:
        values = [getattr(s, field) for t, s in self.samples if t > WARM_UP]
        return [v for v in values if v is not None]


def simulate(
    group: GroupModel, dialing: Dialing, hours: float, seed: int = 1, every: float = 300.0
) -> Run:
    sim = GroupSimulation(group, random.Random(seed))
    sim.set_dialing(dialing, 0.0)
    samples = []
    t = 0.0
    while t < hours * HOUR:
        t += every
        samples.append((t, sim.statistics(t)))
    return Run(sim, samples)


def window_totals(
    group: GroupModel, dialing: Dialing, start: float, end: float, seed: int = 1
) -> tuple[Totals, Totals]:
    """Totals between two times (steady state without the learning phase)."""
    sim = GroupSimulation(group, random.Random(seed))
    sim.set_dialing(dialing, 0.0)
    sim.advance(start)
    before = sim.totals()
    sim.advance(end)
    return before, sim.totals()


@pytest.fixture(scope="module")
def busy_run() -> Run:
    """50 agents, predictive, optimize by busy factor 85 %, three simulated hours."""
    return simulate(model(50), BUSY_85, hours=3)


# -- the model ---------------------------------------------------------------------------


def test_model_from_the_settings() -> None:
    settings = load_settings(None)
    group = group_model(settings, "Renewals@Retention Team")
    assert (group.name, group.dbid, group.agents) == ("Renewals@Retention Team", 101, 25)
    assert [lm.name for lm in group.lists] == ["Renewals_Q4", "Renewals_Lapsed"]
    assert group.lists[0].records == 12000
    assert group.dialing == BUSY_85
    assert group.records == 15500
    assert group_model(settings, "103").name == "Customer Survey@IVR"
    assert group.lists[0].no_answer_rate == pytest.approx(0.45)


def test_unknown_group_names_the_configured_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown campaign group 'Nope'.*Renewals@Retention"):
        resolve_group(load_settings(None), "Nope")


def test_model_rejects_impossible_rates() -> None:
    with pytest.raises(ValueError):
        ListModel("L", 2, live_answer_rate=0.7, answering_machine_rate=0.4)


# -- statistics before and without data -------------------------------------------------


def test_statistics_are_null_before_there_is_data() -> None:
    group = model(10, lists=(ListModel("A", 2, records=50), ListModel("B", 3, records=0)))
    sim = GroupSimulation(group, random.Random(1))
    stats = sim.statistics(0.0)
    assert (stats.busy_factor, stats.hit_ratio, stats.overdial_rate) == (None, None, None)
    assert stats.time_to_complete is None  # records left, no rate yet
    assert [(cl.name, cl.dbid) for cl in stats.calling_lists] == [("A", 2), ("B", 3)]
    assert stats.calling_lists[0].hit_ratio is None
    assert stats.calling_lists[1].time_to_complete == 0.0  # nothing left
    # time passing without dialing brings no data either
    assert sim.statistics(600.0) == stats
    # the first seconds of dialing: agent time, but no attempt finished yet
    sim.set_dialing(PROGRESSIVE, 600.0)
    early = sim.statistics(601.0)
    assert early.busy_factor == 0.0
    assert early.hit_ratio is None and early.overdial_rate is None


def test_a_group_without_records_is_exhausted_at_once() -> None:
    sim = GroupSimulation(model(10, records=0), random.Random(1))
    assert sim.exhausted
    assert sim.statistics(0.0).time_to_complete == 0.0


def test_statistics_are_non_negative_floats_or_null() -> None:
    for dialing in (BUSY_85, OVERDIAL_3, PROGRESSIVE, Dialing(DialMode.POWER)):
        run = simulate(model(20, records=3000), dialing, hours=1, every=60.0)
        for _t, stats in run.samples:
            values = [stats.busy_factor, stats.hit_ratio, stats.overdial_rate]
            values += [stats.time_to_complete]
            for cl in stats.calling_lists:
                values += [cl.hit_ratio, cl.time_to_complete]
            for value in values:
                assert value is None or (isinstance(value, float) and value >= 0.0)
            for value in values[:3]:
                assert value is None or value <= 1.0


# -- long-run accuracy (fixed seeds) -----------------------------------------------------


def test_hit_ratio_follows_the_live_answer_rate(busy_run: Run) -> None:
    totals = busy_run.sim.totals()
    assert totals.hit_ratio == pytest.approx(0.30, abs=0.02)
    assert st.mean(busy_run.steady("hit_ratio")) == pytest.approx(0.30, abs=0.02)


def test_hit_ratio_per_calling_list() -> None:
    lists = (
        ListModel("Low", 2, records=50_000, live_answer_rate=0.2),
        ListModel("High", 3, records=50_000, live_answer_rate=0.5, answering_machine_rate=0.1),
    )
    run = simulate(model(50, lists=lists), BUSY_85, hours=2)
    totals = run.sim.totals()
    for index, rate in ((0, 0.2), (1, 0.5)):
        long_run = totals.list_live_answers[index] / totals.list_finished_attempts[index]
        assert long_run == pytest.approx(rate, abs=0.02)
        values = [s.calling_lists[index].hit_ratio for t, s in run.samples if t > WARM_UP]
        assert st.mean(v for v in values if v is not None) == pytest.approx(rate, abs=0.04)


def test_predictive_holds_a_busy_factor_goal_of_85(busy_run: Run) -> None:
    values = busy_run.steady("busy_factor")  # 5-minute windows after the first half hour
    assert len(values) == 30
    assert st.mean(values) == pytest.approx(0.85, abs=0.01)
    inside = [v for v in values if abs(v - 0.85) <= 0.05]
    assert len(inside) >= 0.9 * len(values), values
    quarters = [st.mean(values[i : i + 3]) for i in range(0, 30, 3)]  # 15-minute averages
    assert all(abs(v - 0.85) <= 0.05 for v in quarters), quarters
    assert all(abs(v - 0.85) <= 0.1 for v in values), values


def test_predictive_keeps_the_overdial_rate_under_its_goal() -> None:
    before, after = window_totals(model(50), OVERDIAL_3, WARM_UP, 3 * HOUR)
    overdial = (after.abandoned - before.abandoned) / (after.live_answers - before.live_answers)
    assert overdial <= 0.03 + 0.01
    assert overdial >= 0.015  # it does spend its budget: more aggressive than progressive
    busy = (after.agent_busy_seconds - before.agent_busy_seconds) / (
        after.agent_logged_seconds - before.agent_logged_seconds
    )
    assert busy > 0.88


def test_progressive_barely_overdials() -> None:
    run = simulate(model(50), PROGRESSIVE, hours=1)
    totals = run.sim.totals()
    assert totals.live_answers > 500
    assert totals.overdial_rate is not None and totals.overdial_rate < 0.01


@pytest.mark.parametrize("mode", [DialMode.PREVIEW, DialMode.PUSH_PREVIEW])
def test_preview_modes_never_overdial(mode: DialMode) -> None:
    run = simulate(model(20), Dialing(mode), hours=1, every=60.0)
    assert run.sim.totals().abandoned == 0
    rates = [s.overdial_rate for t, s in run.samples if s.overdial_rate is not None]
    assert rates and set(rates) == {0.0}
    assert all(s.busy_factor is not None and s.busy_factor > 0 for t, s in run.samples[5:])


@pytest.mark.parametrize(
    "dialing",
    [
        Dialing(DialMode.PREDICTIVE_GVP, OptimizeBy.OVERDIAL_RATE, 3),
        Dialing(DialMode.PROGRESSIVE_GVP),
        Dialing(DialMode.POWER_GVP),
    ],
)
def test_gvp_modes_have_no_busy_factor(dialing: Dialing) -> None:
    run = simulate(model(0, ports=30), dialing, hours=0.5, every=60.0)
    last = run.samples[-1][1]
    assert last.busy_factor is None
    assert last.hit_ratio is not None and last.overdial_rate is not None
    assert run.sim.totals().connected > 50  # the IVR ports take the live answers
    assert run.sim.totals().busy_factor is None


def test_average_waiting_time_goal() -> None:
    dialing = Dialing(DialMode.PREDICTIVE, OptimizeBy.AVERAGE_WAITING_TIME, 30)
    before, after = window_totals(model(50), dialing, WARM_UP, 2 * HOUR)
    idle = (after.agent_logged_seconds - before.agent_logged_seconds) - (
        after.agent_busy_seconds - before.agent_busy_seconds
    )
    assert idle / (after.connected - before.connected) == pytest.approx(30, rel=0.1)


def test_average_distribution_time_goal() -> None:
    dialing = Dialing(DialMode.PREDICTIVE, OptimizeBy.AVERAGE_DISTRIBUTION_TIME, 2)
    before, after = window_totals(model(50), dialing, WARM_UP, 2 * HOUR)
    abandoned = after.abandoned - before.abandoned
    waited = after.queue_wait_seconds - before.queue_wait_seconds + 8.0 * abandoned  # grace 4x2
    answered = after.connected - before.connected + abandoned
    assert waited / answered == pytest.approx(2.0, rel=0.15)


def test_seizing_variant_connects_at_once_and_holds_its_goal() -> None:
    dialing = Dialing(DialMode.PREDICTIVE_WITH_SEIZING, OptimizeBy.BUSY_FACTOR, 85)
    run = simulate(model(50), dialing, hours=1.5)
    assert st.mean(run.steady("busy_factor")) == pytest.approx(0.85, abs=0.02)


@pytest.mark.parametrize("dialing", [BUSY_85, OVERDIAL_3], ids=["busy-factor", "overdial"])
def test_a_small_group_settles(dialing: Dialing) -> None:
    """10 agents: no swing between bursts and idling once it has learned."""
    sim = GroupSimulation(model(10), random.Random(3))
    sim.set_dialing(dialing, 0.0)
    busy: list[float] = []
    idle_stretch = longest_idle = all_idle = 0
    for second in range(1, int(HOUR) + 1):
        sim.advance(float(second))
        if second <= WARM_UP:
            continue
        ready = sim.agents_ready
        all_idle += ready == 10
        idle_stretch = idle_stretch + 1 if ready >= 5 else 0
        longest_idle = max(longest_idle, idle_stretch)
        if second % 300 == 0:
            value = sim.statistics(float(second)).busy_factor
            assert value is not None
            busy.append(value)
    assert len(busy) == 6
    assert st.pstdev(busy) < 0.07, busy  # 30 seeds: median 0.03, worst 0.08; swinging: > 0.1
    assert min(busy) > 0.72, busy
    assert all_idle == 0  # never every agent waiting at once
    assert longest_idle < 90  # half the agents never wait together for long


# -- determinism -------------------------------------------------------------------------


def test_same_seed_same_statistics_other_seed_other_statistics() -> None:
    def sequence(seed: int) -> list[GroupStatistics]:
        return [s for _t, s in simulate(model(20), BUSY_85, hours=0.5, seed=seed, every=60).samples]

    assert sequence(7) == sequence(7)
    assert sequence(7) != sequence(8)


# -- life cycle ----------------------------------------------------------------------------


def test_a_mode_switch_keeps_counts_and_learning() -> None:
    sim = GroupSimulation(model(30), random.Random(5))
    aggressive = Dialing(DialMode.PREDICTIVE, OptimizeBy.OVERDIAL_RATE, 15)
    sim.set_dialing(aggressive, 0.0)
    sim.advance(HOUR)
    before = sim.totals()
    assert before.abandoned > 0
    gain = sim.pacing_gain
    sim.set_dialing(PROGRESSIVE, HOUR)
    assert sim.totals() == before  # nothing reset
    just_after = sim.statistics(HOUR + 60)
    assert just_after.overdial_rate is not None and just_after.overdial_rate > 0  # same window
    sim.advance(HOUR + 60)  # calls dialed before the switch are answered by now
    settled = sim.totals().abandoned
    later = sim.statistics(HOUR + 1800)
    after = sim.totals()
    assert after.abandoned == settled  # progressive adds no overdial
    assert later.overdial_rate == 0.0
    assert after.dial_attempts > before.dial_attempts
    assert after.records_finished > before.records_finished
    sim.set_dialing(aggressive, HOUR + 1800)
    assert sim.pacing_gain == gain  # the learned gain comes back with predictive


def test_stop_lets_calls_finish_and_dials_nothing_new() -> None:
    sim = GroupSimulation(model(20), random.Random(2))
    sim.set_dialing(BUSY_85, 0.0)
    sim.advance(600.0)
    sim.set_dialing(None, 600.0)
    dialed = sim.totals().dial_attempts
    assert sim.calls_in_progress > 0
    for t in range(660, 4 * 3600, 60):
        sim.advance(float(t))
        if sim.calls_in_progress == 0:
            break
    assert sim.calls_in_progress == 0
    assert sim.totals().dial_attempts == dialed
    assert not sim.exhausted  # records remain for a new start
    sim.advance(t + 400.0)
    assert sim.agents_busy == 0  # the wrap-ups have ended too
    assert sim.totals().dial_attempts == dialed
    stats = sim.statistics(t + 400.0)
    assert stats.busy_factor is not None and stats.busy_factor < 0.1  # logged in, idle


def test_drop_calls_ends_every_call_at_once() -> None:
    sim = GroupSimulation(model(20), random.Random(4))
    sim.set_dialing(OVERDIAL_3, 0.0)
    sim.advance(900.0)
    assert sim.calls_in_progress > 0
    remaining = sim.records_remaining
    sim.drop_calls(900.0)
    assert sim.calls_in_progress == 0
    assert sim.dialing is None
    assert sim.records_remaining == remaining  # cancelled attempts give their records back
    dialed = sim.totals().dial_attempts
    assert sim.statistics(900.0).hit_ratio is not None
    sim.advance(2000.0)
    assert sim.totals().dial_attempts == dialed
    assert sim.agents_busy == 0
    stats = sim.statistics(2000.0)  # the window has emptied: no rate, no ratio
    assert (stats.busy_factor, stats.hit_ratio, stats.time_to_complete) == (0.0, None, None)


def test_drop_calls_counts_waiting_live_answers_as_dropped() -> None:
    power = Dialing(DialMode.POWER)
    group = GroupModel("G", 1, lists=(ListModel("L", 2, records=10_000),), agents=2,
                       lines_per_agent=6)  # fmt: skip
    sim = GroupSimulation(group, random.Random(8))
    sim.set_dialing(power, 0.0)
    t = 0.0
    while not sim._waiting:  # a live answer waiting for an agent (white-box)
        t += 0.5
        sim.advance(t)
    waiting = len(sim._waiting)
    before = sim.totals()
    sim.drop_calls(t)
    after = sim.totals()
    assert after.dropped == waiting and after.abandoned == before.abandoned
    stats = sim.statistics(t)
    expected = (after.abandoned + after.dropped) / after.live_answers  # all within the window
    assert stats.overdial_rate == pytest.approx(min(1.0, expected))


def test_latest_statistics_never_advances() -> None:
    sim = GroupSimulation(model(20), random.Random(3))
    assert sim.latest_statistics() == sim.statistics(0.0)  # nothing dialed yet
    sim.set_dialing(BUSY_85, 0.0)
    sim.advance(1234.5)
    before = (sim.now, sim.totals(), len(sim._events.heap), sim.calls_in_progress)
    latest = [sim.latest_statistics() for _ in range(5)]
    assert (sim.now, sim.totals(), len(sim._events.heap), sim.calls_in_progress) == before
    assert all(stats == latest[0] for stats in latest)
    assert latest[0] == sim.statistics(1234.5)
    assert latest[0].busy_factor is not None and latest[0].hit_ratio is not None
    # a later read advances; the latest statistics then follow it, and only it
    later = sim.statistics(1834.5)
    assert sim.now == 1834.5 and sim.latest_statistics() == later != latest[0]


def test_a_small_list_drains_and_the_group_is_exhausted() -> None:
    lists = (
        ListModel("A", 2, records=150, max_attempts=2, redial_delay=120),
        ListModel("B", 3, records=60, max_attempts=1),
    )
    sim = GroupSimulation(model(10, lists=lists), random.Random(6))
    sim.set_dialing(BUSY_85, 0.0)
    seen_rate = False
    t = 0.0
    while not sim.exhausted and t < 12 * HOUR:
        t += 60.0
        stats = sim.statistics(t)
        seen_rate = seen_rate or (stats.time_to_complete or 0) > 0
        assert not sim.exhausted or sim.calls_in_progress == 0
    assert sim.exhausted and t < 12 * HOUR
    assert seen_rate
    assert sim.records_remaining == 0 and sim.calls_in_progress == 0
    stats = sim.statistics(t)
    assert stats.time_to_complete == 0.0
    assert [cl.time_to_complete for cl in stats.calling_lists] == [0.0, 0.0]
    totals = sim.totals()
    assert totals.records_finished == 210
    assert totals.finished_attempts == totals.dial_attempts
    # list B allows one attempt per record, list A two
    assert 210 <= totals.dial_attempts <= 150 * 2 + 60


def test_time_to_complete_follows_the_completion_rate(busy_run: Run) -> None:
    t, stats = busy_run.samples[-1]
    assert stats.time_to_complete is not None
    # about records left / records finished per second over the window
    rate = busy_run.sim.totals().records_finished / t
    expected = busy_run.sim.records_remaining / rate
    assert stats.time_to_complete == pytest.approx(expected, rel=0.35)


# -- the window helpers (ocsd.core.statistics) -----------------------------------------------------


def test_snapshot_ring_keeps_the_last_window() -> None:
    ring = SnapshotRing(100.0, 60.0, [100.0, -1.0], buckets=6)  # 10 s buckets, 2 numbers
    assert ring.next_boundary == 110.0
    assert list(ring.due(109.9)) == []
    for k in ring.due(135.0):
        ring.record(k, [ring.time_of(k), 10 * k])
    assert ring.next_boundary == 140.0 and list(ring.snapshot(ring.base)) == [100.0, -1.0]
    for k in ring.due(195.0):
        ring.record(k, [ring.time_of(k), 10 * k])
    assert ring.last == 9
    # boundaries 4..9 cover (50, 60] seconds back from 195
    assert list(ring.snapshot(ring.base)) == [140.0, 40.0]
    assert list(ring.due(10_000.0)) == list(range(985, 991))  # a long gap: the last six
    offset = ring.claim(10)  # the owner's fast path: the time goes in, the rest is its own
    assert ring.data[offset] == 200.0 and ring.last == 10 and ring.next_boundary == 210.0
    assert len(ring.data) == 12  # one flat array, whatever the number of boundaries passed
    with pytest.raises(ValueError):
        ring.record(11, [1.0])


def test_snapshot_ring_boundaries_do_not_depend_on_rounding() -> None:
    """A boundary is passed when t reaches time_of(k), exactly as time_of rounds it."""
    ring = SnapshotRing(0.1, 0.7, [0.0], buckets=7)  # width 0.1 (rounded)
    for k in range(1, 2000):
        at = ring.time_of(k)
        assert ring.last_due(at) == k
        assert ring.last_due(math.nextafter(at, -math.inf)) == k - 1
    assert ring.last_due(0.0) == 0  # before the start: boundary 0


def test_a_window_below_the_clocks_resolution_is_refused() -> None:
    """stats-window = 1e-30 froze the event loop (SIGTERM unanswered): last_due stepped
    through boundaries that all rounded to the start. The settings refuse it first
    (stats-window >= 1 s); the ring refuses it too rather than loop."""
    with pytest.raises(ValueError, match="below the clock's resolution"):
        SnapshotRing(1.7e9, 1e-30, [0.0])
    assert SnapshotRing(1.7e9, 1.0, [0.0]).due(1.7e9 + 10.0) == range(1, 601)[-60:]


def test_formulas() -> None:
    assert ratio(1, 0) is None and ratio(3, 4) == 0.75 and ratio(-1, 2) == 0.0
    assert time_to_complete(0, 0, 0.0) == 0.0
    assert time_to_complete(10, 0, 300.0) is None
    assert time_to_complete(100, 10, 300.0) == 3000.0
    assert math.isclose(time_to_complete(1, 3, 1.0) or 0, 1 / 3)
