"""Schedule parsing and due times: what a user writes in `schedule = ...`."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from ocsd.core.genesys import DialMode, OptimizeBy, Request
from ocsd.core.lifecycle import DialingChange
from ocsd.core.schedule import ScheduleError, parse_schedule

UTC = ZoneInfo("UTC")


def test_the_issue_example_parses_into_four_commands_in_order() -> None:
    entries = parse_schedule(
        "+0s load; +5s start predictive busy-factor 85; 17:30 stop; 17:35 unload"
    )
    assert [e.command for e in entries] == ["load", "start", "stop", "unload"]
    assert entries[0].offset == 0 and entries[1].offset == 5
    assert entries[1].change == DialingChange(DialMode.PREDICTIVE, OptimizeBy.BUSY_FACTOR, 85)
    assert entries[2].clock == (17, 30, 0) and entries[3].clock == (17, 35, 0)


def test_offsets_in_minutes_and_hours_and_complete_means_unload() -> None:
    # An UnloadCampaign of a running group stops it first: actions 10 then 8.
    first, second = parse_schedule("+2m complete; +1h forceunload")
    assert first.offset == 120 and first.requests == (Request.UNLOAD,)
    assert second.offset == 3600 and second.requests == (Request.FORCE_UNLOAD,)


def test_offset_is_counted_from_the_daemon_start() -> None:
    (entry,) = parse_schedule("+8s unload")
    assert entry.first_due(1000.0, UTC) == 1008.0


def test_a_daily_time_is_due_today_if_still_ahead_else_tomorrow() -> None:
    (entry,) = parse_schedule("17:30:15 stop")
    morning = datetime(2026, 11, 24, 9, 0, tzinfo=UTC).timestamp()
    evening = datetime(2026, 11, 24, 18, 0, tzinfo=UTC).timestamp()
    assert (
        entry.first_due(morning, UTC) == datetime(2026, 11, 24, 17, 30, 15, tzinfo=UTC).timestamp()
    )
    assert (
        entry.first_due(evening, UTC) == datetime(2026, 11, 25, 17, 30, 15, tzinfo=UTC).timestamp()
    )


def test_a_daily_time_follows_the_configured_time_zone() -> None:
    (entry,) = parse_schedule("09:00 load")
    paris = ZoneInfo("Europe/Paris")
    midnight_utc = datetime(2026, 7, 1, 0, 0, tzinfo=UTC).timestamp()
    # 09:00 in Paris in summer is 07:00 UTC.
    assert (
        entry.first_due(midnight_utc, paris) == datetime(2026, 7, 1, 7, 0, tzinfo=UTC).timestamp()
    )


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("+5s launch", "launch"),
        ("soon load", "soon"),
        ("25:00 stop", "25:00"),
        ("+5s start warp-speed", "warp-speed"),
        ("+5s stop now", "takes no arguments"),
        ("+5s start predictive busy-factor lots", "lots"),
        ("load", "expected"),
        ("+8785h unload", "more than a year"),
        (f"+{'9' * 400}s unload", "more than a year"),  # float() of it is inf
    ],
)
def test_a_bad_entry_is_refused_naming_it(text: str, named: str) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_schedule(f"+0s load; {text}")
    assert named in str(info.value)
    assert text in str(info.value)


def test_an_offset_of_a_year_is_the_latest() -> None:
    assert parse_schedule("+8784h unload")[0].offset == 366 * 86_400


def test_empty_parts_are_ignored() -> None:
    assert [e.command for e in parse_schedule(" +0s load ;; +1s start ; ")] == ["load", "start"]
