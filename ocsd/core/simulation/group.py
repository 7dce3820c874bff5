"""Seeded discrete-event simulation of outbound dialing for one Campaign Group.

Pure: the caller passes simulated time (``advance(now)``) and the random generator;
nothing here reads a clock, logs or does I/O. Events are plain tuples on one heap,
agents and records are counts (no object per agent, record or call), and the windowed
statistics of spec section 3 are differences of cumulative counters recorded at the
boundaries of the window's buckets (``ocsd.core.statistics.SnapshotRing``), so ``statistics(now)``
costs O(calling lists), whatever the traffic.

[ocsd decisions], each with its constant below so it can be changed in one place:

* Outcome of a dial attempt, drawn when it is dialed from its calling list's mix:
  live answer, answering machine, busy, or no answer (the rest). A live or machine
  answer comes after ring-time x uniform(0.5, 1.5) seconds (at most no-answer-timeout);
  busy ends after BUSY_SIGNAL_TIME; no answer after no-answer-timeout.
* A live answer reaches the agents' queue TRANSFER_DELAY seconds after the answer
  (call-progress detection and transfer). The "with seizing" variants and the GVP
  modes connect at once (the agent, or the IVR port, is already on the line): that is
  the only difference between a mode and its seizing variant.
* A live answer that finds no ready agent waits ABANDON_GRACE seconds; if no agent
  frees up by then it is abandoned: an overdial. With optimize-by
  average-distribution-time calls may wait ADT_QUEUE_FACTOR x goal (at least the grace).
* Records: a live answer connected to an agent finishes its record. Answering
  machine, busy, no answer and abandoned calls are redialed after the list's
  redial-delay, up to max-attempts dial attempts in all; the last failed attempt
  finishes the record. Due redials go before fresh records; lists take turns (round
  robin over the lists with a record ready). A list drains when every record is
  finished; ``exhausted`` is every list drained and no call in progress.
* Agents: talk time is exponential with mean talk-time, wrap-up uniform on
  [0.5, 1.5] x wrap-up-time; the busy factor counts talk + wrap-up; agents are logged
  in from the group's first start (stopping does not log them out, so the busy factor
  falls while a group is stopped). GVP modes have no agents: live answers go to
  ``ports`` IVR ports (exponential talk-time, no wrap-up); the busy factor is null.
* Stop (``set_dialing(None)``): no new dial; calls in progress (and a record an agent
  is previewing, which goes back undialed) finish normally. ``drop_calls`` (force
  unload) also stops dialing, cancels the calls dialing (their records go back, the
  attempt does not count), counts the live answers waiting for an agent as dropped
  (overdial rate) and ends the connected calls at once (their agents go to wrap-up).
* Progressive: one call in progress per ready agent (ready agents - queued calls -
  calls dialing). Power: lines-per-agent calls per ready agent. Preview / push
  preview: a ready agent takes a record, reads it for PREVIEW_TIME /
  PUSH_PREVIEW_TIME seconds and dials it himself, so no call can be overdialed (a
  non-live outcome frees the agent at once).
* Predictive pacing keeps n = g x A / p "young" calls dialing: calls dialed less than
  the longest dial-to-answer time seen ago (older ones can no longer be live, so they
  do not count). p is the learned hit ratio (from attempts whose outcome is known for
  sure, so quick busy tones do not bias it), A = ready agents - queued calls + busy
  agents x T / H the agents expected to be free when a call dialed now is answered
  (T the learned dial-to-answer time, H the learned handle time), and g a gain learned
  by integral control towards the goal: busy factor (agent busy time against goal x
  agent time), overdial rate (goal x live answers against abandoned calls: an abandon
  budget, so the long-run rate converges to the goal), average waiting time (the
  agents' wait for a call: idle agent time against goal x connected calls) or average
  distribution time (the customers' wait for an agent: goal x answered calls against
  the time they waited, an abandoned call counting its whole wait). Estimates decay
  with LEARN_TIME, g is updated every CONTROL_STEP and bounded to [G_MIN, G_MAX], and
  it does not wind up while the lists cannot supply records. Until HISTORY_LENGTH
  attempts are known a predictive group dials progressively (like the product's
  history_length). With the overdial-rate and distribution-time methods it never
  dials fewer calls than progressive would (progressive cannot overdial), so it never
  idles agents to pay back an abandon. A dial-mode change keeps counts, lists and
  everything learned (g included).
* Small groups (at most SMALL_GROUP_SIZE agents or ports): one abandoned call moves a
  windowed overdial rate by several points, so no pacing decision ever looks at a
  windowed rate (g integrates counts, and one abandon moves log g by at most
  K_ABANDON / MIN_STEP_AGENTS); and the young calls are not counted as p each but by
  the learned chance that a call still dialing at its age ends live (a small group
  has a handful of calls dialing, whose ages matter: three fresh calls are about one
  live answer, three calls ringing for 15 s almost none).
"""

from __future__ import annotations

import math
import random
from array import array
from dataclasses import dataclass
from heapq import heapify, heappop, heappush

from ocsd.core.genesys import GVP_MODES, SEIZING_MODES, DialMode, OptimizeBy
from ocsd.core.lifecycle import Dialing
from ocsd.core.statistics import (
    GroupStatistics,
    ListStatistics,
    SnapshotRing,
    group_statistics,
    list_statistics,
    ratio,
    time_to_complete,
)

# -- model constants [ocsd decision] -----------------------------------------------------

ABANDON_GRACE = 2.0  # s a live answer waits for a free agent before it is abandoned
TRANSFER_DELAY = 1.0  # s from live answer to the agents' queue (transfer modes only)
BUSY_SIGNAL_TIME = 3.0  # s until a busy line ends the attempt
PREVIEW_TIME = 10.0  # s an agent reads a record before dialing it (preview)
PUSH_PREVIEW_TIME = 5.0  # s the same for a pushed record (push preview)
ADT_QUEUE_FACTOR = 4.0  # average-distribution-time: calls may wait goal x this

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

# Event kinds. An event is (time, seq, kind, a, b, x):
#   LIVE, RESULT (+ _ENGAGED: an agent dialed it in a preview mode):
#                          a = list, b = attempt, x = dial time
#   ABANDON:               a = list, b = attempt, x = answer time; seq = waiting call id
#   WRAP_END:              an agent's call (talk, then wrap-up) ends; x = end of the talk
#   TALK_END:              an IVR port's call ends; x = connect time
#   PREVIEW_DIAL:          a = list, b = attempt, x = 0
#   WAKE:                  a redial falls due while the lists had no record ready
_LIVE = 0
_RESULT = 1
_WRAP_END = 2
_TALK_END = 3
_ABANDON = 4
_WAKE = 5
_LIVE_ENGAGED = 6
_RESULT_ENGAGED = 7
_PREVIEW_DIAL = 8

Event = tuple[float, int, int, int, int, float]
#: A snapshot of the cumulative counters at a window boundary is _SNAP_HEAD numbers
#: (time, agent busy seconds, abandoned + dropped calls), then per list the finished
#: attempts, then per list the live answers, then per list the finished records.
_SNAP_HEAD = 3
#: Redials consumed from the head of a list's queue before the arrays are compacted.
_COMPACT = 32

# Dialing kinds and server pools.
_NONE, _PREDICTIVE, _PROGRESSIVE, _POWER, _PREVIEW = range(5)
_AGENTS, _PORTS = 0, 1

_KIND_OF_MODE = {
    DialMode.NONE: _NONE,
    DialMode.PREDICTIVE: _PREDICTIVE,
    DialMode.PREDICTIVE_WITH_SEIZING: _PREDICTIVE,
    DialMode.PREDICTIVE_GVP: _PREDICTIVE,
    DialMode.PROGRESSIVE: _PROGRESSIVE,
    DialMode.PROGRESSIVE_WITH_SEIZING: _PROGRESSIVE,
    DialMode.PROGRESSIVE_GVP: _PROGRESSIVE,
    DialMode.POWER: _POWER,
    DialMode.POWER_WITH_SEIZING: _POWER,
    DialMode.POWER_GVP: _POWER,
    DialMode.PREVIEW: _PREVIEW,
    DialMode.PUSH_PREVIEW: _PREVIEW,
}


#: Dialing of a model built without one (the settings' defaults).
DEFAULT_DIALING = Dialing(DialMode.PREDICTIVE, OptimizeBy.BUSY_FACTOR, 80)


# -- the model -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListModel:
    """One calling list: its records and the outcome mix of a dial attempt."""

    name: str
    dbid: int
    records: int = 1000
    live_answer_rate: float = 0.30
    answering_machine_rate: float = 0.15
    busy_rate: float = 0.10
    ring_time: float = 12.0
    no_answer_timeout: float = 30.0
    max_attempts: int = 3
    redial_delay: float = 900.0

    def __post_init__(self) -> None:
        rates = (self.live_answer_rate, self.answering_machine_rate, self.busy_rate)
        if min(rates) < 0 or sum(rates) > 1.0 + 1e-9:
            raise ValueError(f"calling list {self.name!r}: outcome rates must be >= 0, sum <= 1")
        if self.records < 0 or self.max_attempts < 1:
            raise ValueError(f"calling list {self.name!r}: records >= 0, max-attempts >= 1")
        if self.ring_time <= 0 or self.no_answer_timeout <= 0 or self.redial_delay < 0:
            raise ValueError(f"calling list {self.name!r}: times must be positive")

    @property
    def no_answer_rate(self) -> float:
        return max(0.0, 1.0 - self.live_answer_rate - self.answering_machine_rate - self.busy_rate)


@dataclass(frozen=True, slots=True)
class GroupModel:
    """One Campaign Group: its agents (ports), their handle times and its calling lists."""

    name: str
    dbid: int
    lists: tuple[ListModel, ...]
    agents: int = 10
    talk_time: float = 180.0
    wrap_up_time: float = 30.0
    lines_per_agent: float = 2.0
    ports: int = 30
    dialing: Dialing = DEFAULT_DIALING

    def __post_init__(self) -> None:
        if self.agents < 0 or self.ports < 0:
            raise ValueError(f"campaign group {self.name!r}: agents and ports must be >= 0")
        if self.talk_time <= 0 or self.wrap_up_time < 0 or self.lines_per_agent <= 0:
            raise ValueError(f"campaign group {self.name!r}: times and lines must be positive")

    @property
    def records(self) -> int:
        return sum(lm.records for lm in self.lists)


@dataclass(frozen=True, slots=True)
class Totals:
    """Cumulative counts since the simulation began (not windowed)."""

    dial_attempts: int  # dialed (including those still in progress)
    finished_attempts: int
    live_answers: int
    abandoned: int
    dropped: int
    connected: int
    records_finished: int
    records_remaining: int
    agent_busy_seconds: float  # agent time on calls: talk + wrap-up
    agent_logged_seconds: float  # logged-in agent time since the first start
    queue_wait_seconds: float  # time connected live answers waited for an agent
    list_finished_attempts: tuple[int, ...] = ()  # per calling list, in model order
    list_live_answers: tuple[int, ...] = ()

    @property
    def hit_ratio(self) -> float | None:
        return ratio(self.live_answers, self.finished_attempts)

    @property
    def overdial_rate(self) -> float | None:
        return ratio(self.abandoned + self.dropped, self.live_answers)

    @property
    def busy_factor(self) -> float | None:
        return ratio(self.agent_busy_seconds, self.agent_logged_seconds)


# -- the simulation ------------------------------------------------------------------------


class GroupSimulation:
    """Dialing of one Campaign Group in simulated time; see the module docstring."""

    # One running group's state is a few hundred numbers: __slots__ (no per-group
    # __dict__), arrays rather than lists of boxed numbers where they are long-lived.
    __slots__ = (
        "_a_area", "_a_busy", "_a_cap", "_a_occ", "_a_t", "_abandoned", "_age_next", "_aged",
        "_ans_max", "_ans_sum", "_att", "_cohort_att", "_cohort_live", "_connects", "_ctl",
        "_ctl_next", "_ctl_t", "_delay", "_dial_ring", "_dialing", "_dials", "_dropped",
        "_end_age", "_est_h", "_est_p", "_est_t", "_fin", "_first_start", "_floor", "_fresh",
        "_g", "_g_p", "_goal", "_grace", "_handles", "_heap", "_inflight", "_kind",
        "_last_pool", "_list_ids", "_live", "_live_age", "_live_ring", "_logg", "_max_att",
        "_method", "_next_roll", "_nlists", "_now", "_outcomes", "_p_area", "_p_busy",
        "_p_cap", "_p_t", "_pool", "_preview_kind", "_preview_time", "_q", "_q_next",
        "_r_att", "_r_due", "_r_head", "_rand", "_records", "_redial", "_ring_snap", "_rr",
        "_s_ans", "_s_answers", "_s_area", "_s_att", "_s_handles", "_s_live", "_seq",
        "_small", "_starved", "_t_h", "_talk", "_talk_ends", "_total_records", "_wait_sum",
        "_waiting", "_wake_at", "_window", "_wrap", "_young", "_young_ring", "_young_span",
        "_ysize", "model",
    )  # fmt: skip

    def __init__(
        self, model: GroupModel, rng: random.Random, start: float = 0.0, window: float = 300.0
    ) -> None:
        if window <= 0:
            raise ValueError("the statistics window must be positive")
        self.model = model
        self._rand = rng.random
        self._now = start
        self._heap: list[Event] = []
        self._seq = 0
        lists = model.lists
        nl = len(lists)
        self._nlists = nl
        self._list_ids = tuple((lm.name, lm.dbid) for lm in lists)
        self._records = [lm.records for lm in lists]
        self._fresh = [lm.records for lm in lists]
        # records waiting for a redial, per list: a FIFO of due times and one of attempt
        # numbers (the redial delay is the same for every record of a list, so they come
        # in due order), consumed from _r_head[list]; arrays, not (float, int) tuples: 9
        # bytes a waiting record instead of ~90
        self._r_due = [array("d") for _ in lists]
        self._r_att = [array("B" if lm.max_attempts < 256 else "q") for lm in lists]
        self._r_head = [0] * nl
        self._wake_at = math.inf  # a _WAKE event is scheduled for then
        self._total_records = sum(self._records)
        self._rr = 0
        self._max_att = [lm.max_attempts for lm in lists]
        self._redial = [lm.redial_delay for lm in lists]
        # cumulative counters (the statistics are their windowed differences)
        self._dials = 0
        self._att = [0] * nl  # finished attempts per list
        self._live = [0] * nl  # live answers per list
        self._fin = [0] * nl  # finished records per list
        self._abandoned = 0
        self._dropped = 0
        self._connects = 0
        self._wait_sum = 0.0  # s live answers waited before an agent took them
        self._ans_sum = 0.0  # s from dial to live answer, summed
        self._handles = 0
        # calls in progress
        self._inflight = 0  # dialing or ringing
        # calls dialing for less than the longest answer time seen ("young"), counted per
        # dial second in a ring, so predictive pacing ignores calls that can no longer be live
        longest = max((lm.no_answer_timeout for lm in lists), default=30.0) + TRANSFER_DELAY
        self._young_span = longest
        self._ans_max = 0.0
        self._young = 0
        ysize = self._ysize = int(longest) + 4 + AGE_STEP
        # (lists of small ints, not arrays: they are read and written on every event, and
        # an array's boxing costs ~8 % of advance for ~0.7 KiB a group)
        self._young_ring = [0] * ysize  # young calls dialing, per dial second
        self._dial_ring = [0] * ysize  # calls dialed, per dial second
        self._live_ring = [0] * ysize  # of which live answers, per dial second
        self._aged = math.floor(start) - 1  # the last dial second aged out of the ring
        self._age_next = start  # when _age has work to do next
        # attempts (and their live answers) whose dial second aged out: a sample of the hit
        # ratio free of the bias of quick outcomes (busy) being known first
        self._cohort_att = 0
        self._cohort_live = 0
        # ages (s) at which attempts ended, and ended live; the small-group variant learns
        # from them the chance that a call still dialing at age a will be live: q[a]
        self._end_age = [0] * ysize
        self._live_age = [0] * ysize
        self._q = array("d", [PRIOR_HIT_RATIO]) * ysize
        self._q_next = start
        self._waiting: dict[int, tuple[int, int, float]] = {}  # id -> (list, attempt, answer t)
        # agents (pool 0) and IVR ports (pool 1)
        self._a_cap = model.agents
        self._a_occ = 0  # not ready: previewing, talking or in wrap-up
        self._a_busy = 0  # talking or in wrap-up (busy factor)
        self._talk_ends: list[float] = []  # heap: when the agents' talking calls end
        self._a_area = 0.0  # agent-seconds of talk + wrap-up
        self._a_t = start
        self._p_cap = model.ports
        self._p_busy = 0
        self._p_area = 0.0
        self._p_t = start
        self._talk = model.talk_time
        self._wrap = model.wrap_up_time
        # dialing
        self._dialing: Dialing | None = None
        self._kind = _NONE
        self._pool = _AGENTS
        self._last_pool = _AGENTS
        self._preview_kind = False  # the last mode run was a preview mode
        self._delay = TRANSFER_DELAY
        self._outcomes = self._outcome_table()
        self._grace = ABANDON_GRACE
        self._preview_time = PREVIEW_TIME
        self._starved = False
        self._first_start: float | None = None
        # predictive pacing: learned estimates and gain
        self._method = OptimizeBy.BUSY_FACTOR
        self._goal = 0.85
        self._small = False
        self._floor = False
        self._logg = math.log(G_START)
        self._g = G_START
        self._g_p = G_START / PRIOR_HIT_RATIO  # g / p
        self._t_h = PRIOR_ANSWER_TIME / PRIOR_HANDLE_TIME  # T / H
        # decaying sums behind the estimates, starting from the priors
        self._s_att = PRIOR_ATTEMPTS
        self._s_live = PRIOR_ATTEMPTS * PRIOR_HIT_RATIO
        self._s_ans = PRIOR_ANSWERS * PRIOR_ANSWER_TIME
        self._s_answers = PRIOR_ANSWERS
        self._s_area = PRIOR_HANDLES * PRIOR_HANDLE_TIME
        self._s_handles = PRIOR_HANDLES
        self._est_p = PRIOR_HIT_RATIO
        self._est_t = PRIOR_ANSWER_TIME
        self._est_h = PRIOR_HANDLE_TIME
        self._ctl_next = start
        self._ctl_t = start
        self._ctl: tuple[float, int, int, int, int, float, int, float, int] = (
            0.0, 0, 0, 0, 0, 0.0, 0, 0.0, 0
        )  # fmt: skip
        self._ctl_mark(start)
        # statistics window: 60 buckets of window/60 seconds, snapshots in one flat array
        self._window = window
        initial = [start, 0.0, 0.0] + [0.0] * (3 * nl)
        self._ring_snap = SnapshotRing(start, window, initial)
        self._next_roll = self._ring_snap.next_boundary

    # -- public API --------------------------------------------------------------------

    @property
    def now(self) -> float:
        return self._now

    @property
    def dialing(self) -> Dialing | None:
        return self._dialing

    @property
    def window(self) -> float:
        """Seconds of simulated time the statistics cover."""
        return self._window

    @property
    def calls_in_progress(self) -> int:
        """Calls dialing, ringing, waiting for an agent or connected; wrap-up is not a call."""
        ends = self._talk_ends
        while ends and ends[0] <= self._now:
            heappop(ends)
        return self._inflight + len(self._waiting) + len(ends) + self._p_busy

    @property
    def exhausted(self) -> bool:
        """No record left to dial now or later (redials included) and no call in progress."""
        return self.records_remaining == 0 and self.calls_in_progress == 0

    @property
    def records_remaining(self) -> int:
        """Records not finished yet: to dial, waiting for a redial, or on a call."""
        return self._total_records - sum(self._fin)

    @property
    def agents_ready(self) -> int:
        """Agents waiting for a call (not previewing, talking or in wrap-up)."""
        return self._a_cap - self._a_occ

    @property
    def agents_busy(self) -> int:
        """Agents talking or in wrap-up (what the busy factor counts)."""
        return self._a_busy

    def set_dialing(self, dialing: Dialing | None, now: float) -> None:
        """Start, switch or stop (None) dialing; counts, learning and lists are kept."""
        self.advance(now)
        now = self._now
        if dialing is None:
            self._dialing = None
            self._kind = _NONE
            return
        dialing = dialing.effective()
        self._dialing = dialing
        mode = dialing.mode
        self._kind = _KIND_OF_MODE[mode]
        if self._kind == _NONE:
            self._dialing = None
            return
        if self._first_start is None:
            self._first_start = now
        self._pool = _PORTS if mode in GVP_MODES else _AGENTS
        self._last_pool = self._pool
        self._preview_kind = self._kind == _PREVIEW
        self._preview_time = PUSH_PREVIEW_TIME if mode == DialMode.PUSH_PREVIEW else PREVIEW_TIME
        self._delay = 0.0 if (mode in SEIZING_MODES or mode in GVP_MODES) else TRANSFER_DELAY
        self._outcomes = self._outcome_table()
        method = dialing.optimize_by if self._kind == _PREDICTIVE else OptimizeBy.NONE
        goal = float(dialing.optimize_goal)
        if method == OptimizeBy.NONE and self._kind == _PREDICTIVE:
            method, goal = OptimizeBy.BUSY_FACTOR, 85.0
        if method in (OptimizeBy.BUSY_FACTOR, OptimizeBy.OVERDIAL_RATE):
            goal /= 100.0
        self._method = method
        self._goal = goal
        self._grace = ABANDON_GRACE
        if method == OptimizeBy.AVERAGE_DISTRIBUTION_TIME:
            self._grace = max(ABANDON_GRACE, ADT_QUEUE_FACTOR * goal)
        cap = self._p_cap if self._pool == _PORTS else self._a_cap
        self._small = cap <= SMALL_GROUP_SIZE
        self._floor = method in (OptimizeBy.OVERDIAL_RATE, OptimizeBy.AVERAGE_DISTRIBUTION_TIME)
        self._ctl_mark(now)
        self._pace(now)

    def advance(self, now: float) -> None:
        """Process every event up to simulated time ``now`` (which never goes back)."""
        if now < self._now:
            return
        heap = self._heap
        rand = self._rand
        log = math.log
        att, end_age, young_ring, ysize = self._att, self._end_age, self._young_ring, self._ysize
        small = self._small  # only the small-group variant learns from the ages
        max_att, r_due, r_att, redial = self._max_att, self._r_due, self._r_att, self._redial
        talk_ends = self._talk_ends
        while heap and heap[0][0] <= now:
            t, seq, kind, a, b, x = heappop(heap)
            if t >= self._next_roll:
                self._roll(t)
            if kind == _RESULT:
                self._inflight -= 1
                if small:
                    end_age[int(t - x)] += 1
                att[a] += 1
                if b < max_att[a]:  # redial later (see _failed)
                    r_due[a].append(t + redial[a])
                    r_att[a].append(b + 1)
                else:
                    self._fin[a] += 1
                if int(x) > self._aged:
                    self._young -= 1
                    young_ring[int(x) % ysize] -= 1
                    self._pace(t)
                elif self._kind != _PREDICTIVE:
                    self._pace(t)  # predictive pacing counts young calls only
            elif kind == _LIVE:
                self._inflight -= 1
                if small:
                    end_age[int(t - x)] += 1
                    self._live_age[int(t - x)] += 1
                if int(x) > self._aged:
                    self._young -= 1
                    self._young_ring[int(x) % self._ysize] -= 1
                    self._live_ring[int(x) % self._ysize] += 1
                else:
                    self._cohort_live += 1
                if t - x > self._ans_max:
                    self._ans_max = t - x
                self._att[a] += 1
                self._live[a] += 1
                self._ans_sum += t - x
                if self._pool == _AGENTS and self._a_occ < self._a_cap:
                    self._a_area += self._a_busy * (t - self._a_t)
                    self._a_t = t
                    self._a_occ += 1
                    self._a_busy += 1
                    self._fin[a] += 1
                    self._connects += 1
                    # one event for talk + wrap-up; the talk's end goes on the talk heap
                    end = t - log(1.0 - rand()) * self._talk
                    heappush(talk_ends, end)
                    self._seq += 1
                    heappush(
                        heap, (end + self._wrap * (0.5 + rand()), self._seq, _WRAP_END, 0, 0, end)
                    )
                elif self._pool == _PORTS and self._p_busy < self._p_cap:
                    self._connect(t, a, _PORTS)
                else:
                    self._seq += 1
                    self._waiting[self._seq] = (a, b, t)
                    heappush(heap, (t + self._grace, self._seq, _ABANDON, a, b, t))
                self._pace(t)
            elif kind == _WRAP_END:
                while talk_ends and talk_ends[0] <= t:  # bounded even if nobody reads it
                    heappop(talk_ends)
                self._a_area += self._a_busy * (t - self._a_t)
                self._a_t = t
                self._a_busy -= 1
                self._a_occ -= 1
                self._handles += 1
                if self._waiting:
                    self._serve(t, _AGENTS)
                self._pace(t)
            elif kind == _TALK_END:  # an IVR port's call ends
                self._p_area += self._p_busy * (t - self._p_t)
                self._p_t = t
                self._p_busy -= 1
                self._handles += 1
                if self._waiting:
                    self._serve(t, _PORTS)
                self._pace(t)
            elif kind == _ABANDON:
                if self._waiting.pop(seq, None) is not None:
                    self._abandoned += 1
                    self._failed(t, a, b)
                    self._pace(t)
            elif kind == _WAKE:
                if t >= self._wake_at:
                    self._wake_at = math.inf
                self._pace(t)
            elif kind == _LIVE_ENGAGED:
                self._inflight -= 1
                self._att[a] += 1
                self._live[a] += 1
                self._ans_sum += t - x
                self._a_area += self._a_busy * (t - self._a_t)
                self._a_t = t
                self._a_busy += 1
                self._fin[a] += 1
                self._connects += 1
                end = t - log(1.0 - rand()) * self._talk
                heappush(talk_ends, end)
                self._seq += 1
                heappush(heap, (end + self._wrap * (0.5 + rand()), self._seq, _WRAP_END, 0, 0, end))
            elif kind == _RESULT_ENGAGED:
                self._inflight -= 1
                self._att[a] += 1
                self._a_occ -= 1
                self._failed(t, a, b)
                self._pace(t)
            else:  # _PREVIEW_DIAL
                if self._kind == _PREVIEW:
                    self._launch(t, a, b)
                else:  # dialing stopped (or left preview) while the agent read the record
                    self._a_occ -= 1
                    self._give_back(t, a, b)
                    self._pace(t)
        if now >= self._next_roll:
            self._roll(now)
        self._now = now

    def drop_calls(self, now: float) -> None:
        """Force unload: dialing stops and every call in progress ends now.

        Calls dialing or ringing are cancelled (their records go back, the attempt does
        not count); live answers waiting for an agent are dropped (they count in the
        overdial rate and are redialed by the redial rule); connected calls end now and
        their agents go to wrap-up.
        """
        self.advance(now)
        now = self._now
        self._dialing = None
        self._kind = _NONE
        kept: list[Event] = []
        ended = 0
        talking = 0
        for event in self._heap:
            kind = event[2]
            if kind in (_LIVE, _RESULT, _LIVE_ENGAGED, _RESULT_ENGAGED):
                self._inflight -= 1
                if kind in (_LIVE_ENGAGED, _RESULT_ENGAGED):
                    self._a_occ -= 1
                elif int(event[5]) > self._aged:
                    self._young -= 1
                    self._young_ring[int(event[5]) % self._ysize] -= 1
                    self._dial_ring[int(event[5]) % self._ysize] -= 1
                self._give_back(now, event[3], event[4])
            elif kind == _ABANDON:
                if self._waiting.pop(event[1], None) is not None:
                    self._dropped += 1
                    self._failed(now, event[3], event[4])
            elif kind == _TALK_END:
                ended += 1
            elif kind == _WRAP_END and event[5] > now:
                talking += 1  # the agent is still talking: the call ends now, wrap-up follows
            else:
                kept.append(event)
        self._waiting.clear()
        self._talk_ends.clear()
        self._heap = kept
        for _ in range(ended):
            self._seq += 1
            kept.append((now, self._seq, _TALK_END, _PORTS, 0, now))
        for _ in range(talking):
            self._seq += 1
            kept.append((now + self._wrap * (0.5 + self._rand()), self._seq, _WRAP_END, 0, 0, now))
        heapify(kept)
        self.advance(now)

    def statistics(self, now: float) -> GroupStatistics:
        """The statistics of spec section 3 over the window ending at ``now``.

        Called for every notification of every group, so the usual case (one calling
        list) is written out flat: no helper calls, comprehensions or keyword arguments,
        and the fast constructors of ``ocsd.core.statistics``. The values are those of
        ``ocsd.core.statistics.ratio`` and ``ocsd.core.statistics.time_to_complete``, bit for bit.
        """
        heap = self._heap
        if now != self._now or now >= self._next_roll or (heap and heap[0][0] <= now):
            self.advance(now)  # (the checks skip the call when advance has nothing to do)
        now = self._now
        ring = self._ring_snap
        data = ring.data
        o = ring.base
        t0 = data[o]
        first = self._first_start
        since = t0 if first is None or first <= t0 else first
        span = now - since
        # busy factor: agent time on calls / logged-in agent time (null with no agents)
        busy_factor = None
        if first is not None and self._a_cap > 0 and self._last_pool == _AGENTS:
            logged = self._a_cap * span
            if logged > 0:
                value = (self._a_area + self._a_busy * (now - self._a_t) - data[o + 1]) / logged
                busy_factor = (value if value < 1.0 else 1.0) if value > 0.0 else 0.0
        over = self._abandoned + self._dropped - data[o + 2]
        o += _SNAP_HEAD
        nl = self._nlists
        if nl == 1:
            fin = self._fin[0]
            attempts = self._att[0] - data[o]
            lives = self._live[0] - data[o + 1]
            hit_ratio = None
            if attempts > 0:
                value = lives / attempts
                hit_ratio = value if value > 0.0 else 0.0
            remaining = self._records[0] - fin
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
            if self._preview_kind:
                overdial = 0.0  # spec 3: 0 in modes that cannot overdial
            elif value > 0.0:  # at most 1: an abandon can fall in the window, its answer not
                overdial = value if value < 1.0 else 1.0
            else:
                overdial = 0.0
        return group_statistics(busy_factor, hit_ratio, overdial, ttc, per_list)

    def _list_statistics(
        self, o: int, span: float
    ) -> tuple[float | None, float | None, float, tuple[ListStatistics, ...]]:
        """Group hit ratio, time to complete and live answers, and the per-list values."""
        data = self._ring_snap.data
        nl = self._nlists
        att, live, fin, records = self._att, self._live, self._fin, self._records
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
                    time_to_complete(records[i] - fin[i], finished, span),
                )
            )
        return (
            ratio(all_lives, all_attempts),
            time_to_complete(self.records_remaining, all_finished, span),
            all_lives,
            tuple(per_list),
        )

    def totals(self) -> Totals:
        """Cumulative counts since the simulation began (for summaries and tests)."""
        now = self._now
        logged = 0.0
        if self._first_start is not None and self._last_pool == _AGENTS:
            logged = self._a_cap * (now - self._first_start)
        return Totals(
            dial_attempts=self._dials,
            finished_attempts=sum(self._att),
            live_answers=sum(self._live),
            abandoned=self._abandoned,
            dropped=self._dropped,
            connected=self._connects,
            records_finished=sum(self._fin),
            records_remaining=self.records_remaining,
            agent_busy_seconds=self._a_area + self._a_busy * (now - self._a_t),
            agent_logged_seconds=logged,
            queue_wait_seconds=self._wait_sum,
            list_finished_attempts=tuple(self._att),
            list_live_answers=tuple(self._live),
        )

    @property
    def pacing_gain(self) -> float:
        """The learned predictive gain g (for diagnostics)."""
        return self._g

    # -- event helpers -----------------------------------------------------------------

    def _failed(self, t: float, li: int, attempt: int) -> None:
        """An attempt that did not reach an agent: redial later, or finish the record."""
        if attempt < self._max_att[li]:
            self._r_due[li].append(t + self._redial[li])
            self._r_att[li].append(attempt + 1)
        else:
            self._fin[li] += 1

    def _give_back(self, t: float, li: int, attempt: int) -> None:
        """A record taken but not dialed (or cancelled) goes back, first in line."""
        if attempt == 1:
            self._fresh[li] += 1
            return
        head = self._r_head[li]
        if head:
            head -= 1
            self._r_due[li][head] = t
            self._r_att[li][head] = attempt
            self._r_head[li] = head
        else:
            self._r_due[li].insert(0, t)
            self._r_att[li].insert(0, attempt)

    def _redial_due(self, li: int, t: float) -> int:
        """The attempt number of list li's first redial if it is due at t (taken), else 0."""
        due = self._r_due[li]
        head = self._r_head[li]
        if head < len(due) and due[head] <= t:
            attempt = self._r_att[li][head]
            head += 1
            if head >= _COMPACT and head + head >= len(due):  # drop the consumed prefix
                del due[:head]
                del self._r_att[li][:head]
                head = 0
            self._r_head[li] = head
            return attempt
        return 0

    def _next_redial(self) -> float:
        """When the first waiting redial falls due (inf if none waits)."""
        due = math.inf
        for li, head in enumerate(self._r_head):
            queue = self._r_due[li]
            if head < len(queue) and queue[head] < due:
                due = queue[head]
        return due

    def _starve(self, t: float) -> None:
        """No record is ready: wake the pacing up when the next redial falls due."""
        self._starved = True
        due = self._next_redial()
        if due < self._wake_at:
            self._wake_at = due
            self._seq += 1
            heappush(self._heap, (max(due, t), self._seq, _WAKE, 0, 0, 0.0))

    def _connect(self, t: float, li: int, pool: int) -> None:
        """A live answer reaches a free agent (port): the record is finished, talk starts."""
        self._fin[li] += 1
        self._connects += 1
        self._seq += 1
        end = t - math.log(1.0 - self._rand()) * self._talk
        if pool == _AGENTS:
            self._a_area += self._a_busy * (t - self._a_t)
            self._a_t = t
            self._a_occ += 1
            self._a_busy += 1
            heappush(self._talk_ends, end)
            wrap_end = end + self._wrap * (0.5 + self._rand())
            heappush(self._heap, (wrap_end, self._seq, _WRAP_END, 0, 0, end))
        else:
            self._p_area += self._p_busy * (t - self._p_t)
            self._p_t = t
            self._p_busy += 1
            heappush(self._heap, (end, self._seq, _TALK_END, 0, 0, t))

    def _serve(self, t: float, pool: int) -> None:
        """A server freed up while live answers wait: it takes the oldest."""
        waiting = self._waiting
        call_id = next(iter(waiting))
        li, _attempt, answered = waiting.pop(call_id)
        self._wait_sum += t - answered
        self._connect(t, li, pool)

    def _take(self, t: float) -> tuple[int, int] | None:
        """The next record to dial: (list, attempt), round robin over the lists."""
        nl = self._nlists
        rr = self._rr
        for _ in range(nl):
            li = rr
            rr = rr + 1 if rr + 1 < nl else 0
            attempt = self._redial_due(li, t)
            if attempt:
                self._rr = rr
                return li, attempt
            if self._fresh[li]:
                self._fresh[li] -= 1
                self._rr = rr
                return li, 1
        return None

    def _launch(self, t: float, li: int, attempt: int) -> None:
        """An agent dials the record he previewed: the call resolves to him."""
        self._dials += 1
        self._inflight += 1
        rand = self._rand
        live, machine, busy, ring, timeout, _delay = self._outcomes[li]
        r = rand()
        kind = _RESULT_ENGAGED
        if r < machine:
            answer = min(ring * (0.5 + rand()), timeout)
            if r < live:
                kind = _LIVE_ENGAGED
        elif r < busy:
            answer = BUSY_SIGNAL_TIME
        else:
            answer = timeout
        self._seq += 1
        heappush(self._heap, (t + answer, self._seq, kind, li, attempt, t))

    def _outcome_table(self) -> list[tuple[float, float, float, float, float, float]]:
        """Per list: live, machine, busy thresholds, ring time, timeout, transfer delay."""
        table = []
        for lm in self.model.lists:
            live = lm.live_answer_rate
            machine = live + lm.answering_machine_rate
            busy = live + lm.answering_machine_rate + lm.busy_rate
            table.append((live, machine, busy, lm.ring_time, lm.no_answer_timeout, self._delay))
        return table

    def _dial(self, t: float, n: int) -> None:
        """Dial up to n records now, drawing each outcome; the lists may run dry (starved)."""
        if t >= self._age_next:
            self._age(t)
        heap = self._heap
        rand = self._rand
        fresh, nl = self._fresh, self._nlists
        r_due, r_att, heads = self._r_due, self._r_att, self._r_head
        rr = self._rr
        seq = self._seq
        dialed = 0
        li = attempt = 0
        while dialed < n:
            for _ in range(nl):  # the next record, round robin over the lists
                li = rr
                rr = rr + 1 if rr + 1 < nl else 0
                due = r_due[li]
                head = heads[li]
                if head < len(due) and due[head] <= t:  # a redial is due (see _redial_due)
                    attempt = r_att[li][head]
                    head += 1
                    if head >= _COMPACT and head + head >= len(due):
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
            live, machine, busy, ring, timeout, delay = self._outcomes[li]
            seq += 1
            r = rand()
            if r < machine:
                answer = ring * (0.5 + rand())
                if answer > timeout:
                    answer = timeout
                if r < live:
                    heappush(heap, (t + answer + delay, seq, _LIVE, li, attempt, t))
                else:
                    heappush(heap, (t + answer, seq, _RESULT, li, attempt, t))
            elif r < busy:
                heappush(heap, (t + BUSY_SIGNAL_TIME, seq, _RESULT, li, attempt, t))
            else:
                heappush(heap, (t + timeout, seq, _RESULT, li, attempt, t))
            dialed += 1
        else:
            self._starved = False
        self._rr = rr
        self._seq = seq
        if dialed:
            self._dials += dialed
            self._inflight += dialed
            self._young += dialed
            second = int(t) % self._ysize
            self._young_ring[second] += dialed
            self._dial_ring[second] += dialed

    # -- pacing ------------------------------------------------------------------------

    def _pace(self, t: float) -> None:
        """Dial what the dial mode asks for at time t."""
        kind = self._kind
        if kind == _NONE:
            return
        if self._pool == _AGENTS:
            free = self._a_cap - self._a_occ
            busy = self._a_busy
            cap = self._a_cap
        else:
            free = self._p_cap - self._p_busy
            busy = self._p_busy
            cap = self._p_cap
        ready = free - len(self._waiting)
        if kind == _PREDICTIVE and self._cohort_att < HISTORY_LENGTH:
            if t >= self._ctl_next:
                self._control(t)
            kind = _PROGRESSIVE  # too little history yet: dial progressively meanwhile
        if kind == _PREDICTIVE:
            if t >= self._ctl_next:
                self._control(t)
            young = self._young if t < self._age_next else self._age(t)
            p = self._est_p
            want = self._g_p * (ready + busy * self._t_h)
            lines = MAX_LINES_PER_SERVER * cap - (self._inflight - young)
            if want > lines:
                want = lines
            # small-group variant: the calls dialing count by their chance to be live at
            # their age, so a handful of fresh calls is not mistaken for old ones
            n = int(want - self._young_lives(t) / p) if self._small else int(want) - young
            if self._floor and n < ready - young:
                n = ready - young  # never below progressive (which cannot overdial)
        elif kind == _PROGRESSIVE:
            n = ready - self._inflight
        elif kind == _POWER:
            n = int(self.model.lines_per_agent * ready) - self._inflight if ready > 0 else 0
        else:  # preview: each ready agent takes a record and reads it
            self._starved = False
            while free > 0:
                record = self._take(t)
                if record is None:
                    self._starve(t)
                    return
                free -= 1
                self._a_occ += 1
                self._seq += 1
                heappush(
                    self._heap,
                    (t + self._preview_time, self._seq, _PREVIEW_DIAL, record[0], record[1], 0.0),
                )
            return
        if n > 0:
            self._dial(t, n)
        else:
            self._starved = False

    def _age(self, t: float) -> int:
        """Age out the dial seconds older than the young span; the young calls left."""
        last = int(t - self._young_span) - 1
        aged = self._aged
        if last > aged:
            ring, dials, lives = self._young_ring, self._dial_ring, self._live_ring
            size = self._ysize
            young = self._young
            for k in range(max(aged + 1, last - size + 1), last + 1):
                i = k % size
                young -= ring[i]
                self._cohort_att += dials[i]
                self._cohort_live += lives[i]
                ring[i] = dials[i] = lives[i] = 0
            self._young = young
            self._aged = last
        self._age_next = self._young_span + last + 1 + AGE_STEP
        return self._young

    def _young_lives(self, t: float) -> float:
        """Live answers expected from the young calls, by the learned chance at their age."""
        if t >= self._q_next:
            self._learn_ages(t)
        now_s = int(t)
        ring, q, size = self._young_ring, self._q, self._ysize
        total = 0.0
        for second in range(self._aged + 1, now_s + 1):
            calls = ring[second % size]
            if calls:
                total += calls * q[now_s - second]
        return total

    def _learn_ages(self, t: float) -> None:
        """q[a]: of the attempts that ended at age a or later, the share that were live."""
        self._q_next = t + AGE_LEARN_STEP
        ended, lives, q = self._end_age, self._live_age, self._q
        if sum(ended) < HISTORY_LENGTH:
            return
        s_end = s_live = 0.0
        for age in range(self._ysize - 1, -1, -1):
            s_end += ended[age]
            s_live += lives[age]
            q[age] = s_live / s_end if s_end else 0.0
        if s_end > AGE_HISTORY:  # forget slowly
            for age in range(self._ysize):
                ended[age] //= 2
                lives[age] //= 2

    def _ctl_mark(self, t: float) -> None:
        """Remember the counters the next control step measures from."""
        self._ctl_t = t
        self._ctl_next = t + CONTROL_STEP
        self._ctl = (
            self._pool_area(t),
            self._cohort_att,
            self._cohort_live,
            sum(self._live),
            self._abandoned + self._dropped,
            self._wait_sum,
            self._connects,
            self._ans_sum,
            self._handles,
        )

    def _pool_area(self, t: float) -> float:
        if self._pool == _AGENTS:
            return self._a_area + self._a_busy * (t - self._a_t)
        return self._p_area + self._p_busy * (t - self._p_t)

    def _control(self, t: float) -> None:
        """Learn the estimates and move the gain towards the optimization goal."""
        self._age(t)
        dt = t - self._ctl_t
        area0, catt0, clive0, live0, over0, wait0, conn0, ans0, handles0 = self._ctl
        area = self._pool_area(t)
        live = sum(self._live)
        over = self._abandoned + self._dropped
        d_live = live - live0
        d_area = area - area0
        # estimates: exponentially decaying sums that start from the priors
        decay = math.exp(-dt / LEARN_TIME)
        self._s_att = self._s_att * decay + (self._cohort_att - catt0)
        self._s_live = self._s_live * decay + (self._cohort_live - clive0)
        self._s_ans = self._s_ans * decay + (self._ans_sum - ans0)
        self._s_answers = self._s_answers * decay + d_live
        # handle time: busy time (finished and running handles) per finished handle, the
        # estimate of an exponential mean that is not biased by short handles ending first
        self._s_area = self._s_area * decay + d_area
        self._s_handles = self._s_handles * decay + (self._handles - handles0)
        self._est_p = max(0.01, self._s_live / self._s_att)
        self._est_t = self._s_ans / self._s_answers
        self._est_h = max(1.0, self._s_area / self._s_handles)
        if self._cohort_att >= HISTORY_LENGTH:
            self._young_span = min(self._ans_max, self._ysize - 3.0 - AGE_STEP)
            self._age_next = self._young_span + self._aged + 1 + AGE_STEP
        # gain: integral control on the optimization goal
        cap = self._a_cap if self._pool == _AGENTS else self._p_cap
        method = self._method
        goal = self._goal
        step = 0.0
        if cap > 0:
            if method == OptimizeBy.BUSY_FACTOR:
                step = K_BUSY * (goal * dt - d_area / cap)
            elif method == OptimizeBy.AVERAGE_WAITING_TIME:
                idle = cap * dt - d_area
                step = K_BUSY * (idle - goal * (self._connects - conn0)) / cap
            elif method == OptimizeBy.OVERDIAL_RATE:
                per_call = K_ABANDON / max(cap, MIN_STEP_AGENTS)
                step = per_call * (goal * d_live - (over - over0))
            elif method == OptimizeBy.AVERAGE_DISTRIBUTION_TIME:
                # answered calls: distributed ones count their wait, abandoned ones the grace
                answered = self._connects - conn0 + over - over0
                waited = self._wait_sum - wait0 + self._grace * (over - over0)
                step = K_DISTRIBUTION / cap * (goal * answered - waited) / max(goal, 1.0)
        if (step > 0 and self._starved) or self._cohort_att < HISTORY_LENGTH:
            step = 0.0  # no wind-up while the lists cannot keep up, nor while learning
        logg = self._logg + step
        logg = min(max(logg, _LOG_G_MIN), _LOG_G_MAX)
        self._logg = logg
        self._g = math.exp(logg)
        self._g_p = self._g / self._est_p
        self._t_h = self._est_t / self._est_h
        self._ctl_mark(t)

    # -- statistics window ---------------------------------------------------------------

    def _record(self, k: int) -> None:
        """Write the counters at window boundary k (the state holds since the last event)."""
        ring = self._ring_snap
        data = ring.data
        o = ring.claim(k)
        data[o + 1] = self._a_area + self._a_busy * (data[o] - self._a_t)
        data[o + 2] = self._abandoned + self._dropped
        o += _SNAP_HEAD
        nl = self._nlists
        if nl == 1:
            data[o] = self._att[0]
            data[o + 1] = self._live[0]
            data[o + 2] = self._fin[0]
        else:
            data[o : o + 3 * nl] = array("d", self._att + self._live + self._fin)

    def _roll(self, t: float) -> None:
        """Record the counters at every window boundary up to t (state is constant until t)."""
        ring = self._ring_snap
        k = ring.last + 1  # its boundary is at or before t: the caller checked _next_roll
        if ring.time_of(k + 1) > t:  # the usual case: one boundary passed
            self._record(k)
        else:  # a long step: the last ``buckets`` boundaries are all that can matter
            for k in ring.due(t):
                self._record(k)
        self._next_roll = ring.next_boundary


_LOG_G_MIN = math.log(G_MIN)
_LOG_G_MAX = math.log(G_MAX)
