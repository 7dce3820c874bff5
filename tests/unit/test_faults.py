"""The pure half of [faults]: which notifications a fault hits, and the body rewrites."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocsd.core.faults import (
    FAULT_KINDS,
    UNKNOWN_FIELD,
    FaultRates,
    add_unknown_field,
    decide,
    skew_date_time,
)

BODY = b'{"GSW_USER_EVENT":"CampaignGroupState","GSW_DATE_TIME":"1763912345.123","GSW_X":1}'


def test_off_by_default():
    rates = FaultRates()
    assert not rates.active and rates.described() == ""
    assert all(decide(rates, 101, n) == frozenset() for n in range(1, 1000))


@given(st.integers(0, 2**62), st.integers(1, 2**31 - 1), st.integers(1, 10**6))
def test_the_same_seed_group_and_number_give_the_same_faults(seed, dbid, number):
    rates = FaultRates(duplicate=0.5, drop=0.2, reorder=0.3, seed=seed)
    assert decide(rates, dbid, number) == decide(rates, dbid, number)


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_fault_hits_about_its_probability(kind):
    rates = FaultRates(seed=42, **{kind: 0.1})
    hits = sum(kind in decide(rates, dbid, n) for dbid in range(100, 120) for n in range(1, 501))
    assert 850 <= hits <= 1150  # 10,000 draws at 0.1: mean 1000, sd 30


def test_a_dropped_notification_suffers_nothing_else():
    rates = FaultRates(drop=0.5, duplicate=1.0, clock_skew=1.0, seed=1)
    outcomes = [decide(rates, 7, n) for n in range(1, 200)]
    assert frozenset({"drop"}) in outcomes
    assert all(o == frozenset({"drop"}) or "drop" not in o for o in outcomes)


def test_clock_skew_moves_only_the_date_time():
    skewed = skew_date_time(BODY, -30.5)
    assert json.loads(skewed) == {**json.loads(BODY), "GSW_DATE_TIME": "1763912314.623"}


def test_the_unknown_field_keeps_the_body_json():
    extended = json.loads(add_unknown_field(BODY))
    assert UNKNOWN_FIELD in extended and extended["GSW_X"] == 1
    assert list(extended)[-1] == UNKNOWN_FIELD


async def test_held_notifications_are_bounded(monkeypatch):
    """Past MAX_WAITING delayed ones, delay no longer hits (none counted as hit)."""
    import asyncio
    from collections import Counter

    from ocsd.delivery import faults as injector_module
    from ocsd.delivery.transport import Outcome

    class NoTransport:
        async def post(self, *args, **kwargs):
            return Outcome(None, {})

    monkeypatch.setattr(injector_module, "MAX_WAITING", 5)
    injected: Counter[str] = Counter()
    rates = FaultRates(delay=1.0, delay_time=60.0)
    faults = injector_module.FaultInjector(rates, NoTransport(), injected)  # type: ignore[arg-type]
    settled = []
    for n in range(8):
        await faults.send("periodic", 100 + n, "G", BODY, None, 1, settled.append)
    assert injected["delay"] == 5 and faults.waiting == 5
    assert len(settled) == 3, "the rest were sent at once"
    await faults.close(0.01)
    await asyncio.sleep(0)
