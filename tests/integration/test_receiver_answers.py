"""What ocsd reads of a receiver's answer: the status line and headers, and at most
:data:`~ocsd.delivery.transport.MAX_ANSWER_BYTES` of the body, whatever the receiver sends.

Real receivers on 127.0.0.1 answer with a 100 MB body or a chunked body that never ends;
each one counts what it managed to write before ocsd hung up. The status code decides
the outcome (a 2xx is an acceptance); the cut is noted on the outcome.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from support.answers import AnsweringReceiver

from ocsd.delivery.transport import CUT_TOO_LONG, CUT_UNFINISHED, MAX_ANSWER_BYTES, Transport

#: More than ocsd may read of an answer plus what the loopback socket buffers hold
#: between the two processes (a few MB at most); far less than the bodies sent.
WRITTEN_BOUND = 32 * 1024 * 1024


@pytest.fixture
async def answering() -> AsyncIterator[Callable[..., Any]]:
    started: list[AnsweringReceiver] = []

    async def start(
        status: int = 200, body_bytes: int | None = None, trickle_s: float = 0.0
    ) -> AnsweringReceiver:
        receiver = AnsweringReceiver(status, body_bytes, trickle_s)
        await receiver.start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        await receiver.stop()


@pytest.fixture
async def transport_to() -> AsyncIterator[Callable[..., Any]]:
    opened: list[Transport] = []

    async def open_(uri: str, post_timeout: float = 5.0) -> Transport:
        transport = Transport(uri, post_timeout, 2)
        await transport.open()
        opened.append(transport)
        return transport

    yield open_
    for transport in opened:
        await transport.close()


async def test_a_100_mb_answer_is_not_read_whole(answering, transport_to) -> None:
    receiver = await answering(200, 100 * 1024 * 1024)
    transport = await transport_to(receiver.url)
    outcome = await transport.post("state", "G1", b'{"n": 1}', None, 1)
    await _wait_written(receiver, 1)
    assert receiver.total_written < WRITTEN_BOUND, f"ocsd read {receiver.total_written} bytes"
    assert outcome.reason is None and outcome.status == 200, outcome  # accepted by status
    assert outcome.answer_cut == CUT_TOO_LONG


async def test_an_endless_answer_is_cut_and_the_next_post_goes(answering, transport_to) -> None:
    receiver = await answering(200, None)
    transport = await transport_to(receiver.url, post_timeout=2.0)
    for n in range(3):
        outcome = await transport.post("periodic", "G1", b'{"n": %d}' % n, None, 1)
        assert outcome.reason is None and outcome.status == 200, outcome
        assert outcome.answer_cut == CUT_TOO_LONG
        assert outcome.elapsed < 1.5, "the cut answer waited for the timeout"
    await _wait_written(receiver, 3)
    assert receiver.posts == 3
    assert receiver.total_written < WRITTEN_BOUND, f"ocsd read {receiver.total_written} bytes"


async def test_an_answer_that_trickles_is_cut_at_the_timeout(answering, transport_to) -> None:
    receiver = await answering(200, None, trickle_s=0.05)
    transport = await transport_to(receiver.url, post_timeout=1.0)
    outcome = await transport.post("state", "G1", b"{}", None, 1)
    assert outcome.reason is None and outcome.status == 200, outcome
    assert outcome.answer_cut == CUT_UNFINISHED


async def test_an_error_status_with_an_endless_answer_stays_an_error(
    answering, transport_to
) -> None:
    receiver = await answering(503, None)
    transport = await transport_to(receiver.url, post_timeout=2.0)
    outcome = await transport.post("state", "G1", b"{}", None, 1)
    assert outcome.reason == "HTTP 503" and outcome.retryable
    assert outcome.answer_cut is not None


async def test_a_short_answer_is_read_whole_and_not_noted(answering, transport_to) -> None:
    receiver = await answering(200, 1000)
    transport = await transport_to(receiver.url)
    outcome = await transport.post("state", "G1", b"{}", None, 1)
    assert outcome.reason is None and outcome.answer_cut is None
    await _wait_written(receiver, 1)
    assert receiver.written == [1000] and MAX_ANSWER_BYTES > 1000


async def _wait_written(receiver: AnsweringReceiver, answers: int) -> None:
    """Until the receiver's handlers of ``answers`` answers have finished (bounded)."""
    from support.waiting import eventually

    await eventually(lambda: len(receiver.written) >= answers, within=10, what="answers written")
