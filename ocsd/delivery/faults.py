"""Carrying out the faults of ``[faults]`` between a body and its POST.

:func:`ocsd.core.faults.decide` says which faults hit a notification; the
:class:`FaultInjector` does them with the notifier's transport: a dropped notification
is settled as a failed POST (``fault injected: drop``, as OCS loses one when a POST
fails), a delayed one is posted later from its own task, a reordered one is held until
its group's next notification has been posted (or at most :data:`REORDER_HOLD_S`), a
duplicate is posted a second time with the same body, and a skewed or extended body is
sent in place of the real one for that attempt only. Each is logged (``fault injected``,
naming the fault, the group and the message) and counted by kind.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from ocsd.core.faults import FaultRates, add_unknown_field, decide, skew_date_time
from ocsd.delivery.transport import Kind, Outcome, Transport
from ocsd.logs import get_logger

log = get_logger("ocsd.faults")

#: Seconds a reordered notification waits at most for its group's next one.
REORDER_HOLD_S = 30.0
#: Why a notification hit by ``drop`` failed.
DROPPED = "fault injected: drop"
#: Why a delayed notification failed: ocsd stopped before its delay was over.
DELAY_CUT = "fault injected: delay, cut short by the stop"

#: What cannot hit the notification that overtakes a reordered one: it must be sent at
#: once for the held one to arrive after it.
OVERTAKING_EXEMPT = frozenset({"drop", "delay", "reorder"})

#: The faults that keep a notification in memory for a while.
HOLDING = frozenset({"delay", "reorder"})
#: Notifications delayed or held back at most at once: past it, no more are (and none
#: is counted as such), so a long delay-time at a high rate cannot fill the memory.
MAX_WAITING = 100_000

Settle = Callable[[Outcome], None]


@dataclass
class _Held:
    """A reordered notification waiting for its group's next one."""

    kind: Kind
    name: str
    body: bytes
    message_id: str | None
    attempt: int
    settle: Settle
    faults: frozenset[str]
    release: asyncio.TimerHandle | None = None


class FaultInjector:
    """The faults of one notifier; ``send`` replaces its plain post-and-settle."""

    def __init__(self, rates: FaultRates, transport: Transport, injected: Counter[str]) -> None:
        self.rates = rates
        self.transport = transport
        self.injected = injected  # by fault kind; /metrics and the run summary read it
        self._numbers: dict[int, int] = {}
        self._held: dict[int, _Held] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def send(
        self,
        kind: Kind,
        dbid: int,
        name: str,
        body: bytes,
        message_id: str | None,
        attempt: int,
        settle: Settle,
    ) -> None:
        """Post ``body`` as the faults that hit it say; ``settle`` gets each outcome."""
        number = self._numbers[dbid] = self._numbers.get(dbid, 0) + 1
        faults = decide(self.rates, dbid, number)
        held = self._held.pop(dbid, None)
        if held is not None:  # it overtakes the one held back: it is sent, now
            faults -= OVERTAKING_EXEMPT
        elif self.waiting >= MAX_WAITING:  # memory stays bounded whatever delay-time is
            faults -= HOLDING
        for fault in sorted(faults):
            self._note(fault, kind, name, dbid, number, message_id)
        if "drop" in faults:
            settle(Outcome(DROPPED, {}))
        elif "delay" in faults:
            self._spawn(self._later(kind, name, body, message_id, attempt, settle, faults))
        elif "reorder" in faults:
            entry = _Held(kind, name, body, message_id, attempt, settle, faults)
            entry.release = asyncio.get_running_loop().call_later(
                REORDER_HOLD_S, self._release, dbid
            )
            self._held[dbid] = entry
        else:
            await self._post(kind, name, body, message_id, attempt, settle, faults)
        if held is not None:  # the one held back goes after the one that overtook it
            if held.release is not None:
                held.release.cancel()
            await self._post(
                held.kind,
                held.name,
                held.body,
                held.message_id,
                held.attempt,
                held.settle,
                held.faults,
            )

    async def _post(
        self,
        kind: Kind,
        name: str,
        body: bytes,
        message_id: str | None,
        attempt: int,
        settle: Settle,
        faults: frozenset[str] = frozenset(),
    ) -> None:
        sent = body
        if "clock_skew" in faults:
            sent = skew_date_time(sent, self.rates.clock_skew_time)
        if "unknown_field" in faults:
            sent = add_unknown_field(sent)
        trickle = self.rates.slow_send_rate if "slow_send" in faults else None
        outcome = await self.transport.post(kind, name, sent, message_id, attempt, trickle)
        settle(outcome)
        if "duplicate" in faults:  # the same body again: what a retry after a lost answer does
            await self.transport.post(kind, name, sent, message_id, attempt)

    async def _later(
        self,
        kind: Kind,
        name: str,
        body: bytes,
        message_id: str | None,
        attempt: int,
        settle: Settle,
        faults: frozenset[str],
    ) -> None:
        try:
            await asyncio.sleep(self.rates.delay_time)
        except asyncio.CancelledError:
            settle(Outcome(DELAY_CUT, {}))  # counted, never silently lost
            raise
        await self._post(kind, name, body, message_id, attempt, settle, faults)

    def _release(self, dbid: int) -> None:
        """A reordered notification whose group sent nothing more: post it now."""
        held = self._held.pop(dbid, None)
        if held is not None:
            self._spawn(
                self._post(
                    held.kind,
                    held.name,
                    held.body,
                    held.message_id,
                    held.attempt,
                    held.settle,
                    held.faults,
                )
            )

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _note(
        self, fault: str, kind: Kind, name: str, dbid: int, number: int, message_id: str | None
    ) -> None:
        self.injected[fault] += 1
        log.info(
            "fault injected",
            fault=fault.replace("_", "-"),
            kind=kind,
            campaign_group=name,
            dbid=dbid,
            notification=number,
            **({"webhook_id": message_id} if message_id else {}),
        )

    @property
    def waiting(self) -> int:
        """Notifications held back or delayed, not yet posted."""
        return len(self._held) + len(self._tasks)

    async def close(self, grace: float) -> None:
        """Post what is held back now; give delayed ones ``grace`` seconds, then cancel."""
        for dbid in list(self._held):
            self._release(dbid)
        if self._tasks:
            _done, late = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in late:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*late, return_exceptions=True)
