"""http-response-timeout: every POST ends by its own deadline, kept by one shared timer.

A real hanging receiver on 127.0.0.1 holds the requests open; POSTs started at
different moments must each time out ``timeout`` seconds after their own start (the
timer is re-armed for the next oldest one), the task that sent them must come out of
it able to go on (no cancellation left over), and a cancellation that is not the
deadline's (shutdown) must still cancel.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from support.receivers import Receiver

from ocsd.delivery.transport import Transport

TIMEOUT = 0.6
#: How late a deadline may be met on a busy 2-core machine (the loop's own lag).
SLACK = 0.5


@pytest.fixture
async def transport(receiver: Receiver) -> AsyncIterator[Transport]:
    opened = Transport(receiver.url, TIMEOUT, 4)
    await opened.open()
    yield opened
    await opened.close()


async def test_posts_started_apart_each_time_out_at_their_own_deadline(
    receiver: Receiver, transport: Transport
) -> None:
    receiver.set_behaviour("hang")
    loop = asyncio.get_running_loop()

    async def post_at(delay: float) -> tuple[str | None, float, float]:
        await asyncio.sleep(delay)
        started = loop.time()
        outcome = await transport.post("periodic", f"G{delay}", b"{}", None, 1)
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0, "a cancellation was left over"
        return outcome.reason, started, loop.time()

    results = await asyncio.gather(*(post_at(delay) for delay in (0.0, 0.25, 0.45)))
    for reason, started, ended in results:
        assert reason == "timeout"
        assert TIMEOUT - 0.01 <= ended - started < TIMEOUT + SLACK, ended - started
    # the three deadlines are met in the order the POSTs started, apart as they started
    ends = [ended for _, _, ended in results]
    assert ends == sorted(ends) and ends[2] - ends[0] >= 0.3, ends


async def test_the_task_goes_on_after_a_timeout(receiver: Receiver, transport: Transport) -> None:
    receiver.queue_behaviours("hang")  # the first request hangs, the next are answered
    first = await transport.post("state", "G1", b'{"n": 1}', None, 1)
    assert first.reason == "timeout" and first.detail == {"timeout_s": TIMEOUT}
    second = await transport.post("state", "G1", b'{"n": 2}', None, 1)
    assert second.reason is None and second.status == 200
    await asyncio.sleep(TIMEOUT + 0.2)  # no deadline of the finished POST fires later
    third = await transport.post("state", "G1", b'{"n": 3}', None, 1)
    assert third.reason is None, third
    assert receiver.count() == 3


async def test_a_cancellation_not_from_the_deadline_still_cancels(
    receiver: Receiver, transport: Transport
) -> None:
    receiver.set_behaviour("hang")
    posting = asyncio.create_task(transport.post("state", "G1", b"{}", None, 1))
    await receiver.wait_for(1)
    posting.cancel()  # what shutdown does to a worker
    with pytest.raises(asyncio.CancelledError):
        await posting
    # the cancelled POST's deadline is gone with it: a later one is not cut short
    receiver.set_behaviour("ok")
    outcome = await transport.post("state", "G2", b"{}", None, 1)
    assert outcome.reason is None and outcome.elapsed < TIMEOUT


async def test_a_post_that_is_answered_in_time_is_not_cut(
    receiver: Receiver, transport: Transport
) -> None:
    """Many POSTs in a row across several timeouts' worth of time: none is timed out
    (the shared timer only ever cuts a POST older than the timeout)."""
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + 3 * TIMEOUT
    reasons: list[str | None] = []

    async def sender() -> None:
        while loop.time() < ends_at:
            reasons.append((await transport.post("periodic", "G", b"{}", None, 1)).reason)

    await asyncio.gather(*(sender() for _ in range(4)))
    assert len(reasons) > 20 and set(reasons) == {None}, set(reasons)
