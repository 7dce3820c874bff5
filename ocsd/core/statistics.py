"""Statistics reported in every body (docs/contract.md#statistics): the value types.

Each number is a non-negative float, or None when there is not enough data yet or
the statistic does not apply to the dial mode.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

from ocsd.core.identity import GroupIdentity


@dataclass(frozen=True, slots=True)
class ListStatistics:
    name: str
    dbid: int
    hit_ratio: float | None = None
    time_to_complete: float | None = None


@dataclass(frozen=True, slots=True)
class GroupStatistics:
    busy_factor: float | None = None
    hit_ratio: float | None = None
    overdial_rate: float | None = None
    time_to_complete: float | None = None
    calling_lists: tuple[ListStatistics, ...] = ()


# Fast constructors for the per-notification path: a frozen dataclass's __init__ sets
# each field through object.__setattr__ (~0.5 µs an instance); setting the slots through
# their descriptors builds the same (equal, hashable, immutable) instance in ~half that.
# python bench/fast_paths.py (18,000 running groups, cold caches, best of 9 interleaved):
# statistics() of a one-list group 7.6-8.9 µs, 8.9-10.3 µs with the dataclasses' own
# __init__ (1.3-1.4 µs, 14 %, saved on every notification).
_new = object.__new__
_set_list_fields: tuple[Callable[[object, object], None], ...] = tuple(
    getattr(ListStatistics, f.name).__set__ for f in fields(ListStatistics)
)
_set_group_fields: tuple[Callable[[object, object], None], ...] = tuple(
    getattr(GroupStatistics, f.name).__set__ for f in fields(GroupStatistics)
)


def list_statistics(
    name: str, dbid: int, hit_ratio: float | None, time_to_complete: float | None
) -> ListStatistics:
    """``ListStatistics(name, dbid, hit_ratio, time_to_complete)``, faster."""
    stats: ListStatistics = _new(ListStatistics)
    set_name, set_dbid, set_hit_ratio, set_time_to_complete = _set_list_fields
    set_name(stats, name)
    set_dbid(stats, dbid)
    set_hit_ratio(stats, hit_ratio)
    set_time_to_complete(stats, time_to_complete)
    return stats


def group_statistics(
    busy_factor: float | None,
    hit_ratio: float | None,
    overdial_rate: float | None,
    time_to_complete: float | None,
    calling_lists: tuple[ListStatistics, ...],
) -> GroupStatistics:
    """``GroupStatistics(...)`` with every field given, in order, faster."""
    stats: GroupStatistics = _new(GroupStatistics)
    set_busy, set_hit, set_overdial, set_ttc, set_lists = _set_group_fields
    set_busy(stats, busy_factor)
    set_hit(stats, hit_ratio)
    set_overdial(stats, overdial_rate)
    set_ttc(stats, time_to_complete)
    set_lists(stats, calling_lists)
    return stats


def no_data(identity: GroupIdentity) -> GroupStatistics:
    """Statistics of a group that has not dialed: every value null, every list present."""
    return GroupStatistics(
        calling_lists=tuple(ListStatistics(cl.name, cl.dbid) for cl in identity.calling_lists)
    )


# -- formulas and the sliding window (docs/contract.md#statistics) -------------------
# [ocsd decision] Every statistic is a difference of cumulative counters between now and
# the counters recorded at a window boundary: the window is split into WINDOW_BUCKETS
# equal buckets and covers the current (partial) bucket plus the WINDOW_BUCKETS - 1
# before it, i.e. between (1 - 1/WINDOW_BUCKETS) x window and window seconds.

WINDOW_BUCKETS = 60


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, never negative; None when the denominator is not positive."""
    if denominator <= 0:
        return None
    return max(0.0, numerator / denominator)


def time_to_complete(remaining: float, finished: float, span: float) -> float | None:
    """Seconds to finish ``remaining`` records at the rate ``finished`` per ``span`` seconds.

    0 when nothing is left; None while no rate can be measured (nothing finished).
    """
    if remaining <= 0:
        return 0.0
    if finished <= 0 or span <= 0:
        return None
    return remaining * span / finished


class SnapshotRing:
    """Snapshots of cumulative counters at the bucket boundaries of a sliding window.

    Boundary k is at ``start + k * window / buckets``; boundary 0 holds ``initial``.
    A snapshot is ``stride`` numbers and the ring keeps the last ``buckets`` of them in
    one flat ``array('d')`` (``data``): ~3 KiB per running group instead of ~15 KiB of
    tuples of lists, and no object for the garbage collector to scan. A snapshot's first
    number is its boundary's time. The owner records each boundary it passes (``due``
    tells which): ``claim(k)`` writes the time and says where the rest goes. ``base`` is
    the offset of the window's base snapshot, kept up to date so a read costs nothing.
    """

    __slots__ = ("base", "buckets", "data", "last", "next_boundary", "start", "stride", "width")

    def __init__(
        self, start: float, window: float, initial: Sequence[float], buckets: int = WINDOW_BUCKETS
    ) -> None:
        if window <= 0 or buckets < 1 or not initial:
            raise ValueError("window, buckets and the snapshot must not be empty")
        self.start = start
        self.width = window / buckets
        if start + self.width == start:  # last_due would count boundaries one by one, forever
            raise ValueError(
                f"a window of {window:g} s is below the clock's resolution at {start:g}"
            )
        self.buckets = buckets
        self.stride = len(initial)
        self.data = array("d", initial) * buckets
        self.last = 0  # the last boundary recorded
        self.base = 0
        self.next_boundary = self.time_of(1)

    def time_of(self, k: int) -> float:
        return self.start + k * self.width

    def last_due(self, t: float) -> int:
        """The last boundary at or before t, exactly as ``time_of`` rounds (never before 0).

        Exact, so that whether a boundary counts as passed depends on t alone, not on
        the steps that led to t.
        """
        k = max(0, math.floor((t - self.start) / self.width))
        while self.time_of(k + 1) <= t:
            k += 1
        while k > 0 and self.time_of(k) > t:
            k -= 1
        return k

    def due(self, t: float) -> range:
        """Boundaries up to t not recorded yet (at most the last ``buckets`` of them)."""
        k = self.last_due(t)
        return range(max(self.last + 1, k - self.buckets + 1), k + 1)

    def claim(self, k: int) -> int:
        """Make boundary k the last one recorded: its time goes in; where its snapshot goes.

        One call per boundary (the owner's hot path), so the arithmetic is inline.
        """
        buckets = self.buckets
        stride = self.stride
        offset = (k % buckets) * stride
        self.data[offset] = self.start + k * self.width
        self.last = k
        self.base = (k - buckets + 1) % buckets * stride if k >= buckets else 0
        self.next_boundary = self.start + (k + 1) * self.width
        return offset

    def record(self, k: int, snapshot: Sequence[float]) -> None:
        """Record boundary k's snapshot (``stride`` numbers, its time first)."""
        if len(snapshot) != self.stride:
            raise ValueError(f"a snapshot has {self.stride} numbers")
        offset = self.claim(k)
        self.data[offset : offset + self.stride] = array("d", snapshot)

    def snapshot(self, offset: int) -> array[float]:
        """A copy of the snapshot at ``offset`` (``base`` for the window's base)."""
        return self.data[offset : offset + self.stride]
