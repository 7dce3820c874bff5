"""The servers that take live answers: the group's agents, or its IVR ports (GVP modes).

Servers are counts, not objects. The busy factor and the pacing's handle time need the
servers' busy time, an integral kept up to date at each change of ``busy``:
``busy_area`` is the server-seconds busy up to ``area_time``.
"""

from __future__ import annotations

from heapq import heappop


class ServerPool:
    """A pool of ``capacity`` agents (or IVR ports) in simulated time.

    ``occupied`` servers are not ready for a call: talking, in wrap-up or (agents only)
    previewing a record or dialing it; ``busy`` ones are talking or in wrap-up, what
    the busy factor counts. An IVR port has no wrap-up and no preview, so for ports the
    two are always equal. ``talk_ends`` is a heap of when the agents' talking calls end
    (one event ends talk and wrap-up together, and a call in wrap-up is no call in
    progress); it stays empty for ports, whose every busy port is a call in progress.
    """

    __slots__ = ("area_time", "busy", "busy_area", "capacity", "occupied", "talk_ends")

    def __init__(self, capacity: int, start: float) -> None:
        self.capacity = capacity
        self.occupied = 0
        self.busy = 0
        self.busy_area = 0.0  # server-seconds busy up to area_time
        self.area_time = start
        self.talk_ends: list[float] = []

    def busy_seconds(self, t: float) -> float:
        """Server-seconds busy from the start up to t (no change of ``busy`` since)."""
        return self.busy_area + self.busy * (t - self.area_time)

    def take(self, t: float) -> None:
        """A server takes a call at t."""
        self.busy_area += self.busy * (t - self.area_time)
        self.area_time = t
        self.occupied += 1
        self.busy += 1

    def release(self, t: float) -> None:
        """A server's call (and wrap-up) ends at t."""
        self.busy_area += self.busy * (t - self.area_time)
        self.area_time = t
        self.busy -= 1
        self.occupied -= 1

    def talking(self, now: float) -> int:
        """Agents' calls still talking at ``now`` (the ended ones are dropped)."""
        ends = self.talk_ends
        while ends and ends[0] <= now:
            heappop(ends)
        return len(ends)
