"""The statistics window: counters recorded at its boundaries, statistics read from them.

The statistics (docs/contract.md#statistics) cover a sliding window. Each is a difference of cumulative
counters between now and the window's base (``ocsd.core.statistics.SnapshotRing``
records them at the boundaries of the window's buckets), so reading the statistics
costs O(calling lists), whatever the traffic.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

from ocsd.core.simulation.counters import Counters
from ocsd.core.simulation.model import ListModel
from ocsd.core.simulation.records import Records
from ocsd.core.simulation.servers import ServerPool
from ocsd.core.statistics import (
    GroupStatistics,
    ListStatistics,
    SnapshotRing,
    group_statistics,
    list_statistics,
    ratio,
    time_to_complete,
)

#: A snapshot is SNAPSHOT_HEAD numbers (time, agent busy seconds, abandoned + dropped
#: calls), then per list the finished attempts, then per list the live answers, then per
#: list the finished records.
SNAPSHOT_HEAD = 3


class StatisticsWindow:
    """The statistics of one group over the last ``length`` seconds of simulated time.

    The owner calls :meth:`roll` with the time of each event at or past ``next_roll``
    (before the event changes anything: the counters then hold since the last event)
    and :meth:`read` for the statistics. What the statistics apply to is set when a
    dial mode starts (:meth:`started`): agent time counts from the group's first start
    (``first_start``), the busy factor is null unless the last mode run used agents
    (``measures_agents``), and the overdial rate is 0 after a preview mode
    (``cannot_overdial``).
    """

    __slots__ = (
        "_agents",
        "_counts",
        "_list_ids",
        "_nlists",
        "_records",
        "cannot_overdial",
        "data",
        "first_start",
        "length",
        "measures_agents",
        "next_roll",
        "ring",
    )

    def __init__(
        self,
        lists: Sequence[ListModel],
        start: float,
        length: float,
        agents: ServerPool,
        counts: Counters,
        records: Records,
    ) -> None:
        self.length = length
        nl = len(lists)
        self._nlists = nl
        self._list_ids = tuple((lm.name, lm.dbid) for lm in lists)
        self._agents = agents
        self._counts = counts
        self._records = records
        initial = [start, 0.0, 0.0] + [0.0] * (3 * nl)
        self.ring = SnapshotRing(start, length, initial)
        self.data = self.ring.data  # (the ring writes in place: one array for its life)
        self.next_roll = self.ring.next_boundary  # the next boundary to record
        self.first_start: float | None = None
        self.measures_agents = False
        self.cannot_overdial = False

    def started(self, t: float, agents: bool, preview: bool) -> None:
        """A dial mode starts at t; it uses agents (not IVR ports), or is a preview mode."""
        if self.first_start is None:
            self.first_start = t
        self.measures_agents = agents and self._agents.capacity > 0
        self.cannot_overdial = preview

    def roll(self, t: float) -> None:
        """Record the counters at every window boundary up to t (state is constant until t)."""
        ring = self.ring
        k = ring.last + 1  # its boundary is at or before t: the caller checked next_roll
        if ring.time_of(k + 1) > t:  # the usual case: one boundary passed
            self._record(k)
        else:  # a long step: the last ``buckets`` boundaries are all that can matter
            for k in ring.due(t):
                self._record(k)
        self.next_roll = ring.next_boundary

    def _record(self, k: int) -> None:
        """Write the counters at window boundary k (the state holds since the last event)."""
        data = self.data
        o = self.ring.claim(k)
        agents = self._agents
        counts = self._counts
        data[o + 1] = agents.busy_area + agents.busy * (data[o] - agents.area_time)
        data[o + 2] = counts.abandoned + counts.dropped
        o += SNAPSHOT_HEAD
        nl = self._nlists
        if nl == 1:
            data[o] = counts.finished_attempts[0]
            data[o + 1] = counts.live_answers[0]
            data[o + 2] = self._records.finished[0]
        else:
            data[o : o + 3 * nl] = array(
                "d", counts.finished_attempts + counts.live_answers + self._records.finished
            )

    def read(self, now: float) -> GroupStatistics:
        """The statistics over the window ending at ``now``, the time of the last event.

        Called for every notification of every group, so the usual case (one calling
        list) is written out flat: no helper calls, comprehensions or keyword arguments,
        and the fast constructors of ``ocsd.core.statistics``. The values are those of
        ``ocsd.core.statistics.ratio`` and ``ocsd.core.statistics.time_to_complete``, bit
        for bit (tests/unit/test_simulation_statistics.py holds it to a plain reference).
        """
        data = self.data
        o = self.ring.base
        t0 = data[o]
        first = self.first_start
        since = t0 if first is None or first <= t0 else first
        span = now - since
        # busy factor: agent time on calls / logged-in agent time (null with no agents)
        busy_factor = None
        if self.measures_agents:  # (only once started: first is not None)
            agents = self._agents
            logged = agents.capacity * span
            if logged > 0:
                value = (
                    agents.busy_area + agents.busy * (now - agents.area_time) - data[o + 1]
                ) / logged
                busy_factor = (value if value < 1.0 else 1.0) if value > 0.0 else 0.0
        counts = self._counts
        over = counts.abandoned + counts.dropped - data[o + 2]
        o += SNAPSHOT_HEAD
        if self._nlists == 1:
            records = self._records
            fin = records.finished[0]
            attempts = counts.finished_attempts[0] - data[o]
            lives = counts.live_answers[0] - data[o + 1]
            hit_ratio = None
            if attempts > 0:
                value = lives / attempts
                hit_ratio = value if value > 0.0 else 0.0
            remaining = records.list_sizes[0] - fin
            finished = fin - data[o + 2]
            if remaining <= 0:
                ttc: float | None = 0.0
            elif finished <= 0 or span <= 0:
                ttc = None
            else:
                ttc = remaining * span / finished
            name, dbid = self._list_ids[0]
            per_list: tuple[ListStatistics, ...] = (list_statistics(name, dbid, hit_ratio, ttc),)
        else:
            hit_ratio, ttc, lives, per_list = self._list_statistics(o, span)
        overdial = None
        if lives > 0:
            value = over / lives
            if self.cannot_overdial:
                overdial = 0.0  # contract: 0 in modes that cannot overdial
            elif value > 0.0:  # at most 1: an abandon can fall in the window, its answer not
                overdial = value if value < 1.0 else 1.0
            else:
                overdial = 0.0
        return group_statistics(busy_factor, hit_ratio, overdial, ttc, per_list)

    def _list_statistics(
        self, o: int, span: float
    ) -> tuple[float | None, float | None, float, tuple[ListStatistics, ...]]:
        """Group hit ratio, time to complete and live answers, and the per-list values."""
        data = self.data
        nl = self._nlists
        counts, records = self._counts, self._records
        att, live = counts.finished_attempts, counts.live_answers
        fin, sizes = records.finished, records.list_sizes
        all_attempts = all_lives = all_finished = 0.0
        per_list = []
        for i in range(nl):
            attempts = att[i] - data[o + i]
            lives = live[i] - data[o + nl + i]
            finished = fin[i] - data[o + 2 * nl + i]
            all_attempts += attempts
            all_lives += lives
            all_finished += finished
            name, dbid = self._list_ids[i]
            per_list.append(
                list_statistics(
                    name,
                    dbid,
                    ratio(lives, attempts),
                    time_to_complete(sizes[i] - fin[i], finished, span),
                )
            )
        return (
            ratio(all_lives, all_attempts),
            time_to_complete(records.remaining(), all_finished, span),
            all_lives,
            tuple(per_list),
        )
