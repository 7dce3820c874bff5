"""The notifier's periodic queue: bodies built when sent, every group served in turn."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from support.net import bound_port

from ocsd.delivery.notifier import DeliveryPolicy, Notification, Notifier
from ocsd.delivery.ocs import OcsPolicy
from ocsd.delivery.reliable import ReliablePolicy
from ocsd.delivery.transport import Transport

LOCALHOST = "127.0.0.1"


class SlowReceiver:
    """A real receiver on 127.0.0.1 that takes ``delay`` seconds per answer."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.bodies: list[dict[str, str]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        async def handle(request: web.Request) -> web.Response:
            self.bodies.append(json.loads(await request.read()))
            await asyncio.sleep(self.delay)
            return web.Response(status=200)

        app = web.Application()
        app.router.add_post("/ocs", handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOCALHOST, 0)
        await site.start()
        port = bound_port(self._runner)
        self.url = f"http://{LOCALHOST}:{port}/ocs"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def slow_receiver() -> AsyncIterator[SlowReceiver]:
    receiver = SlowReceiver(0.05)
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


def periodic(dbid: int) -> Notification:
    return Notification("periodic", f"Group {dbid}", dbid)  # no body: built when sent


async def test_a_periodic_body_is_built_when_sent_and_not_at_all_for_an_unloaded_group(
    slow_receiver: SlowReceiver,
) -> None:
    built: list[int] = []
    loaded = {1, 2}
    stamp = 0

    def build(dbid: int) -> bytes | None:
        nonlocal stamp
        if dbid not in loaded:
            return None
        built.append(dbid)
        stamp += 1
        return json.dumps({"GSW_CAMPAIGN_GROUP_DBID": str(dbid), "n": stamp}).encode()

    notifier = Notifier(Transport(slow_receiver.url, 2.0, 1), OcsPolicy(), source=build)
    await notifier.start()
    try:
        for dbid in (1, 2, 3):
            notifier.submit(periodic(dbid))
        for _ in range(5):  # due again while it waits: still one body, built at send time
            notifier.submit(periodic(2))
        await asyncio.sleep(0.6)  # two POSTs of 0.05 s each, and some room
        assert notifier.pending == 0
    finally:
        await notifier.close(1)
    assert [b["GSW_CAMPAIGN_GROUP_DBID"] for b in slow_receiver.bodies] == ["1", "2"]
    assert built == [1, 2]  # nothing built to be thrown away
    dropped = notifier.counters.dropped
    assert dropped[("periodic", "group no longer loaded")] == 1
    assert dropped[("periodic", "superseded by a newer periodic notification")] == 5


@pytest.mark.parametrize("mode", ["ocs", "reliable"])
async def test_under_overload_every_group_is_served_in_turn(
    slow_receiver: SlowReceiver, mode: str, tmp_path
) -> None:
    """8 groups due every 0.1 s, one connection answering in 0.05 s: 2 of 8 fit per
    round. A group due again while it waits keeps its place, so no group starves."""

    def build(dbid: int) -> bytes:
        return json.dumps({"GSW_CAMPAIGN_GROUP_DBID": str(dbid)}).encode()

    policy: DeliveryPolicy = (
        ReliablePolicy(
            outbox_path=str(tmp_path / "outbox.sqlite3"),
            dead_letter_path=str(tmp_path / "dead.jsonl"),
        )
        if mode == "reliable"
        else OcsPolicy()
    )
    notifier = Notifier(Transport(slow_receiver.url, 2.0, 1), policy, source=build)
    await notifier.start()
    try:
        for _round in range(16):
            for dbid in range(1, 9):
                notifier.submit(periodic(dbid))
            await asyncio.sleep(0.1)
    finally:
        await notifier.close(0.5)
    served = Counter(b["GSW_CAMPAIGN_GROUP_DBID"] for b in slow_receiver.bodies)
    assert set(served) == {str(dbid) for dbid in range(1, 9)}, served
    assert max(served.values()) - min(served.values()) <= 2, served
