"""How the sink's dashboard writes a time to complete (ocsd.receiver.display)."""

from __future__ import annotations

import pytest

from ocsd.receiver.display import NO_VALUE, duration_text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, NO_VALUE),
        (0, "done"),
        (0.0, "done"),
        (0.4, "0 s"),
        (1, "1 s"),
        (59.5, "60 s"),
        (119.4, "119 s"),
        (119.6, "2 min"),  # rounded first: never "120 s"
        (120, "2 min"),
        (59.5 * 60, "60 min"),  # 59.5 min
        (3599.6, "60 min"),
        (3600, "60 min"),
        (7169.9, "119 min"),
        (7199.6, "2 h 00 min"),  # never "120 min"
        (7200, "2 h 00 min"),
        (7230, "2 h 01 min"),  # half a minute rounds up
        (14 * 3600 + 59 * 60 + 29, "14 h 59 min"),
        (14 * 3600 + 59 * 60 + 30, "15 h 00 min"),  # the old page said "14 h 60 min"
        (53_990, "15 h 00 min"),
        (47 * 3600 + 59 * 60 + 29, "47 h 59 min"),
        (47 * 3600 + 59 * 60 + 30, "2.0 days"),  # rounds to 48 h: days
        (48 * 3600, "2.0 days"),
        (200_000, "2.3 days"),
        (10 * 86400 - 1, "10.0 days"),
        (365 * 86400, "365.0 days"),
        (-1, NO_VALUE),
        (float("nan"), NO_VALUE),
        (float("inf"), NO_VALUE),
    ],
)
def test_duration_text_rounds_once_then_picks_the_unit(seconds: float | None, text: str) -> None:
    assert duration_text(seconds) == text


def test_no_duration_reads_60_minutes_past_an_hour() -> None:
    """Every second from 2 min to 48 h: the minutes part of "N h MM min" is 00..59."""
    for seconds in range(120, 48 * 3600, 7):
        for fraction in (0.0, 0.5):
            text = duration_text(seconds + fraction)
            if " h " in text:
                minutes = int(text.split(" h ")[1].split()[0])
                assert 0 <= minutes <= 59, (seconds + fraction, text)
            elif text.endswith(" min"):
                assert int(text.split()[0]) < 120, (seconds + fraction, text)
