"""The records of a group's calling lists: fresh, waiting for a redial, finished.

A record is a count, not an object: per list, how many were never dialed (``fresh``),
which wait for a redial (two FIFOs in step: when each falls due and which attempt it
will be), and how many are finished. A record being dialed, or read by an agent, is in
none of these: it is in an event (``ocsd.core.simulation.events``) until its attempt
ends, and then it is redialed, finished or given back.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence

from ocsd.core.simulation.model import ListModel

#: Redials consumed from the head of a list's queue before its arrays are compacted.
COMPACT = 32


class Records:
    """Per calling list: fresh records, the redial queue, finished records; and the turn.

    The redial delay is the same for every record of a list, so its redials queue in
    due order: a FIFO of due times (``redial_due[list]``) and one of attempt numbers
    (``redial_attempt[list]``), consumed from ``head[list]`` and compacted once at least
    ``COMPACT`` entries and half the array are consumed. Arrays, not ``(float, int)``
    tuples: 9 bytes a waiting record instead of ~90. Due redials go before fresh
    records, and the lists take turns (round robin from ``turn`` over the lists with a
    record ready).

    ``Dialer.dial`` takes records with the same rule written out inline (its hot loop);
    :meth:`take` is the same thing as a method, for the preview modes.
    """

    __slots__ = (
        "finished",
        "fresh",
        "head",
        "list_sizes",
        "max_attempts",
        "redial_attempt",
        "redial_delay",
        "redial_due",
        "starved",
        "total",
        "turn",
    )

    def __init__(self, lists: Sequence[ListModel]) -> None:
        self.list_sizes = [lm.records for lm in lists]
        self.total = sum(self.list_sizes)
        self.fresh = [lm.records for lm in lists]  # never dialed
        self.redial_due = [array("d") for _ in lists]
        self.redial_attempt = [array("B" if lm.max_attempts < 256 else "q") for lm in lists]
        self.head = [0] * len(lists)  # the first redial not taken yet, per list
        self.finished = [0] * len(lists)
        self.max_attempts = [lm.max_attempts for lm in lists]
        self.redial_delay = [lm.redial_delay for lm in lists]
        self.turn = 0  # the list asked first for the next record
        # no record was ready for the last dial (the pacing must not wind up meanwhile)
        self.starved = False

    def remaining(self) -> int:
        """Records not finished yet: to dial, waiting for a redial, or on a call."""
        return self.total - sum(self.finished)

    def failed(self, t: float, li: int, attempt: int) -> None:
        """An attempt that did not reach a server: redial later, or finish the record."""
        if attempt < self.max_attempts[li]:
            self.redial_due[li].append(t + self.redial_delay[li])
            self.redial_attempt[li].append(attempt + 1)
        else:
            self.finished[li] += 1

    def give_back(self, t: float, li: int, attempt: int) -> None:
        """A record taken but not dialed (or cancelled) goes back, first in line.

        A fresh record goes back to the fresh ones; a redial goes back to the head of
        its queue, due at ``t`` (the slot just consumed is reused when there is one).
        """
        if attempt == 1:
            self.fresh[li] += 1
            return
        head = self.head[li]
        if head:
            head -= 1
            self.redial_due[li][head] = t
            self.redial_attempt[li][head] = attempt
            self.head[li] = head
        else:
            self.redial_due[li].insert(0, t)
            self.redial_attempt[li].insert(0, attempt)

    def take_redial(self, li: int, t: float) -> int:
        """The attempt number of list li's first redial if it is due at t (taken), else 0."""
        due = self.redial_due[li]
        head = self.head[li]
        if head < len(due) and due[head] <= t:
            attempt = self.redial_attempt[li][head]
            head += 1
            if head >= COMPACT and head + head >= len(due):  # drop the consumed prefix
                del due[:head]
                del self.redial_attempt[li][:head]
                head = 0
            self.head[li] = head
            return attempt
        return 0

    def take(self, t: float) -> tuple[int, int] | None:
        """The next record to dial at t, ``(list, attempt)``; None if no list has one."""
        nl = len(self.fresh)
        turn = self.turn
        for _ in range(nl):
            li = turn
            turn = turn + 1 if turn + 1 < nl else 0
            attempt = self.take_redial(li, t)
            if attempt:
                self.turn = turn
                return li, attempt
            if self.fresh[li]:
                self.fresh[li] -= 1
                self.turn = turn
                return li, 1
        return None

    def next_due(self) -> float:
        """When the first waiting redial falls due (inf if none waits)."""
        due = math.inf
        for li, head in enumerate(self.head):
            queue = self.redial_due[li]
            if head < len(queue) and queue[head] < due:
                due = queue[head]
        return due

    def waiting(self, li: int) -> int:
        """Records of list li waiting for a redial."""
        return len(self.redial_due[li]) - self.head[li]
