"""Statistics reported in every body (spec section 3): the value types.

Each number is a non-negative float, or None when there is not enough data yet or
the statistic does not apply to the dial mode.
"""

from __future__ import annotations

from dataclasses import dataclass

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
