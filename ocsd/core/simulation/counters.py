"""The cumulative counts of a group's calls since the simulation began.

Counts only grow. The windowed statistics are their differences between now and the
window's base (``ocsd.core.simulation.window``), the pacing's estimates their
differences over a control step (``ocsd.core.simulation.pacing``), and ``Totals`` the
counts themselves. (Finished records are counted by ``Records``, busy time by the
``ServerPool``.)
"""

from __future__ import annotations


class Counters:
    """Attempts, answers, abandons and connections, and the seconds behind the averages."""

    __slots__ = (
        "abandoned",
        "answer_seconds",
        "connected",
        "dial_attempts",
        "dropped",
        "finished_attempts",
        "handles",
        "live_answers",
        "queue_wait_seconds",
    )

    def __init__(self, lists: int) -> None:
        self.dial_attempts = 0  # dialed, including those still in progress
        self.finished_attempts = [0] * lists  # per calling list
        self.live_answers = [0] * lists  # per calling list
        self.abandoned = 0  # live answers whose wait for a server ran out
        self.dropped = 0  # live answers waiting when the calls were dropped (force unload)
        self.connected = 0  # live answers a server took
        self.queue_wait_seconds = 0.0  # s connected live answers waited for a server
        self.answer_seconds = 0.0  # s from dial to live answer, summed
        self.handles = 0  # server calls ended (talk, and an agent's wrap-up)
