"""What is simulated: the calling lists, the Campaign Group, and the model's constants.

Each constant is an [ocsd decision] the public Genesys material leaves open; the
package docstring (``ocsd.core.simulation``) says how each one is used.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocsd.core.genesys import DialMode, OptimizeBy
from ocsd.core.lifecycle import Dialing
from ocsd.core.statistics import ratio

# -- model constants [ocsd decision] -----------------------------------------------------

ABANDON_GRACE = 2.0  # s a live answer waits for a free agent before it is abandoned
TRANSFER_DELAY = 1.0  # s from live answer to the agents' queue (transfer modes only)
BUSY_SIGNAL_TIME = 3.0  # s until a busy line ends the attempt
PREVIEW_TIME = 10.0  # s an agent reads a record before dialing it (preview)
PUSH_PREVIEW_TIME = 5.0  # s the same for a pushed record (push preview)
ADT_QUEUE_FACTOR = 4.0  # average-distribution-time: calls may wait goal x this

#: Dialing of a model built without one (the settings' defaults).
DEFAULT_DIALING = Dialing(DialMode.PREDICTIVE, OptimizeBy.BUSY_FACTOR, 80)


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
