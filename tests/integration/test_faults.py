"""The fault matrix: real receivers on 127.0.0.1 that fail in every way, in both modes.

Each case runs an in-process daemon (ticks every second, http-response-timeout 0.5 s,
two pooled connections), produces the same six state notifications on two groups
while the receiver misbehaves, and holds the daemon to the same promises throughout:

- periodic ticks stay on time (no tick later than 100 ms, none skipped);
- the control API keeps answering quickly (every probe under 0.5 s);
- memory stays bounded (what waits never exceeds the state notifications produced plus
  one periodic notification per group);
- failures are counted in /metrics and logged with their reason;
- ``ocs`` mode: one attempt per body, no body sent twice;
- ``reliable`` mode: once the fault is gone, every state notification is accepted
  exactly once, in order per group, signed (Standard Webhooks, checked with the
  ``standardwebhooks`` package), and no attempt follows an accepted one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from standardwebhooks.webhooks import Webhook
from support.control import Control
from support.ini import make_sections, replace_ini
from support.inprocess import freeze_heap
from support.net import LOCALHOST
from support.receivers import FaultReceiver, Received, state_of
from support.waiting import eventually

from ocsd.config.settings import load_settings
from ocsd.delivery.signing import new_secret
from ocsd.service.daemon import Daemon

MODES = ("ocs", "reliable")
SECRET = new_secret()
#: (dbid, request, params, action it notifies)
SCRIPT: list[tuple[int, str, dict[str, str], int]] = [
    (101, "LoadCampaign", {}, 7),
    (102, "LoadCampaign", {}, 7),
    (101, "StartDialing", {}, 9),
    (102, "StartDialing", {}, 9),
    (101, "SetDialingMode", {"dialmode": "progressive"}, 11),
    (101, "StopDialing", {}, 10),
]
EXPECTED_ORDER = {"101": [7, 9, 11, 10], "102": [7, 9]}
#: Bounds that every case holds to.
MAX_CONTROL_S = 0.5
MAX_TICK_LATENESS_S = 0.1
MAX_WAITING = len(SCRIPT) + 3  # the state notifications + one periodic per group


def header(received: Received, name: str) -> str | None:
    for key, value in received.headers.items():
        if key.lower() == name:
            return value
    return None


def is_state(received: Received) -> bool:
    return isinstance(received.json, dict) and received.action not in (None, 0)


@dataclass
class Harness:
    """An in-process daemon on a config file, its control client, and watchers."""

    daemon: Daemon
    control: Control
    path: Path
    sections: dict[str, dict[str, Any]]
    logs: list[dict[str, Any]]
    control_latencies: list[float] = field(default_factory=list)
    waiting: list[int] = field(default_factory=list)
    _watch: asyncio.Task[None] | None = None

    async def run_script(self, steps: list[tuple[int, str, dict[str, str], int]] = SCRIPT) -> None:
        for dbid, req, params, _action in steps:
            started = time.perf_counter()
            await self.control.ok(dbid, req, **params)
            self.control_latencies.append(time.perf_counter() - started)

    async def reconfigure(self, **ocserver_or_ocsd: dict[str, Any]) -> None:
        for section, options in ocserver_or_ocsd.items():
            self.sections[section].update(options)
        replace_ini(self.path, self.sections)
        assert await self.daemon.reload("test"), "the new configuration was refused"

    def start_watching(self) -> None:
        async def watch() -> None:
            while True:
                started = time.perf_counter()
                status, _ = await self.control.request("GET", "/campaigngroups/101")
                assert status == 200
                self.control_latencies.append(time.perf_counter() - started)
                notifier = self.daemon.notifier
                self.waiting.append(notifier.pending if notifier else 0)
                await asyncio.sleep(0.05)

        self._watch = asyncio.create_task(watch())

    async def stop_watching(self) -> None:
        assert self._watch is not None
        self._watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._watch

    async def metrics(self) -> str:
        status, text = await self.control.request("GET", "/metrics")
        assert status == 200
        assert isinstance(text, str)
        return text

    def state_attempt_lines(self) -> list[dict[str, Any]]:
        return [entry for entry in self.logs if entry.get("msgid") == 81000 and "level" in entry]

    def failures(self, reason: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.logs
            if e.get("event", "").startswith("HTTP notification failed")
            and e.get("reason") == reason
        ]

    async def assert_promises(self, failure_reason: str | None) -> None:
        """What every case holds to, whatever the fault."""
        registry = self.daemon.metrics.registry
        await eventually(
            lambda: (registry.get_sample_value("ocsd_tick_lateness_seconds_count") or 0) >= 1,
            within=2.5,
            what="a periodic tick during the fault",
        )
        await self.stop_watching()
        worst = max(self.control_latencies)
        assert worst < MAX_CONTROL_S, f"a control request took {worst:.3f} s"
        ticks = registry.get_sample_value("ocsd_tick_lateness_seconds_count") or 0
        on_time = registry.get_sample_value("ocsd_tick_lateness_seconds_bucket", {"le": "0.1"}) or 0
        assert ticks >= 1, "no periodic tick ran"
        assert on_time == ticks, f"{ticks - on_time} of {ticks} ticks were later than 100 ms"
        assert self.daemon.ticker.skipped == 0
        assert max(self.waiting) <= MAX_WAITING, f"waiting grew to {max(self.waiting)}"
        if failure_reason is not None:
            text = await self.metrics()
            pattern = (
                r'ocsd_notifications_failed_total\{kind="state",reason="'
                + re.escape(failure_reason)
                + r'"\} (\d+)'
            )
            match = re.search(pattern, text)
            assert match and int(match[1]) >= 1, f"no {failure_reason!r} failure in /metrics"
            assert self.failures(failure_reason), f"no log line with reason {failure_reason!r}"


@pytest.fixture
async def harness(
    tmp_path: Path, write_ini: Callable[..., Path]
) -> AsyncIterator[Callable[..., Any]]:
    stack = contextlib.AsyncExitStack()

    async def start(uri: str, mode: str, **ocsd: Any) -> Harness:
        options: dict[str, Any] = {"delivery-mode": mode}
        if mode == "reliable":
            options |= {
                "retry-schedule": "0.2,0.4",
                "max-attempts": 100,
                "outbox-path": tmp_path / "outbox.sqlite3",
                "dead-letter-path": tmp_path / "deadletters.jsonl",
                "webhook-secret": SECRET,
            }
        options |= ocsd
        sections = make_sections(uri, interval=1, timeout=0.5, pool_size=2, ocsd=options)
        path = write_ini(sections, name="faults.ini")
        logs = stack.enter_context(structlog.testing.capture_logs())
        freeze_heap()  # as `ocsd run` freezes its heap: see support.inprocess
        daemon = Daemon(load_settings(path), config_path=str(path))
        await daemon.startup()
        stack.push_async_callback(daemon.shutdown)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        control = Control(session, f"http://{LOCALHOST}:{daemon.control_port}")
        h = Harness(daemon, control, path, sections, logs)
        h.start_watching()
        return h

    try:
        yield start
    finally:
        async with asyncio.timeout(20):
            await stack.aclose()


def assert_ocs_semantics(h: Harness, receiver: FaultReceiver | None) -> None:
    """One attempt per state notification; no body reached the receiver twice."""
    assert len(h.state_attempt_lines()) == len(SCRIPT), "a state notification was retried"
    if receiver is not None:
        twice = [raw for raw, n in Counter(r.raw for r in receiver.received).items() if n > 1]
        assert not twice, f"bodies sent twice: {twice[:2]}"


async def assert_reliable_delivery(h: Harness, receiver: FaultReceiver, within: float) -> None:
    """Every state notification accepted exactly once, in order per group, validly signed."""
    await eventually(
        lambda: len([r for r in receiver.accepted if is_state(r)]) >= len(SCRIPT),
        within=within,
        what="every state notification accepted",
    )
    await eventually(
        lambda: h.daemon.notifier.figures().outbox_pending == 0, what="the outbox emptied"
    )
    await receiver.settle(0.3)
    accepted = [r for r in receiver.accepted if is_state(r)]
    ids = [header(r, "webhook-id") for r in accepted]
    assert len(ids) == len(set(ids)) == len(SCRIPT), f"accepted more than once: {ids}"
    for dbid, actions in EXPECTED_ORDER.items():
        assert [r.action for r in accepted if r.dbid == dbid] == actions, f"order of {dbid}"
    verifier = Webhook(SECRET)
    last_accept = {header(r, "webhook-id"): r.at for r in accepted}
    for r in receiver.received:
        verifier.verify(r.raw, {k.lower(): v for k, v in r.headers.items()})
        message_id = header(r, "webhook-id")
        if message_id in last_accept:
            assert r.at <= last_accept[message_id], "an attempt followed an accepted one"


# -- the cases -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_connection_refused(mode, harness, refusing_uri, make_fault_receiver):
    h = await harness(refusing_uri, mode)
    await h.run_script()
    reason = "connection refused"
    await eventually(lambda: len(h.failures(reason)) >= len(SCRIPT), what="a refusal per body")
    await asyncio.sleep(1.2)  # at least one tick during the outage
    await h.assert_promises(reason)
    port = int(refusing_uri.split(":")[2].split("/")[0])
    if mode == "ocs":
        assert_ocs_semantics(h, None)
        assert h.daemon.notifier.pending == 0
        return
    receiver = await make_fault_receiver(port=port)  # the receiver comes back
    await assert_reliable_delivery(h, receiver, within=5)


@pytest.mark.parametrize("mode", MODES)
async def test_receiver_never_answers(mode, harness, make_fault_receiver):
    receiver = await make_fault_receiver()
    receiver.set_behaviour("hang")
    h = await harness(receiver.url, mode)
    await h.run_script()
    await eventually(
        lambda: len(h.failures("timeout")) >= len(SCRIPT), within=5, what="a timeout per body"
    )
    await asyncio.sleep(0.3)
    await h.assert_promises("timeout")
    for entry in h.failures("timeout"):
        assert entry["elapsed_ms"] < 900, "a POST outlived http-response-timeout"
    if mode == "ocs":
        assert_ocs_semantics(h, receiver)
        return
    receiver.set_behaviour("ok")
    await assert_reliable_delivery(h, receiver, within=6)


@pytest.mark.parametrize(
    ("mode", "behaviour", "reason"),
    [
        ("ocs", "status500", "HTTP 500"),
        ("ocs", "close", "connection error"),
        ("reliable", "status500", "HTTP 500"),
        ("reliable", "status503", "HTTP 503"),
        ("reliable", "close", "connection error"),
    ],
)
async def test_receiver_failing(mode, behaviour, reason, harness, make_fault_receiver):
    receiver = await make_fault_receiver()
    receiver.set_behaviour(behaviour)
    h = await harness(receiver.url, mode)
    await h.run_script()
    await eventually(lambda: len(h.failures(reason)) >= len(SCRIPT), what="a failure per body")
    await asyncio.sleep(1.0)
    await h.assert_promises(reason)
    if mode == "ocs":
        assert_ocs_semantics(h, receiver)
        assert len([r for r in receiver.received if is_state(r)]) == len(SCRIPT)
        return
    assert h.daemon.notifier.counters.retried["state"] >= len(EXPECTED_ORDER)
    receiver.set_behaviour("ok")
    await assert_reliable_delivery(h, receiver, within=5)


@pytest.mark.parametrize("mode", MODES)
async def test_slow_receiver(mode, harness, make_fault_receiver):
    receiver = await make_fault_receiver()
    receiver.set_behaviour("slow")  # 0.3 s, under the 0.5 s http-response-timeout
    h = await harness(receiver.url, mode)
    await h.run_script()
    await receiver.wait_for(len(SCRIPT), is_state, within=5)
    await asyncio.sleep(1.0)
    await h.assert_promises(None)
    assert not [e for e in h.logs if e.get("event") == "HTTP notification failed"]
    if mode == "ocs":
        assert_ocs_semantics(h, receiver)
        return
    await assert_reliable_delivery(h, receiver, within=5)


@pytest.mark.parametrize("mode", MODES)
async def test_redirect(mode, harness, make_fault_receiver):
    receiver = await make_fault_receiver()
    receiver.set_behaviour("redirect")
    h = await harness(receiver.url, mode)
    await h.run_script()
    reason = "HTTP 302"
    await eventually(lambda: len(h.failures(reason)) >= len(SCRIPT), what="a 302 per body")
    await asyncio.sleep(0.3)
    await h.assert_promises(reason)
    assert all(e["note"] == "redirects are not followed" for e in h.failures(reason))
    assert not [r for r in receiver.received if r.path == "/moved"], "a redirect was followed"
    if mode == "ocs":
        assert_ocs_semantics(h, receiver)
        return
    # not retried: straight to the dead-letter file, and re-sent from there on request
    assert len([r for r in receiver.received if is_state(r)]) == len(SCRIPT)
    status, listing = await h.control.request("GET", "/deadletters")
    assert status == 200 and listing["count"] == len(SCRIPT), listing
    assert {d["reason"] for d in listing["deadletters"]} == {reason}
    text = await h.metrics()
    assert 'ocsd_notifications_dead_lettered_total{reason="HTTP 302"} 6.0' in text
    receiver.set_behaviour("ok")
    first = listing["deadletters"][0]["id"]
    status, answer = await h.control.request("POST", "/deadletters/resend", params={"id": first})
    assert status == 200 and answer == {"resent": 1, "ids": [first]}
    status, answer = await h.control.request("POST", "/deadletters/resend", params={"id": first})
    assert status == 404, answer
    assert answer["error"] == f"no dead letter with id {first!r}", "quoted whole, as given"
    status, answer = await h.control.request("POST", "/deadletters/resend")
    assert status == 200 and answer["resent"] == len(SCRIPT) - 1
    await assert_reliable_delivery(h, receiver, within=5)
    status, listing = await h.control.request("GET", "/deadletters")
    assert listing["count"] == 0


@pytest.mark.parametrize("mode", MODES)
async def test_https_receiver_not_trusted(mode, harness, make_fault_receiver, tls_material):
    receiver = await make_fault_receiver(ssl_context=tls_material.server_context())
    assert receiver.url.startswith("https://")
    h = await harness(receiver.url, mode)
    await h.run_script()
    reason = "TLS certificate not trusted"
    await eventually(lambda: len(h.failures(reason)) >= len(SCRIPT), what="a TLS failure per body")
    await h.assert_promises(reason)
    failure = h.failures(reason)[0]
    assert failure["host"] == LOCALHOST
    assert "ca-file" in failure["hint"]
    assert not receiver.received, "an untrusted receiver got a body"
    # trusting the test CA (a reload) makes it work
    h.start_watching()
    await h.reconfigure(ocsd={"ca-file": tls_material.ca_file})
    if mode == "ocs":
        assert_ocs_semantics(h, receiver)
        await h.control.ok(102, "StopDialing")
        (stop,) = await receiver.wait_for(1, is_state)
        assert stop.action == 10 and stop.dbid == "102"
        await h.assert_promises(reason)
        return
    await assert_reliable_delivery(h, receiver, within=5)
    await h.assert_promises(reason)


@pytest.mark.parametrize("mode", MODES)
async def test_uri_changed_to_a_bad_one_and_back(mode, harness, make_fault_receiver, refusing_uri):
    receiver = await make_fault_receiver()
    h = await harness(receiver.url, mode)
    await h.run_script(SCRIPT[:2])
    await receiver.wait_for(2, is_state)
    await h.reconfigure(OCServer={"campaigngroup-states-uri": refusing_uri})
    await h.run_script(SCRIPT[2:4])
    reason = "connection refused"
    await eventually(lambda: len(h.failures(reason)) >= 2, what="refusals at the bad URI")
    await asyncio.sleep(1.0)
    await h.reconfigure(OCServer={"campaigngroup-states-uri": receiver.url})
    await h.run_script(SCRIPT[4:])
    if mode == "ocs":
        await receiver.wait_for(4, is_state)
        await receiver.settle()
        got = [r.action for r in receiver.received if is_state(r)]
        assert got == [7, 7, 11, 10], "ocs mode: what failed at the bad URI is lost, as in OCS"
        assert_ocs_semantics(h, receiver)
    else:
        await assert_reliable_delivery(h, receiver, within=5)
    await h.assert_promises(reason)


async def test_ocs_mode_signs_when_a_secret_is_set(harness, make_fault_receiver):
    receiver = await make_fault_receiver()
    h = await harness(receiver.url, "ocs", **{"webhook-secret": SECRET})
    await h.run_script()
    received = await receiver.wait_for(len(SCRIPT), is_state)
    ids = {header(r, "webhook-id") for r in received}
    assert len(ids) == len(received), "each body has its own webhook-id"
    for r in received:
        Webhook(SECRET).verify(r.raw, {k.lower(): v for k, v in r.headers.items()})
    await h.assert_promises(None)


async def test_ocs_mode_sends_no_signature_headers_without_a_secret(harness, make_fault_receiver):
    receiver = await make_fault_receiver()
    h = await harness(receiver.url, "ocs")
    await h.run_script(SCRIPT[:1])
    (load,) = await receiver.wait_for(1, is_state)
    assert header(load, "webhook-id") is None and header(load, "webhook-signature") is None
    await h.assert_promises(None)


async def test_reliable_retry_after_and_client_errors(harness, make_fault_receiver):
    """429 waits at least Retry-After; 410 stops delivery until the configuration
    changes; another 4xx is not retried (dead letter)."""
    receiver = await make_fault_receiver()
    receiver.retry_after = "1"
    answered: Counter[tuple[str, int]] = Counter()

    def answer(_request: Any, raw: bytes) -> str | None:
        body = json.loads(raw)
        key = (body["GSW_CAMPAIGN_GROUP_DBID"], body["GSW_CAMPAIGN_GROUP_ACTION"])
        answered[key] += 1
        if key == ("101", 7) and answered[key] == 1:
            return "status429"
        if key == ("102", 7):
            return "status400"
        return None

    receiver.answer_for = answer
    h = await harness(receiver.url, "reliable")
    await h.run_script(SCRIPT[:1])
    first, second = await receiver.wait_for(2, state_of(101), within=4)
    assert second.at - first.at >= 0.95, "Retry-After: 1 was not honoured"
    assert header(first, "webhook-id") == header(second, "webhook-id")
    assert header(first, "webhook-timestamp") is not None

    await h.run_script(SCRIPT[1:2])
    await eventually(
        lambda: h.daemon.notifier.figures().dead_letters == 1, what="400 dead-lettered"
    )
    assert h.daemon.notifier.counters.dead_lettered["HTTP 400"] == 1
    assert answered[("102", 7)] == 1, "a 400 was retried"

    receiver.set_behaviour("status410")
    await h.run_script(SCRIPT[2:4])
    await eventually(lambda: h.daemon.notifier.figures().stopped, what="delivery stopped on 410")
    await receiver.settle(1.0)
    attempts = receiver.count()
    await h.run_script(SCRIPT[4:])
    await receiver.settle(0.7)
    assert receiver.count() == attempts, "something was sent after 410 Gone"
    assert "ocsd_delivery_stopped 1.0" in await h.metrics()
    assert h.daemon.notifier.figures().outbox_pending == 4  # 9, 9, 11, 10 wait in the outbox
    # a configuration change (a new URI, here the same receiver under another path) resumes
    receiver.set_behaviour("ok")
    await h.reconfigure(OCServer={"campaigngroup-states-uri": receiver.url_for("/v2/state")})
    accepted = await receiver.wait_for(5, lambda r: is_state(r) and r.behaviour == "ok")
    by_group = {d: [r.action for r in accepted if r.dbid == d] for d in ("101", "102")}
    assert by_group == {"101": [7, 9, 11, 10], "102": [9]}
    await h.assert_promises("HTTP 410")
