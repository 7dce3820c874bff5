"""A failing receiver never stops the daemon: OCS semantics, one attempt, no retry."""

from __future__ import annotations

import time


async def test_receiver_answering_500(start_daemon, receiver, ini_sections, wait_until):
    receiver.set_behaviour("status500")
    ocsd = await start_daemon(ini_sections(receiver.url))
    counters = ocsd.daemon.notifier.counters

    await ocsd.control.ok(101, "LoadCampaign")
    await ocsd.control.ok(101, "StartDialing")
    await receiver.wait_for(2, receiver.state_of(101))
    await wait_until(lambda: counters.failed[("state", "HTTP 500")] == 2, what="2 failures")
    await receiver.settle()
    assert receiver.count() == 2, f"a failed POST was retried: {receiver.received}"
    assert sum(counters.sent.values()) == 0

    # the daemon keeps working and delivers once the receiver recovers
    receiver.set_behaviour("ok")
    await ocsd.control.ok(101, "StopDialing")
    (stop,) = [r for r in await receiver.wait_for(3) if r.action == 10]
    assert stop.json["GSW_CAMPAIGN_GROUP_STATUS"] == 4
    await wait_until(lambda: counters.sent["state"] == 1, what="the stop body counted as sent")
    assert counters.failed[("state", "HTTP 500")] == 2


async def test_receiver_hanging(start_daemon, receiver, ini_sections, wait_until):
    receiver.set_behaviour("hang")
    ocsd = await start_daemon(ini_sections(receiver.url, timeout=1))
    counters = ocsd.daemon.notifier.counters

    await ocsd.control.ok(101, "LoadCampaign")
    await receiver.wait_for(1)  # the POST is now held open by the receiver

    started = time.perf_counter()
    view = await ocsd.control.group(101)
    await ocsd.control.ok(101, "StartDialing")
    status, _ = await ocsd.control.request("GET", "/campaigngroups")
    elapsed = time.perf_counter() - started
    assert status == 200
    assert view["status"]["code"] == 4
    assert elapsed < 0.5, f"control requests took {elapsed:.2f} s while the receiver hangs"

    # the hanging POST is abandoned after http-response-timeout; the next one is still tried
    started = time.perf_counter()
    second = await receiver.wait_for(2, receiver.state_of(101), within=4)
    assert [r.action for r in second] == [7, 9]
    assert time.perf_counter() - started < 2.5
    await wait_until(
        lambda: counters.failed[("state", "timeout")] >= 1, within=3, what="a timeout counted"
    )
    assert receiver.count(lambda r: r.action == 7) == 1, "the timed-out POST was retried"


async def test_receiver_closing_the_connection(start_daemon, receiver, ini_sections, wait_until):
    receiver.set_behaviour("close")
    ocsd = await start_daemon(ini_sections(receiver.url))
    counters = ocsd.daemon.notifier.counters

    await ocsd.control.ok(101, "LoadCampaign")
    await receiver.wait_for(1)
    await wait_until(
        lambda: counters.failed[("state", "connection error")] == 1, what="a connection error"
    )
    receiver.set_behaviour("ok")
    await ocsd.control.ok(101, "StartDialing")
    await receiver.wait_for(2)
    await wait_until(lambda: counters.sent["state"] == 1, what="the start body sent")
    await receiver.settle()
    assert [r.action for r in receiver.received] == [7, 9], "one attempt per change, no retry"


async def test_receiver_refusing_connections(start_daemon, refusing_uri, ini_sections, wait_until):
    ocsd = await start_daemon(ini_sections(refusing_uri))
    counters = ocsd.daemon.notifier.counters

    for req in ("LoadCampaign", "StartDialing", "SetDialingMode", "StopDialing"):
        params = {"dialmode": "progressive"} if req == "SetDialingMode" else {}
        await ocsd.control.ok(101, req, **params)
    await wait_until(
        lambda: counters.failed[("state", "connection refused")] == 4, what="4 refusals counted"
    )
    assert await ocsd.control.status_code(101) == 4
    status, health = await ocsd.control.request("GET", "/healthz")
    assert status == 200 and health["status"] == "ok"
    await wait_until(lambda: ocsd.daemon.notifier.pending == 0, what="nothing left pending")
    assert sum(counters.sent.values()) == 0
