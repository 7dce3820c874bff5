"""``ocsd replay FILE --uri URI``: send a recorded feed to a receiver again.

The file is what ``ocsd sink --record`` wrote (one JSON object per line with the body
under ``"body"`` and the arrival time under ``"received"``) or plain JSON lines, one
CampaignGroupState body each (spaced by their ``GSW_DATE_TIME``). Each body is posted
through the same notifier as ``ocsd run`` (one worker per pooled connection, every group
served by one worker, so each group's order is kept), with the same 81000/81001 lines,
counters, summary, thresholds, JSON summary and HTML report as a bounded run.

The spacing of the recording is kept, divided by ``--speed`` (0: as fast as the pool
allows). ``--rebase-time`` sets ``GSW_DATE_TIME`` to the moment each body is sent. A
line that cannot be replayed (not JSON, no body, no group DBID) is reported with its
number and skipped [ocsd decision: one bad line does not stop a long replay]; the count
is in the summary.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from ocsd.config.settings import Settings
from ocsd.core.body import format_date_time
from ocsd.core.genesys import (
    GSW_CAMPAIGN_GROUP_ACTION,
    GSW_CAMPAIGN_GROUP_DBID,
    GSW_CAMPAIGN_GROUP_NAME,
    GSW_DATE_TIME,
)
from ocsd.delivery.notifier import DeliveryCounters, GroupGaps, Notification
from ocsd.delivery.transport import Kind
from ocsd.logs import get_logger
from ocsd.service.bounded_run import EXIT_THRESHOLD_FAILED, RunBounds, report
from ocsd.service.metrics import Metrics
from ocsd.service.run_record import RunRecorder
from ocsd.service.sending import build_delivery

log = get_logger("ocsd.replay")

#: Notifications waiting in the notifier at most, per pooled connection: the reader waits
#: for the senders beyond it instead of queueing the whole file.
QUEUED_PER_CONNECTION = 8
#: Seconds between two looks while a group's previous notification still waits.
WAIT_STEP_S = 0.0005
#: Longest line replayed: a body is a few KiB; a runaway line is skipped, not read whole.
MAX_LINE_BYTES = 16 * 2**20
_DATE_TIME = re.compile(rb'"GSW_DATE_TIME":"[^"]*"')


@dataclass(frozen=True, slots=True)
class Recorded:
    """One body of the file: when it was sent or received, and where it goes."""

    line: int
    at: float  # seconds, on the recording's clock
    dbid: int
    name: str
    periodic: bool
    body: bytes


@dataclass
class ReplayFile:
    """The file read a line at a time; ``skipped`` lines named as they are met."""

    path: Path
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def __iter__(self) -> Iterator[Recorded]:
        with self.path.open("rb") as file:
            number = 0
            while raw := file.readline(MAX_LINE_BYTES + 1):
                number += 1
                if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                    _skip_rest_of_line(file)
                    self._skip(number, f"longer than {MAX_LINE_BYTES // 2**20} MiB")
                    continue
                if not raw.strip():
                    continue
                recorded = self._parse(number, raw)
                if recorded is not None:
                    yield recorded

    def _parse(self, number: int, raw: bytes) -> Recorded | None:
        try:
            entry = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            self._skip(number, f"not JSON ({exc})")
            return None
        if not isinstance(entry, dict):
            self._skip(number, "not a JSON object")
            return None
        body, received = entry, None
        if isinstance(entry.get("body"), dict):  # a line of `ocsd sink --record`
            body, received = entry["body"], entry.get("received")
        elif "body" in entry:
            self._skip(number, "a recorded line without a body (a refused message)")
            return None
        try:
            dbid = int(body[GSW_CAMPAIGN_GROUP_DBID])
            at = float(received if received is not None else body[GSW_DATE_TIME])
        except (KeyError, TypeError, ValueError):
            self._skip(number, "no GSW_CAMPAIGN_GROUP_DBID or no time to space it by")
            return None
        name = str(body.get(GSW_CAMPAIGN_GROUP_NAME, dbid))
        periodic = body.get(GSW_CAMPAIGN_GROUP_ACTION) == 0
        return Recorded(number, at, dbid, name, periodic, orjson.dumps(body))

    def _skip(self, number: int, why: str) -> None:
        self.skipped.append((number, why))
        log.warning("replay line skipped", file=str(self.path), line=number, reason=why)


def _skip_rest_of_line(file: BinaryIO) -> None:
    """Read past the end of an over-long line, a chunk at a time."""
    while chunk := file.readline(MAX_LINE_BYTES):
        if chunk.endswith(b"\n"):
            return


def rebased(body: bytes, epoch: float) -> bytes:
    """The body with ``GSW_DATE_TIME`` set to ``epoch``."""
    stamp = f'"{GSW_DATE_TIME}":"{format_date_time(epoch)}"'.encode()
    return _DATE_TIME.sub(lambda _match: stamp, body, count=1)


@dataclass(frozen=True)
class ReplayOptions:
    path: Path
    speed: float  # 0: as fast as the pool allows
    rebase_time: bool
    bounds: RunBounds


async def replay(settings: Settings, options: ReplayOptions) -> int:
    """Send the file; the exit code (0, or 4 when a threshold failed)."""
    metrics = Metrics()
    counters = DeliveryCounters()
    counters.gaps = GroupGaps() if options.bounds.report is not None else None
    delivery = build_delivery(
        settings, source=lambda _dbid: None, latency=metrics.post_latency, counters=counters
    )
    assert delivery is not None, "replay sends: send-campaigngroup-states is on"
    notifier = delivery.notifier
    await notifier.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    recorder = None
    recording: asyncio.Task[None] | None = None
    if counters.gaps is not None:
        recorder = RunRecorder(counters, metrics.post_latency, counters.gaps)
        recording = asyncio.create_task(recorder.run())
    source = ReplayFile(options.path)
    sent = 0
    try:
        sent = await _send_all(source, notifier, options, loop)
        await _drained(notifier, settings.http_response_timeout + settings.shutdown_grace)
    finally:
        await notifier.close(settings.shutdown_grace)
        if recording is not None:
            recording.cancel()
        if recorder is not None:
            recorder.sample()
    ran = loop.time() - started
    log.info("replay done", file=str(options.path), offered=sent, lines_skipped=len(source.skipped))
    summary = report(options.bounds, metrics, counters, ran, recorder)
    return 0 if summary.passed else EXIT_THRESHOLD_FAILED


async def _drained(notifier: Any, limit_s: float) -> None:
    """Wait until every submitted body has been posted (a close would drop the waiting
    periodic ones, as a stopping OCS does), or until nothing has moved for ``limit_s``."""
    last, still = notifier.pending, 0.0
    while notifier.pending and still < limit_s:
        await asyncio.sleep(0.01)
        still = 0.0 if notifier.pending != last else still + 0.01
        last = notifier.pending


async def _send_all(
    source: ReplayFile, notifier: Any, options: ReplayOptions, loop: asyncio.AbstractEventLoop
) -> int:
    """Submit each body at its time; how many were submitted."""
    first: float | None = None
    began = loop.time()
    limit = notifier.pool_size * QUEUED_PER_CONNECTION
    count = 0
    for recorded in source:
        if first is None:
            first = recorded.at
        if options.speed > 0:
            due = began + max(0.0, recorded.at - first) / options.speed
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        # the group's previous notification goes first: a waiting one would be superseded
        while notifier.pending >= limit or notifier.policy.periodic_waiting(recorded.dbid):  # noqa: ASYNC110 - the queues have no event
            await asyncio.sleep(WAIT_STEP_S)
        body = rebased(recorded.body, time.time()) if options.rebase_time else recorded.body
        kind: Kind = "periodic" if recorded.periodic else "state"
        notifier.submit(Notification(kind, recorded.name, recorded.dbid, body))
        count += 1
    return count
