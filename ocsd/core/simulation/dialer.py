"""The dialer: how many calls the dial mode wants now, and placing them.

Placing a call takes a record (``Records``), draws its outcome from its calling list's
mix at once (live answer, answering machine, busy or no answer) and schedules the event
that ends its attempt (``ocsd.core.simulation.events``). The outcome is drawn when the
call is dialed, so one random draw (two for an answer) decides a call, whatever happens
to the group meanwhile.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from heapq import heappush

from ocsd.core.genesys import DialMode
from ocsd.core.simulation.counters import Counters
from ocsd.core.simulation.events import (
    LIVE,
    LIVE_ENGAGED,
    PREVIEW_DIAL,
    RESULT,
    RESULT_ENGAGED,
    WAKE,
    EventQueue,
)
from ocsd.core.simulation.model import (
    BUSY_SIGNAL_TIME,
    PREVIEW_TIME,
    TRANSFER_DELAY,
    GroupModel,
    ListModel,
)
from ocsd.core.simulation.modes import (
    NONE,
    POWER,
    PREDICTIVE,
    PROGRESSIVE,
    preview_time,
    transfer_delay,
)
from ocsd.core.simulation.pacing import HISTORY_LENGTH, MAX_LINES_PER_SERVER, Pacing, YoungCalls
from ocsd.core.simulation.records import COMPACT, Records
from ocsd.core.simulation.servers import ServerPool

#: Per calling list, the thresholds of one uniform draw: live below the first, machine
#: below the second, busy below the third, no answer above; then the ring time, the
#: no-answer timeout and the transfer delay of a live answer.
Outcomes = tuple[float, float, float, float, float, float]

#: Live answers waiting for a server: waiting call id -> (list, attempt, answer time).
Waiting = dict[int, tuple[int, int, float]]


def outcome_table(lists: Sequence[ListModel], delay: float) -> list[Outcomes]:
    """The ``Outcomes`` of each calling list, for a dial mode with transfer delay ``delay``."""
    table = []
    for lm in lists:
        live = lm.live_answer_rate
        machine = live + lm.answering_machine_rate
        busy = live + lm.answering_machine_rate + lm.busy_rate
        table.append((live, machine, busy, lm.ring_time, lm.no_answer_timeout, delay))
    return table


class Dialer:
    """Dials for one group: the dial mode's rule, the records it takes, the calls it places.

    ``kind`` is the dial mode's kind (``ocsd.core.simulation.modes``; ``NONE`` when
    stopped) and ``servers`` the pool its live answers go to. ``calls_dialing`` counts
    the calls dialing or ringing. When no record is ready (``Records.starved``), a
    ``WAKE`` event is due when the first redial is (``wake_at``), so pacing resumes then
    even if nothing else happens.
    """

    __slots__ = (
        "_counts",
        "_events",
        "_lines_per_agent",
        "_lists",
        "_nlists",
        "_pacing",
        "_rand",
        "_records",
        "_waiting",
        "_young",
        "calls_dialing",
        "kind",
        "outcomes",
        "preview_time",
        "servers",
        "wake_at",
    )

    def __init__(
        self,
        model: GroupModel,
        rand: Callable[[], float],
        events: EventQueue,
        records: Records,
        counts: Counters,
        young: YoungCalls,
        pacing: Pacing,
        servers: ServerPool,
        waiting: Waiting,
    ) -> None:
        self._lines_per_agent = model.lines_per_agent
        self._lists = model.lists
        self._nlists = len(model.lists)
        self._rand = rand
        self._events = events
        self._records = records
        self._counts = counts
        self._young = young
        self._pacing = pacing
        self._waiting = waiting
        self.kind = NONE
        self.servers = servers
        self.calls_dialing = 0
        self.outcomes = outcome_table(model.lists, TRANSFER_DELAY)
        self.preview_time = PREVIEW_TIME
        self.wake_at = math.inf  # a WAKE event is scheduled for then

    def configure(self, mode: DialMode, servers: ServerPool) -> None:
        """A dial mode starts: its servers, transfer delay and preview time (not its kind)."""
        self.servers = servers
        self.preview_time = preview_time(mode)
        self.outcomes = outcome_table(self._lists, transfer_delay(mode))

    def pace(self, t: float) -> None:
        """Dial what the dial mode asks for at time t (called after every event)."""
        kind = self.kind
        if kind == NONE:
            return
        servers = self.servers
        free = servers.capacity - servers.occupied
        ready = free - len(self._waiting)
        if kind == PREDICTIVE:
            pacing = self._pacing
            young = self._young
            # (too little history is judged before the control step, which may age calls in)
            if young.cohort_attempts < HISTORY_LENGTH:
                if t >= pacing.next_control:
                    pacing.control(t)
                n = ready - self.calls_dialing  # too little history yet: dial progressively
            else:
                if t >= pacing.next_control:
                    pacing.control(t)
                young_calls = young.count if t < young.next_aging else young.age(t)
                p = pacing.hit_ratio
                want = pacing.gain_over_hit_ratio * (
                    ready + servers.busy * pacing.answer_over_handle
                )
                lines = MAX_LINES_PER_SERVER * servers.capacity - (self.calls_dialing - young_calls)
                if want > lines:
                    want = lines
                # small-group variant: the calls dialing count by their chance to be live
                # at their age, so a handful of fresh calls is not mistaken for old ones
                if pacing.small_group:
                    n = int(want - young.expected_lives(t) / p)
                else:
                    n = int(want) - young_calls
                if pacing.at_least_progressive and n < ready - young_calls:
                    n = ready - young_calls  # never below progressive (which cannot overdial)
        elif kind == PROGRESSIVE:
            n = ready - self.calls_dialing
        elif kind == POWER:
            n = int(self._lines_per_agent * ready) - self.calls_dialing if ready > 0 else 0
        else:
            self._preview(t, free)
            return
        if n > 0:
            self.dial(t, n)
        else:
            self._records.starved = False

    def _preview(self, t: float, free: int) -> None:
        """Each ready agent takes a record and reads it (preview modes)."""
        records = self._records
        records.starved = False
        while free > 0:
            record = records.take(t)
            if record is None:
                self._starve(t)
                return
            free -= 1
            self.servers.occupied += 1
            self._events.push(t + self.preview_time, PREVIEW_DIAL, record[0], record[1], 0.0)

    def dial(self, t: float, n: int) -> None:
        """Dial up to n records now, drawing each outcome; the lists may run dry (starved).

        Written out flat (the record taken as in ``Records.take``, the event pushed as
        in ``EventQueue.push``), as its ~70 lines: it runs after most events. Taking each
        record with ``Records.take`` instead, bench/bench_simulation.py (a) core alone
        runs 4.8 % more instructions (callgrind: 6.85 G instead of 6.53 G).
        tests/unit/test_simulation_parts.py holds the two to the same result.
        """
        # long: written out for speed, bench/bench_simulation.py (a): 6.53 G instructions
        # instead of 6.85 G with Records.take.
        young = self._young
        if t >= young.next_aging:
            young.age(t)
        events = self._events
        heap = events.heap
        rand = self._rand
        records = self._records
        fresh, nl = records.fresh, self._nlists
        r_due, r_att, heads = records.redial_due, records.redial_attempt, records.head
        turn = records.turn
        # (written back after the loop: a WAKE that _starve pushes in it takes the number
        # after the one this call started from, which a call dialed here may share; only
        # the heap's order among equal times sees it, and runs stay as they always were)
        seq = events.seq
        dialed = 0
        li = attempt = 0
        while dialed < n:
            for _ in range(nl):  # the next record, round robin over the lists
                li = turn
                turn = turn + 1 if turn + 1 < nl else 0
                due = r_due[li]
                head = heads[li]
                if head < len(due) and due[head] <= t:  # a redial is due (Records.take_redial)
                    attempt = r_att[li][head]
                    head += 1
                    if head >= COMPACT and head + head >= len(due):
                        del due[:head]
                        del r_att[li][:head]
                        head = 0
                    heads[li] = head
                    break
                if fresh[li]:
                    fresh[li] -= 1
                    attempt = 1
                    break
            else:
                self._starve(t)
                break
            live, machine, busy, ring, timeout, delay = self.outcomes[li]
            seq += 1
            r = rand()
            if r < machine:
                answer = ring * (0.5 + rand())
                if answer > timeout:
                    answer = timeout
                if r < live:
                    heappush(heap, (t + answer + delay, seq, LIVE, li, attempt, t))
                else:
                    heappush(heap, (t + answer, seq, RESULT, li, attempt, t))
            elif r < busy:
                heappush(heap, (t + BUSY_SIGNAL_TIME, seq, RESULT, li, attempt, t))
            else:
                heappush(heap, (t + timeout, seq, RESULT, li, attempt, t))
            dialed += 1
        else:
            records.starved = False
        records.turn = turn
        events.seq = seq
        if dialed:
            self._counts.dial_attempts += dialed
            self.calls_dialing += dialed
            young.count += dialed
            second = int(t) % young.size
            young.by_second[second] += dialed
            young.dialed_by_second[second] += dialed

    def launch(self, t: float, li: int, attempt: int) -> None:
        """An agent dials the record he previewed: the call resolves to him."""
        self._counts.dial_attempts += 1
        self.calls_dialing += 1
        rand = self._rand
        live, machine, busy, ring, timeout, _delay = self.outcomes[li]
        r = rand()
        kind = RESULT_ENGAGED
        if r < machine:
            answer = min(ring * (0.5 + rand()), timeout)
            if r < live:
                kind = LIVE_ENGAGED
        elif r < busy:
            answer = BUSY_SIGNAL_TIME
        else:
            answer = timeout
        self._events.push(t + answer, kind, li, attempt, t)

    def _starve(self, t: float) -> None:
        """No record is ready: wake the pacing up when the next redial falls due."""
        records = self._records
        records.starved = True
        due = records.next_due()
        if due < self.wake_at:
            self.wake_at = due
            self._events.push(max(due, t), WAKE, 0, 0, 0.0)
