"""Statistics reported in every body (spec section 3): the value types.

Each number is a non-negative float, or None when there is not enough data yet or
the statistic does not apply to the dial mode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Generic, TypeVar

from ocsd.campaign import GroupIdentity


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


def no_data(identity: GroupIdentity) -> GroupStatistics:
    """Statistics of a group that has not dialed: every value null, every list present."""
    return GroupStatistics(
        calling_lists=tuple(ListStatistics(cl.name, cl.dbid) for cl in identity.calling_lists)
    )


# -- formulas and the sliding window (spec section 3) ---------------------------------
# [ocsd decision] Every statistic is a difference of cumulative counters between now and
# the counters recorded at a window boundary: the window is split into WINDOW_BUCKETS
# equal buckets and covers the current (partial) bucket plus the WINDOW_BUCKETS - 1
# before it, i.e. between (1 - 1/WINDOW_BUCKETS) x window and window seconds.

WINDOW_BUCKETS = 60

S = TypeVar("S")


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, never negative; None when the denominator is not positive."""
    if denominator <= 0:
        return None
    return max(0.0, numerator / denominator)


def time_to_complete(remaining: int, finished: int, span: float) -> float | None:
    """Seconds to finish ``remaining`` records at the rate ``finished`` per ``span`` seconds.

    0 when nothing is left; None while no rate can be measured (nothing finished).
    """
    if remaining <= 0:
        return 0.0
    if finished <= 0 or span <= 0:
        return None
    return remaining * span / finished


class SnapshotRing(Generic[S]):
    """Snapshots of cumulative counters at the bucket boundaries of a sliding window.

    Boundary k is at ``start + k * window / buckets``; boundary 0 holds ``initial``.
    The owner records a snapshot for each boundary it passes (``due`` tells which) and
    reads the window's base snapshot with ``base``; memory and time are O(buckets).
    """

    __slots__ = ("_k", "_ring", "buckets", "next_boundary", "start", "width")

    def __init__(self, start: float, window: float, initial: S, buckets: int = WINDOW_BUCKETS):
        if window <= 0 or buckets < 1:
            raise ValueError("window and buckets must be positive")
        self.start = start
        self.width = window / buckets
        self.buckets = buckets
        self._ring: list[S] = [initial] * buckets
        self._k = 0
        self.next_boundary = start + self.width

    @property
    def last(self) -> int:
        """The last boundary recorded."""
        return self._k

    def time_of(self, k: int) -> float:
        return self.start + k * self.width

    def due(self, t: float) -> range:
        """Boundaries up to t not recorded yet (at most the last ``buckets`` of them)."""
        k = math.floor((t - self.start) / self.width)
        if self.time_of(k + 1) <= t:
            k += 1
        first = max(self._k + 1, k - self.buckets + 1)
        return range(first, k + 1)

    def record(self, k: int, snapshot: S) -> None:
        self._ring[k % self.buckets] = snapshot
        self._k = k
        self.next_boundary = self.time_of(k + 1)

    def base(self) -> S:
        """The snapshot the window starts from (the oldest boundary still in the window)."""
        return self._ring[max(0, self._k - self.buckets + 1) % self.buckets]
