"""How the dashboard writes values for people: pure functions, unit-tested, so the page's
script only places text the sink already wrote."""

from __future__ import annotations

import math

#: Below this many seconds a duration is written in seconds, below MINUTES_BELOW minutes in
#: minutes, below DAYS_FROM hours in hours and minutes, from there in days.
SECONDS_BELOW = 120
MINUTES_BELOW = 120
DAYS_FROM = 48
#: What the page shows for no value: an en dash, as in its other columns.
NO_VALUE = "\u2013"


def _half_up(value: float) -> int:
    """Round half away from zero for non-negative values (round() rounds half to even)."""
    return math.floor(value + 0.5)


def duration_text(seconds: float | None) -> str:
    """A time to complete in words: :data:`NO_VALUE`, ``done``, ``45 s``, ``59 min``, ``14 h 05 min``,
    ``2.5 days``.

    The value is rounded to the unit it is shown in *before* it is split into hours and
    minutes, so 14 h 59.6 min reads ``15 h 00 min``, never ``14 h 60 min``; and the unit is
    chosen after rounding, so 119.6 s reads ``2 min``, not ``120 s``.
    """
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return NO_VALUE
    if seconds == 0:
        return "done"
    whole_seconds = _half_up(seconds)
    if whole_seconds < SECONDS_BELOW:
        return f"{whole_seconds} s"
    minutes = _half_up(seconds / 60)
    if minutes < MINUTES_BELOW:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < DAYS_FROM:
        return f"{hours} h {rest:02d} min"
    return f"{_half_up(seconds / 8640) / 10:.1f} days"
