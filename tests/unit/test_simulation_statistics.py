"""GroupSimulation.statistics() (written out flat for speed) against a plain reference.

The reference recomputes spec section 3 the straightforward way, from the window's base
snapshot, the cumulative counters and the formulas of ocsd.core.statistics, with the ordinary
dataclass constructors; the fast path must give equal values, to the bit.
"""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocsd.core.genesys import DialMode, OptimizeBy
from ocsd.core.lifecycle import Dialing
from ocsd.core.simulation import GroupModel, GroupSimulation, ListModel
from ocsd.core.statistics import (
    GroupStatistics,
    ListStatistics,
    group_statistics,
    list_statistics,
    ratio,
    time_to_complete,
)


def reference(sim: GroupSimulation, now: float) -> GroupStatistics:
    """Spec section 3 over the window ending at now, computed the plain way (white-box)."""
    sim.advance(now)
    now = sim.now
    ring = sim._window.ring
    base = list(ring.snapshot(ring.base))
    nl = len(sim.model.lists)
    t0, area0, over0 = base[0], base[1], int(base[2])
    att0 = [int(v) for v in base[3 : 3 + nl]]
    live0 = [int(v) for v in base[3 + nl : 3 + 2 * nl]]
    fin0 = [int(v) for v in base[3 + 2 * nl :]]
    totals = sim.totals()
    first = sim._window.first_start
    span = now - (t0 if first is None else max(t0, first))
    busy_factor = None
    agents_ran = sim._dialer.servers is sim._agents  # the last mode run used agents, not ports
    if sim.model.agents > 0 and first is not None and agents_ran:
        value = ratio(totals.agent_busy_seconds - area0, sim.model.agents * span)
        busy_factor = None if value is None else min(1.0, value)
    d_att = [a - b for a, b in zip(totals.list_finished_attempts, att0, strict=True)]
    d_live = [a - b for a, b in zip(totals.list_live_answers, live0, strict=True)]
    d_fin = [a - b for a, b in zip(sim._records.finished, fin0, strict=True)]
    overdial = ratio(totals.abandoned + totals.dropped - over0, sum(d_live))
    if overdial is not None:
        overdial = 0.0 if sim._window.cannot_overdial else min(1.0, overdial)
    per_list = tuple(
        ListStatistics(
            name=lm.name,
            dbid=lm.dbid,
            hit_ratio=ratio(d_live[i], d_att[i]),
            time_to_complete=time_to_complete(
                lm.records - sim._records.finished[i], d_fin[i], span
            ),
        )
        for i, lm in enumerate(sim.model.lists)
    )
    return GroupStatistics(
        busy_factor=busy_factor,
        hit_ratio=ratio(sum(d_live), sum(d_att)),
        overdial_rate=overdial,
        time_to_complete=time_to_complete(totals.records_remaining, sum(d_fin), span),
        calling_lists=per_list,
    )


def same(a: GroupStatistics, b: GroupStatistics) -> bool:
    """Equal, and equal in repr too (so 0.0 and -0.0, or 1 and 1.0, are told apart)."""
    return a == b and repr(a) == repr(b)


DIALINGS = [
    Dialing(DialMode.PREDICTIVE, OptimizeBy.BUSY_FACTOR, 85),
    Dialing(DialMode.PREDICTIVE, OptimizeBy.OVERDIAL_RATE, 5),
    Dialing(DialMode.PROGRESSIVE),
    Dialing(DialMode.POWER),
    Dialing(DialMode.PREVIEW),
    Dialing(DialMode.PREDICTIVE_GVP, OptimizeBy.OVERDIAL_RATE, 5),
]


@pytest.mark.parametrize("lists", [1, 3])
@pytest.mark.parametrize("dialing", DIALINGS, ids=lambda d: d.mode.name)
def test_statistics_equal_the_reference(dialing: Dialing, lists: int) -> None:
    group = GroupModel(
        "G",
        1,
        lists=tuple(
            ListModel(f"L{i}", 2 + i, records=(400, 150, 900)[i], redial_delay=120.0)
            for i in range(lists)
        ),
        agents=8 if dialing.mode != DialMode.PREDICTIVE_GVP else 0,
        ports=12,
    )
    sim = GroupSimulation(group, random.Random(lists), start=100.0, window=120.0)
    rng = random.Random(7)
    t = 100.0
    assert same(sim.statistics(t), reference(sim, t))  # nothing dialed yet
    sim.set_dialing(dialing, t)
    assert same(sim.statistics(t), reference(sim, t))  # started this instant
    compared = 0
    while not sim.exhausted and t < 6 * 3600:
        t += rng.choice([0.5, 2.0, 10.0, 60.0, 700.0])
        if rng.random() < 0.02:
            sim.set_dialing(None if rng.random() < 0.5 else dialing, t)
        if rng.random() < 0.01:
            sim.drop_calls(t)
            sim.set_dialing(dialing, t + 5.0)
        assert same(sim.statistics(t), reference(sim, t)), t
        assert same(sim.statistics(t), reference(sim, t))  # a second read at the same time
        compared += 1
    assert compared > 30


@given(
    busy=st.none() | st.floats(0, 1),
    hit=st.none() | st.floats(0, 1),
    overdial=st.none() | st.floats(0, 1),
    ttc=st.none() | st.floats(0, 1e9),
    names=st.lists(st.tuples(st.text(max_size=5), st.integers(0, 2**31)), max_size=3),
)
def test_fast_constructors_build_equal_instances(
    busy: float | None,
    hit: float | None,
    overdial: float | None,
    ttc: float | None,
    names: list[tuple[str, int]],
) -> None:
    fast_lists = tuple(list_statistics(n, d, hit, ttc) for n, d in names)
    plain_lists = tuple(ListStatistics(n, d, hit_ratio=hit, time_to_complete=ttc) for n, d in names)
    assert fast_lists == plain_lists and hash(fast_lists) == hash(plain_lists)
    fast = group_statistics(busy, hit, overdial, ttc, fast_lists)
    plain = GroupStatistics(busy, hit, overdial, ttc, plain_lists)
    assert fast == plain and hash(fast) == hash(plain) and repr(fast) == repr(plain)
    assert dataclasses.asdict(fast) == dataclasses.asdict(plain)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.busy_factor = 0.5  # type: ignore[misc]
