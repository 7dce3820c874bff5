"""Predictive pacing: the young calls it counts, what it learns, and the gain it steers.

Predictive pacing keeps ``gain_over_hit_ratio x A`` young calls dialing (the package
docstring says why and how, with every constant below): ``YoungCalls`` counts the calls
dialed recently enough to still be answered live, and learns from their ages;
``Pacing`` learns the hit ratio, answer time and handle time, and moves the gain towards
the optimization goal every ``CONTROL_STEP``. How many calls each mode dials, and the
dialing itself, are the ``Dialer``'s (``ocsd.core.simulation.dialer``).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence

from ocsd.core.genesys import OptimizeBy
from ocsd.core.lifecycle import Dialing
from ocsd.core.simulation.counters import Counters
from ocsd.core.simulation.model import (
    ABANDON_GRACE,
    ADT_QUEUE_FACTOR,
    TRANSFER_DELAY,
    ListModel,
)
from ocsd.core.simulation.records import Records
from ocsd.core.simulation.servers import ServerPool

# -- pacing constants [ocsd decision] ------------------------------------------------------

CONTROL_STEP = 10.0  # s between updates of the pacing gain and estimates
AGE_STEP = 3  # s: calls leave the young ones up to this much after the longest answer time
LEARN_TIME = 600.0  # s time constant of the learned hit ratio, answer and handle times
G_MIN, G_MAX = 0.05, 20.0  # bounds of the pacing gain
G_START = 0.4  # gain of a group that has not learned yet
K_BUSY = 1.0 / 75.0  # log-gain change per second of busy-factor error (fraction)
K_ABANDON = 2.0  # log-gain change per abandoned call x agents (x goal per live answer)
K_DISTRIBUTION = 1.0  # log-gain change per distributed call x agents, per goal of wait error
MAX_LINES_PER_SERVER = 3.0  # most calls dialing per agent (port)
SMALL_GROUP_SIZE = 20  # agents (ports) at or under which the small-group variant runs
MIN_STEP_AGENTS = 10  # one abandon never moves the log-gain by more than K_ABANDON / this
AGE_LEARN_STEP = 60.0  # s between updates of the small-group variant's chance by age
AGE_HISTORY = 4000  # attempts by age kept (halved beyond)
HISTORY_LENGTH = 50  # attempts known before predictive pacing trusts what it learned
PRIOR_ATTEMPTS = 50.0  # pseudo-observations behind the starting estimates (they decay)
PRIOR_HIT_RATIO = 0.3
PRIOR_ANSWERS = 10.0
PRIOR_ANSWER_TIME = 15.0  # s
PRIOR_HANDLES = 10.0
PRIOR_HANDLE_TIME = 200.0  # s

LOG_G_MIN = math.log(G_MIN)
LOG_G_MAX = math.log(G_MAX)

#: What a control step measures from: the counters at the last step (see ``Pacing.mark``).
Marks = tuple[float, int, int, int, int, float, int, float, int]


def optimization(dialing: Dialing, predictive: bool) -> tuple[OptimizeBy, float]:
    """The optimization method and goal the pacing steers to (percentages as fractions).

    Only predictive dialing optimizes; a predictive group without a method holds a
    busy factor of 85 %.
    """
    method = dialing.optimize_by if predictive else OptimizeBy.NONE
    goal = float(dialing.optimize_goal)
    if method == OptimizeBy.NONE and predictive:
        method, goal = OptimizeBy.BUSY_FACTOR, 85.0
    if method in (OptimizeBy.BUSY_FACTOR, OptimizeBy.OVERDIAL_RATE):
        goal /= 100.0
    return method, goal


class YoungCalls:
    """Calls dialed less than ``span`` seconds ago ("young"), counted per dial second.

    An older call can no longer be a live answer, so predictive pacing counts only the
    young ones (``count``). The per-second counts sit in rings of ``size`` slots indexed
    by dial second modulo ``size``: the young calls still dialing (``by_second``), all
    the calls dialed and those of them answered live. :meth:`age` moves the dial seconds
    that grew older than ``span`` out of the rings and into the cohort: the attempts
    (and live answers) of whole dial seconds, a sample of the hit ratio free of the bias
    of quick outcomes (busy) being known first. ``span`` starts at the longest
    no-answer timeout and, once enough is known, follows the longest answer time seen.

    The small-group variant also learns, from the ages at which attempts ended
    (``ended_at_age``, ``live_at_age``), the chance that a call still dialing at age a
    ends live (``live_chance[a]``).
    """

    # (lists of small ints, not arrays: they are read and written on every event, and
    # an array's boxing costs ~8 % of advance for ~0.7 KiB a group)
    __slots__ = (
        "aged",
        "by_second",
        "cohort_attempts",
        "cohort_lives",
        "count",
        "dialed_by_second",
        "ended_at_age",
        "live_at_age",
        "live_by_second",
        "live_chance",
        "longest_answer",
        "next_aging",
        "next_chance_update",
        "size",
        "span",
    )

    def __init__(self, lists: Sequence[ListModel], start: float) -> None:
        longest = max((lm.no_answer_timeout for lm in lists), default=30.0) + TRANSFER_DELAY
        self.span = longest
        self.longest_answer = 0.0  # s, the longest dial-to-live-answer time seen
        self.count = 0
        size = self.size = int(longest) + 4 + AGE_STEP
        self.by_second = [0] * size
        self.dialed_by_second = [0] * size
        self.live_by_second = [0] * size
        self.aged = math.floor(start) - 1  # the last dial second aged out of the rings
        self.next_aging = start  # when age() has work to do next
        self.cohort_attempts = 0
        self.cohort_lives = 0
        self.ended_at_age = [0] * size
        self.live_at_age = [0] * size
        self.live_chance = array("d", [PRIOR_HIT_RATIO]) * size
        self.next_chance_update = start

    def age(self, t: float) -> int:
        """Age out the dial seconds older than ``span`` at t; the young calls left."""
        last = int(t - self.span) - 1
        aged = self.aged
        if last > aged:
            ring, dials, lives = self.by_second, self.dialed_by_second, self.live_by_second
            size = self.size
            young = self.count
            for k in range(max(aged + 1, last - size + 1), last + 1):
                i = k % size
                young -= ring[i]
                self.cohort_attempts += dials[i]
                self.cohort_lives += lives[i]
                ring[i] = dials[i] = lives[i] = 0
            self.count = young
            self.aged = last
        self.next_aging = self.span + last + 1 + AGE_STEP
        return self.count

    def fit_span(self) -> None:
        """Follow the longest answer time seen (once enough attempts are known)."""
        self.span = min(self.longest_answer, self.size - 3.0 - AGE_STEP)
        self.next_aging = self.span + self.aged + 1 + AGE_STEP

    def cancel(self, dialed: float) -> None:
        """A call dialed at ``dialed`` is cancelled: it never was."""
        second = int(dialed)
        if second > self.aged:
            self.count -= 1
            self.by_second[second % self.size] -= 1
            self.dialed_by_second[second % self.size] -= 1

    def expected_lives(self, t: float) -> float:
        """Live answers expected from the young calls, by the learned chance at their age."""
        if t >= self.next_chance_update:
            self.learn_chances(t)
        now_s = int(t)
        ring, chance, size = self.by_second, self.live_chance, self.size
        total = 0.0
        for second in range(self.aged + 1, now_s + 1):
            calls = ring[second % size]
            if calls:
                total += calls * chance[now_s - second]
        return total

    def learn_chances(self, t: float) -> None:
        """live_chance[a]: of the attempts that ended at age a or later, the share live."""
        self.next_chance_update = t + AGE_LEARN_STEP
        ended, lives, chance = self.ended_at_age, self.live_at_age, self.live_chance
        if sum(ended) < HISTORY_LENGTH:
            return
        s_end = s_live = 0.0
        for age in range(self.size - 1, -1, -1):
            s_end += ended[age]
            s_live += lives[age]
            chance[age] = s_live / s_end if s_end else 0.0
        if s_end > AGE_HISTORY:  # forget slowly
            for age in range(self.size):
                ended[age] //= 2
                lives[age] //= 2


class Pacing:
    """What predictive pacing has learned, and its gain g, learned by integral control.

    The estimates (``hit_ratio`` p, ``answer_time`` T, ``handle_time`` H) are ratios of
    sums that decay with ``LEARN_TIME`` and start from the priors. The gain moves every
    ``CONTROL_STEP`` by the error against the goal over the step, measured from the
    counters marked at the step before (``marks``); it does not wind up while the lists
    cannot supply records. The dialer reads ``gain_over_hit_ratio`` (g / p) and
    ``answer_over_handle`` (T / H), updated at each step. A dial-mode change keeps
    everything learned: :meth:`configure` sets the goal and the servers only.
    """

    __slots__ = (
        "_counts",
        "_records",
        "_young",
        "abandon_grace",
        "answer_over_handle",
        "answer_time",
        "at_least_progressive",
        "gain",
        "gain_over_hit_ratio",
        "goal",
        "handle_time",
        "hit_ratio",
        "last_control",
        "log_gain",
        "marks",
        "method",
        "next_control",
        "servers",
        "small_group",
        "sum_answer_seconds",
        "sum_answers",
        "sum_attempts",
        "sum_busy_seconds",
        "sum_handles",
        "sum_lives",
    )

    def __init__(
        self,
        young: YoungCalls,
        counts: Counters,
        records: Records,
        servers: ServerPool,
        start: float,
    ) -> None:
        self._young = young
        self._counts = counts
        self._records = records
        self.servers = servers  # the pool the dial mode sends live answers to
        self.method = OptimizeBy.BUSY_FACTOR
        self.goal = 0.85
        self.small_group = False  # the small-group variant runs (see the package docstring)
        # with the overdial-rate and distribution-time methods, never dial fewer calls
        # than progressive would
        self.at_least_progressive = False
        self.abandon_grace = ABANDON_GRACE  # s a live answer waits for a server
        self.log_gain = math.log(G_START)
        self.gain = G_START
        self.gain_over_hit_ratio = G_START / PRIOR_HIT_RATIO
        self.answer_over_handle = PRIOR_ANSWER_TIME / PRIOR_HANDLE_TIME
        # decaying sums behind the estimates, starting from the priors
        self.sum_attempts = PRIOR_ATTEMPTS
        self.sum_lives = PRIOR_ATTEMPTS * PRIOR_HIT_RATIO
        self.sum_answer_seconds = PRIOR_ANSWERS * PRIOR_ANSWER_TIME
        self.sum_answers = PRIOR_ANSWERS
        self.sum_busy_seconds = PRIOR_HANDLES * PRIOR_HANDLE_TIME
        self.sum_handles = PRIOR_HANDLES
        self.hit_ratio = PRIOR_HIT_RATIO
        self.answer_time = PRIOR_ANSWER_TIME
        self.handle_time = PRIOR_HANDLE_TIME
        self.next_control = start
        self.last_control = start
        self.marks: Marks = (0.0, 0, 0, 0, 0, 0.0, 0, 0.0, 0)
        self.mark(start)

    def configure(self, method: OptimizeBy, goal: float, servers: ServerPool, t: float) -> None:
        """A dial mode starts at t: its goal (see ``optimization``) and its servers."""
        self.method = method
        self.goal = goal
        self.servers = servers
        self.abandon_grace = ABANDON_GRACE
        if method == OptimizeBy.AVERAGE_DISTRIBUTION_TIME:
            self.abandon_grace = max(ABANDON_GRACE, ADT_QUEUE_FACTOR * goal)
        self.small_group = servers.capacity <= SMALL_GROUP_SIZE
        self.at_least_progressive = method in (
            OptimizeBy.OVERDIAL_RATE,
            OptimizeBy.AVERAGE_DISTRIBUTION_TIME,
        )
        self.mark(t)

    def mark(self, t: float) -> None:
        """Remember the counters the next control step measures from."""
        self.last_control = t
        self.next_control = t + CONTROL_STEP
        young, counts = self._young, self._counts
        self.marks = (
            self.servers.busy_seconds(t),
            young.cohort_attempts,
            young.cohort_lives,
            sum(counts.live_answers),
            counts.abandoned + counts.dropped,
            counts.queue_wait_seconds,
            counts.connected,
            counts.answer_seconds,
            counts.handles,
        )

    def control(self, t: float) -> None:
        """Learn the estimates and move the gain towards the optimization goal."""
        young, counts = self._young, self._counts
        young.age(t)
        dt = t - self.last_control
        area0, cohort_att0, cohort_live0, live0, over0, wait0, conn0, answer0, handles0 = self.marks
        d_live = sum(counts.live_answers) - live0
        d_area = self.servers.busy_seconds(t) - area0
        d_over = counts.abandoned + counts.dropped - over0
        # estimates: exponentially decaying sums that start from the priors
        decay = math.exp(-dt / LEARN_TIME)
        self.sum_attempts = self.sum_attempts * decay + (young.cohort_attempts - cohort_att0)
        self.sum_lives = self.sum_lives * decay + (young.cohort_lives - cohort_live0)
        self.sum_answer_seconds = self.sum_answer_seconds * decay + (
            counts.answer_seconds - answer0
        )
        self.sum_answers = self.sum_answers * decay + d_live
        # handle time: busy time (finished and running handles) per finished handle, the
        # estimate of an exponential mean that is not biased by short handles ending first
        self.sum_busy_seconds = self.sum_busy_seconds * decay + d_area
        self.sum_handles = self.sum_handles * decay + (counts.handles - handles0)
        self.hit_ratio = max(0.01, self.sum_lives / self.sum_attempts)
        self.answer_time = self.sum_answer_seconds / self.sum_answers
        self.handle_time = max(1.0, self.sum_busy_seconds / self.sum_handles)
        if young.cohort_attempts >= HISTORY_LENGTH:
            young.fit_span()
        d_wait = counts.queue_wait_seconds - wait0
        step = self._gain_step(dt, d_area, d_live, d_over, counts.connected - conn0, d_wait)
        if (step > 0 and self._records.starved) or young.cohort_attempts < HISTORY_LENGTH:
            step = 0.0  # no wind-up while the lists cannot keep up, nor while learning
        log_gain = self.log_gain + step
        log_gain = min(max(log_gain, LOG_G_MIN), LOG_G_MAX)
        self.log_gain = log_gain
        self.gain = math.exp(log_gain)
        self.gain_over_hit_ratio = self.gain / self.hit_ratio
        self.answer_over_handle = self.answer_time / self.handle_time
        self.mark(t)

    def _gain_step(
        self, dt: float, d_area: float, d_live: int, d_over: int, d_conn: int, d_wait: float
    ) -> float:
        """The log-gain change for the error against the goal over the last step.

        The differences are over the step: busy server-seconds, live answers, abandoned
        and dropped calls, connected calls, and seconds the connected calls waited.
        """
        cap = self.servers.capacity
        if cap <= 0:
            return 0.0
        method = self.method
        goal = self.goal
        if method == OptimizeBy.BUSY_FACTOR:
            return K_BUSY * (goal * dt - d_area / cap)
        if method == OptimizeBy.AVERAGE_WAITING_TIME:
            idle = cap * dt - d_area
            return K_BUSY * (idle - goal * d_conn) / cap
        if method == OptimizeBy.OVERDIAL_RATE:
            per_call = K_ABANDON / max(cap, MIN_STEP_AGENTS)
            return per_call * (goal * d_live - d_over)
        if method == OptimizeBy.AVERAGE_DISTRIBUTION_TIME:
            # answered calls: distributed ones count their wait, abandoned ones the grace
            answered = d_conn + d_over
            waited = d_wait + self.abandon_grace * d_over
            return K_DISTRIBUTION / cap * (goal * answered - waited) / max(goal, 1.0)
        return 0.0
