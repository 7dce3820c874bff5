"""``GroupSimulation``: one group's dialing in simulated time, and the handling of each event.

The simulation is made of parts (the package docstring lists them and every modelling
decision); this module owns one of each, answers the public API, and applies each event
to the parts in ``advance``.
"""

from __future__ import annotations

import math
import random
from heapq import heapify, heappop, heappush

from ocsd.core.lifecycle import Dialing
from ocsd.core.simulation.counters import Counters
from ocsd.core.simulation.dialer import Dialer, Waiting
from ocsd.core.simulation.events import (
    ABANDON,
    DIALING_KINDS,
    LIVE,
    LIVE_ENGAGED,
    RESULT,
    RESULT_ENGAGED,
    TALK_END,
    WAKE,
    WRAP_END,
    Event,
    EventQueue,
)
from ocsd.core.simulation.model import GroupModel, Totals
from ocsd.core.simulation.modes import KIND_OF_MODE, NONE, PREDICTIVE, PREVIEW, uses_ports
from ocsd.core.simulation.pacing import Pacing, YoungCalls, optimization
from ocsd.core.simulation.records import Records
from ocsd.core.simulation.servers import ServerPool
from ocsd.core.simulation.window import StatisticsWindow
from ocsd.core.statistics import GroupStatistics


class GroupSimulation:
    """Dialing of one Campaign Group in simulated time; see the package docstring.

    ``advance(now)`` applies the events up to ``now``; ``set_dialing`` and
    ``drop_calls`` change what the group does from ``now`` on; the rest reads. (The
    class is ~400 lines because ``advance`` writes its event handlers out: see there.)
    """

    # long: ~400 lines because advance writes its event handlers out (see there).
    # One running group's state is a few hundred numbers: __slots__ here and in every
    # part (no per-object __dict__), arrays rather than lists of boxed numbers where
    # they are long-lived.
    __slots__ = (
        "_agents",
        "_counts",
        "_dialer",
        "_dialing",
        "_events",
        "_now",
        "_pacing",
        "_ports",
        "_rand",
        "_records",
        "_talk_time",
        "_waiting",
        "_window",
        "_wrap_up_time",
        "_young",
        "model",
    )

    def __init__(
        self, model: GroupModel, rng: random.Random, start: float = 0.0, window: float = 300.0
    ) -> None:
        if window <= 0:
            raise ValueError("the statistics window must be positive")
        self.model = model
        self._rand = rng.random
        self._now = start
        self._dialing: Dialing | None = None
        self._talk_time = model.talk_time  # mean, s (exponential)
        self._wrap_up_time = model.wrap_up_time  # mean, s (uniform on [0.5, 1.5] x this)
        lists = model.lists
        self._events = EventQueue()
        self._records = Records(lists)
        self._counts = Counters(len(lists))
        self._agents = ServerPool(model.agents, start)
        self._ports = ServerPool(model.ports, start)
        self._waiting: Waiting = {}  # live answers waiting for a server, oldest first
        self._young = YoungCalls(lists, start)
        self._pacing = Pacing(self._young, self._counts, self._records, self._agents, start)
        self._dialer = Dialer(
            model,
            self._rand,
            self._events,
            self._records,
            self._counts,
            self._young,
            self._pacing,
            self._agents,
            self._waiting,
        )
        self._window = StatisticsWindow(
            lists, start, window, self._agents, self._counts, self._records
        )

    # -- reading -----------------------------------------------------------------------

    @property
    def now(self) -> float:
        return self._now

    @property
    def dialing(self) -> Dialing | None:
        return self._dialing

    @property
    def window(self) -> float:
        """Seconds of simulated time the statistics cover."""
        return self._window.length

    @property
    def calls_in_progress(self) -> int:
        """Calls dialing, ringing, waiting for an agent or connected; wrap-up is not a call."""
        talking = self._agents.talking(self._now)
        return self._dialer.calls_dialing + len(self._waiting) + talking + self._ports.busy

    @property
    def exhausted(self) -> bool:
        """No record left to dial now or later (redials included) and no call in progress."""
        return self.records_remaining == 0 and self.calls_in_progress == 0

    @property
    def records_remaining(self) -> int:
        """Records not finished yet: to dial, waiting for a redial, or on a call."""
        return self._records.remaining()

    @property
    def agents_ready(self) -> int:
        """Agents waiting for a call (not previewing, talking or in wrap-up)."""
        return self._agents.capacity - self._agents.occupied

    @property
    def agents_busy(self) -> int:
        """Agents talking or in wrap-up (what the busy factor counts)."""
        return self._agents.busy

    @property
    def pacing_gain(self) -> float:
        """The learned predictive gain g (for diagnostics)."""
        return self._pacing.gain

    def statistics(self, now: float) -> GroupStatistics:
        """The statistics (docs/contract.md#statistics) over the window ending at ``now``.

        Advances to ``now`` first, unless there is nothing to do (the checks are cheaper
        than the call: this runs for every notification of every group).
        """
        heap = self._events.heap
        window = self._window
        if now != self._now or now >= window.next_roll or (heap and heap[0][0] <= now):
            self.advance(now)
        return window.read(self._now)

    def latest_statistics(self) -> GroupStatistics:
        """The statistics as of the last advance (``now``), exactly as ``statistics(now)``.

        Never advances nor changes anything, so a reader (a sender) may call it while
        the service owns the advancing.
        """
        return self._window.read(self._now)

    def totals(self) -> Totals:
        """Cumulative counts since the simulation began (for summaries and tests)."""
        now = self._now
        agents = self._agents
        first = self._window.first_start
        logged = 0.0
        if first is not None and self._dialer.servers is agents:
            logged = agents.capacity * (now - first)
        counts = self._counts
        records = self._records
        return Totals(
            dial_attempts=counts.dial_attempts,
            finished_attempts=sum(counts.finished_attempts),
            live_answers=sum(counts.live_answers),
            abandoned=counts.abandoned,
            dropped=counts.dropped,
            connected=counts.connected,
            records_finished=sum(records.finished),
            records_remaining=records.remaining(),
            agent_busy_seconds=agents.busy_seconds(now),
            agent_logged_seconds=logged,
            queue_wait_seconds=counts.queue_wait_seconds,
            list_finished_attempts=tuple(counts.finished_attempts),
            list_live_answers=tuple(counts.live_answers),
        )

    # -- changing what the group does --------------------------------------------------

    def set_dialing(self, dialing: Dialing | None, now: float) -> None:
        """Start, switch or stop (None) dialing; counts, learning and lists are kept."""
        self.advance(now)
        now = self._now
        dialer = self._dialer
        if dialing is None:
            self._dialing = None
            dialer.kind = NONE
            return
        dialing = dialing.effective()
        mode = dialing.mode
        kind = KIND_OF_MODE[mode]
        dialer.kind = kind
        if kind == NONE:
            self._dialing = None
            return
        self._dialing = dialing
        servers = self._ports if uses_ports(mode) else self._agents
        dialer.configure(mode, servers)
        self._window.started(now, servers is self._agents, kind == PREVIEW)
        method, goal = optimization(dialing, kind == PREDICTIVE)
        self._pacing.configure(method, goal, servers, now)
        dialer.pace(now)

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
        dialer = self._dialer
        dialer.kind = NONE
        records, agents, waiting = self._records, self._agents, self._waiting
        kept: list[Event] = []
        ended = 0  # IVR ports' calls
        talking = 0  # agents' calls still talking (not in wrap-up)
        for event in self._events.heap:
            _time, seq, kind, li, attempt, x = event
            if kind in DIALING_KINDS:
                dialer.calls_dialing -= 1
                if kind in (LIVE_ENGAGED, RESULT_ENGAGED):
                    agents.occupied -= 1
                else:
                    self._young.cancel(x)
                records.give_back(now, li, attempt)
            elif kind == ABANDON:
                if waiting.pop(seq, None) is not None:
                    self._counts.dropped += 1
                    records.failed(now, li, attempt)
            elif kind == TALK_END:
                ended += 1
            elif kind == WRAP_END and x > now:
                talking += 1  # the agent is still talking: the call ends now, wrap-up follows
            else:
                kept.append(event)
        waiting.clear()
        agents.talk_ends.clear()
        events = self._events
        events.heap = kept
        for _ in range(ended):
            events.seq += 1
            kept.append((now, events.seq, TALK_END, 0, 0, now))
        wrap = self._wrap_up_time
        for _ in range(talking):
            events.seq += 1
            kept.append((now + wrap * (0.5 + self._rand()), events.seq, WRAP_END, 0, 0, now))
        heapify(kept)
        self.advance(now)

    # -- events ------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Process every event up to simulated time ``now`` (which never goes back).

        The handlers are written out in the loop, with the parts and their lists in
        locals, because this loop is most of the simulation's time: as one method per
        event kind (dispatched through a tuple of bound methods), bench/bench_simulation.py
        (a) core alone runs 3.0 % more instructions (callgrind: 6.73 G instead of 6.53 G;
        wall time on this shared 2-core machine is too noisy to show it). The parts' own
        methods (``Records.failed``, ``ServerPool.take``, ...) are named in comments where
        a handler writes one out.
        """
        # long: handlers written out for speed, bench/bench_simulation.py (a): 6.53 G
        # instructions instead of 6.73 G as one method per event kind.
        if now < self._now:
            return
        events = self._events
        heap = events.heap
        window = self._window
        if (not heap or heap[0][0] > now) and now < window.next_roll:
            self._now = now  # nothing happens until now (most short steps of a small group)
            return
        rand = self._rand
        log = math.log
        counts = self._counts
        attempts = counts.finished_attempts
        records = self._records
        finished, max_attempts = records.finished, records.max_attempts
        redial_due, redial_attempt = records.redial_due, records.redial_attempt
        redial_delay = records.redial_delay
        young = self._young
        young_by_second, size, ended_at_age = young.by_second, young.size, young.ended_at_age
        agents, waiting = self._agents, self._waiting
        talk_ends = agents.talk_ends
        dialer = self._dialer
        pace = dialer.pace  # after (almost) every event: the dial mode dials what it wants
        small = self._pacing.small_group  # only the small-group variant learns from the ages
        while heap and heap[0][0] <= now:
            t, seq, kind, a, b, x = heappop(heap)  # a: list, b: attempt (events.py)
            if t >= window.next_roll:
                window.roll(t)
            if kind == RESULT:
                dialer.calls_dialing -= 1
                if small:
                    ended_at_age[int(t - x)] += 1
                attempts[a] += 1
                if b < max_attempts[a]:  # redial later (Records.failed)
                    redial_due[a].append(t + redial_delay[a])
                    redial_attempt[a].append(b + 1)
                else:
                    finished[a] += 1
                second = int(x)  # the dial second
                if second > young.aged:
                    young.count -= 1
                    young_by_second[second % size] -= 1
                    pace(t)
                elif dialer.kind != PREDICTIVE:
                    pace(t)  # predictive pacing counts young calls only
            elif kind == LIVE:
                dialer.calls_dialing -= 1
                answer = t - x  # s from dial to live answer
                if small:
                    ended_at_age[int(answer)] += 1
                    young.live_at_age[int(answer)] += 1
                second = int(x)  # the dial second
                if second > young.aged:
                    young.count -= 1
                    young_by_second[second % size] -= 1
                    young.live_by_second[second % size] += 1
                else:
                    young.cohort_lives += 1
                if answer > young.longest_answer:
                    young.longest_answer = answer
                attempts[a] += 1
                counts.live_answers[a] += 1
                counts.answer_seconds += answer
                if dialer.servers is agents and agents.occupied < agents.capacity:
                    agents.busy_area += agents.busy * (t - agents.area_time)  # ServerPool.take
                    agents.area_time = t
                    agents.occupied += 1
                    agents.busy += 1
                    finished[a] += 1
                    counts.connected += 1
                    # one event for talk + wrap-up; the talk's end goes on the talk heap
                    end = t - log(1.0 - rand()) * self._talk_time
                    heappush(talk_ends, end)
                    events.seq += 1
                    wrap_end = end + self._wrap_up_time * (0.5 + rand())
                    heappush(heap, (wrap_end, events.seq, WRAP_END, 0, 0, end))
                elif dialer.servers is self._ports and self._ports.occupied < self._ports.capacity:
                    self._connect(t, a, self._ports)
                else:  # no free server: the call waits, and is abandoned after the grace
                    grace = self._pacing.abandon_grace
                    waiting[events.push(t + grace, ABANDON, a, b, t)] = (a, b, t)
                pace(t)
            elif kind == WRAP_END:
                while talk_ends and talk_ends[0] <= t:  # bounded even if nobody reads it
                    heappop(talk_ends)
                agents.busy_area += agents.busy * (t - agents.area_time)  # ServerPool.release
                agents.area_time = t
                agents.busy -= 1
                agents.occupied -= 1
                counts.handles += 1
                if waiting:
                    self._serve(t, agents)
                pace(t)
            elif kind == TALK_END:  # an IVR port's call ends
                self._ports.release(t)
                counts.handles += 1
                if waiting:
                    self._serve(t, self._ports)
                pace(t)
            elif kind == ABANDON:
                if waiting.pop(seq, None) is not None:
                    counts.abandoned += 1
                    records.failed(t, a, b)
                    pace(t)
            elif kind == WAKE:
                if t >= dialer.wake_at:
                    dialer.wake_at = math.inf
                pace(t)
            elif kind == LIVE_ENGAGED:  # the agent who dialed it takes it
                dialer.calls_dialing -= 1
                attempts[a] += 1
                counts.live_answers[a] += 1
                counts.answer_seconds += t - x
                agents.busy_area += agents.busy * (t - agents.area_time)
                agents.area_time = t
                agents.busy += 1
                finished[a] += 1
                counts.connected += 1
                end = t - log(1.0 - rand()) * self._talk_time
                heappush(talk_ends, end)
                events.seq += 1
                wrap_end = end + self._wrap_up_time * (0.5 + rand())
                heappush(heap, (wrap_end, events.seq, WRAP_END, 0, 0, end))
            elif kind == RESULT_ENGAGED:  # the agent who dialed it is free again
                dialer.calls_dialing -= 1
                attempts[a] += 1
                agents.occupied -= 1
                records.failed(t, a, b)
                pace(t)
            elif dialer.kind == PREVIEW:  # PREVIEW_DIAL: the agent dials what he read
                dialer.launch(t, a, b)
            else:  # PREVIEW_DIAL after dialing stopped (or left preview): the record goes back
                agents.occupied -= 1
                records.give_back(t, a, b)
                pace(t)
        if now >= window.next_roll:
            window.roll(now)
        self._now = now

    def _connect(self, t: float, li: int, servers: ServerPool) -> None:
        """A live answer reaches a free agent (port): the record is finished, talk starts."""
        self._records.finished[li] += 1
        self._counts.connected += 1
        events = self._events
        events.seq += 1
        end = t - math.log(1.0 - self._rand()) * self._talk_time
        servers.take(t)
        if servers is self._agents:
            heappush(servers.talk_ends, end)
            wrap_end = end + self._wrap_up_time * (0.5 + self._rand())
            heappush(events.heap, (wrap_end, events.seq, WRAP_END, 0, 0, end))
        else:
            heappush(events.heap, (end, events.seq, TALK_END, 0, 0, t))

    def _serve(self, t: float, servers: ServerPool) -> None:
        """A server freed up while live answers wait: it takes the oldest."""
        waiting = self._waiting
        call_id = next(iter(waiting))
        li, _attempt, answered = waiting.pop(call_id)
        self._counts.queue_wait_seconds += t - answered
        self._connect(t, li, servers)
