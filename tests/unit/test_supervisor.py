"""The supervisor: a task that dies is restarted, one that keeps dying stops the daemon,
and cancellation (the daemon stopping its tasks) is never a death."""

from __future__ import annotations

import asyncio

import pytest
import structlog

from ocsd.service.supervisor import Supervisor


def supervisor(fatal: list[str], max_restarts: int = 5) -> Supervisor:
    return Supervisor(fatal.append, restart_delays=(0.01,), max_restarts=max_restarts, window=60)


async def test_a_task_that_dies_is_logged_restarted_and_down_meanwhile() -> None:
    fatal: list[str] = []
    sup = Supervisor(fatal.append, restart_delays=(0.2,))
    runs = 0
    gate = asyncio.Event()

    async def work() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise ValueError("boom")
        await gate.wait()

    with structlog.testing.capture_logs() as logs:
        task = sup.spawn("worker", work, forever=True)
        await asyncio.sleep(0.05)
        assert not sup.healthy and sup.down == ["worker"]
        await asyncio.sleep(0.3)
        assert sup.healthy and runs == 2
    assert sup.restarts["worker"] == 1 and fatal == []
    [died] = [e for e in logs if e["event"] == "task died"]
    assert died["task"] == "worker" and died["exc_info"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_task_that_keeps_dying_stops_the_daemon() -> None:
    fatal: list[str] = []
    sup = supervisor(fatal, max_restarts=3)

    async def work() -> None:
        raise RuntimeError("always")

    with structlog.testing.capture_logs():
        await asyncio.wait_for(sup.spawn("ticker", work, forever=True), 2)
    assert fatal == ["ticker"]
    assert sup.restarts["ticker"] == 3
    assert not sup.healthy  # given up: /readyz stays 503 until the daemon is gone


async def test_a_forever_task_that_returns_is_a_death_a_plain_one_is_not() -> None:
    fatal: list[str] = []
    sup = supervisor(fatal, max_restarts=2)
    returns = 0

    async def work() -> None:
        nonlocal returns
        returns += 1

    with structlog.testing.capture_logs():
        await asyncio.wait_for(sup.spawn("sender", work), 1)
        assert returns == 1 and sup.healthy
        await asyncio.wait_for(sup.spawn("scheduler", work, forever=True), 2)
    assert returns == 1 + 3 and fatal == ["scheduler"]


async def test_cancellation_is_not_a_death() -> None:
    fatal: list[str] = []
    sup = supervisor(fatal)
    task = sup.spawn("watcher", asyncio.Event().wait, forever=True)
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sup.healthy and sup.restarts["watcher"] == 0 and fatal == []
