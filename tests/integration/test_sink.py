"""``ocsd sink`` as a real HTTP server on 127.0.0.1: verdicts, refusals, record, dashboard
API, and a real in-process daemon posting a whole life cycle to it."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from support.identities import group_snapshot, identity
from support.inprocess import freeze_heap

from ocsd.core.body import build_body
from ocsd.core.genesys import Action, Actor, DialMode, GroupStatus, OptimizeBy
from ocsd.core.identity import Tenant
from ocsd.core.lifecycle import Dialing
from ocsd.core.statistics import GroupStatistics
from ocsd.receiver.sink import MAX_BODY_BYTES, SERIES_POINTS, Sink, create_app, start_site
from ocsd.receiver.validate import load_schema

LOCALHOST = "127.0.0.1"
PATH = "/ocs/campaign-group-state"
IDENTITY = identity()
WITHIN = aiohttp.ClientTimeout(total=5)


def body(
    action: int, status: int, at: float, dbid: int = 101, hit: float | None = 0.3
) -> dict[str, Any]:
    dialing = Dialing(DialMode.PREDICTIVE, OptimizeBy.BUSY_FACTOR, 85) if status == 5 else None
    ident = identity(dbid, IDENTITY.name if dbid == 101 else f"Group {dbid}")
    actor = Actor.UNKNOWN if action == 0 else Actor.CLIENT
    snapshot = group_snapshot(
        ident,
        GroupStatus(status),
        dialing,
        Action(action),
        actor,
        at,
        GroupStatistics(busy_factor=0.8, hit_ratio=hit, overdial_rate=0.01, time_to_complete=60),
    )
    return build_body(snapshot, Tenant())


@dataclass
class Running:
    sink: Sink
    url: str
    session: aiohttp.ClientSession
    record: Path

    async def post(
        self, data: Any = None, *, raw: bytes | None = None, content_type: str | None = None
    ) -> tuple[int, Any]:
        payload: Any = raw if raw is not None else orjson.dumps(data)
        if len(payload) > 64 * 1024:
            payload = io.BytesIO(payload)  # aiohttp refuses large raw bytes
        headers = {"Content-Type": content_type or "application/json"}
        if content_type == "":
            headers = {}
        async with self.session.post(
            self.url + PATH, data=payload, headers=headers, timeout=WITHIN
        ) as response:
            text = await response.text()
            return response.status, json.loads(text)

    async def get(self, path: str) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
        async with self.session.get(self.url + path, timeout=WITHIN) as response:
            raw = await response.read()
            try:
                data: Any = json.loads(raw)
            except ValueError:
                data = raw.decode()
            return response.status, data, response.headers

    def recorded(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.record.read_text().splitlines()]


@pytest.fixture
async def sink_server(tmp_path: Path) -> AsyncIterator[Running]:
    record_path = tmp_path / "record.jsonl"
    with record_path.open("ab") as record:
        sink = Sink(record)
        runner, port = await start_site(create_app(sink), LOCALHOST, 0)
        session = aiohttp.ClientSession()
        try:
            yield Running(sink, f"http://{LOCALHOST}:{port}", session, record_path)
        finally:
            await session.close()
            async with asyncio.timeout(10):
                await runner.cleanup()


async def test_a_valid_message_gets_2xx(sink_server):
    status, answer = await sink_server.post(body(7, 4, 1000.0))
    assert status == 200
    assert answer == {"ok": True}
    assert sink_server.sink.accepted == 1


async def test_a_schema_violation_gets_422_naming_the_field_and_rule(sink_server):
    bad = body(7, 4, 1000.0)
    bad["GSW_DIAL_MODE"] = 1
    status, answer = await sink_server.post(bad)
    assert status == 422
    assert answer["field"] == "GSW_DIAL_MODE"
    assert answer["rule"] == "schema.dial-mode-only-while-running"
    assert answer["error"].startswith("GSW_DIAL_MODE: must be left out")
    assert answer["problems"][0] == {
        "rule": answer["rule"],
        "field": "GSW_DIAL_MODE",
        "message": answer["problems"][0]["message"],
    }

    missing = body(7, 4, 1000.0)
    del missing["GSW_CAMPAIGN_GROUP_UUID"]
    status, answer = await sink_server.post(missing)
    assert (status, answer["field"], answer["rule"]) == (
        422,
        "GSW_CAMPAIGN_GROUP_UUID",
        "schema.required",
    )


@pytest.mark.parametrize(
    ("messages", "rule", "field"),
    [
        pytest.param(
            [(7, 4, 1.0), (9, 5, 2.0), (7, 4, 3.0)],
            "transition",
            "GSW_CAMPAIGN_GROUP_ACTION",
            id="transition",
        ),
        pytest.param(
            [(7, 4, 1.0), (8, 0, 2.0), (0, 4, 3.0)],
            "periodic-not-loaded",
            "GSW_CAMPAIGN_GROUP_ACTION",
            id="periodic-not-loaded",
        ),
        pytest.param([(9, 4, 1.0)], "action-status", "GSW_CAMPAIGN_GROUP_STATUS", id="pair"),
    ],
)
async def test_a_life_cycle_violation_gets_409_naming_the_rule(sink_server, messages, rule, field):
    *before, last = messages
    for action, status, at in before:
        assert (await sink_server.post(body(action, status, at)))[0] == 200
    code, answer = await sink_server.post(body(*last))
    assert code == 409
    assert (answer["rule"], answer["field"]) == (rule, field)
    assert answer["error"].endswith(f"[{rule}]")


async def test_a_duplicate_and_an_out_of_order_message_are_delivery_anomalies_not_violations(
    sink_server,
):
    """What networks and retries do is answered 200 and reported as what it is, apart
    from the contract's violations (rules) and without changing the group's state."""
    assert (await sink_server.post(body(7, 4, 10.0)))[0] == 200
    assert (await sink_server.post(body(9, 5, 11.0)))[0] == 200
    code, duplicate = await sink_server.post(body(9, 5, 11.0))  # the same body again
    assert (code, duplicate["ok"], duplicate["delivery"]) == (200, True, "duplicate")
    code, late = await sink_server.post(body(0, 4, 10.5))  # older than the start
    assert (code, late["delivery"]) == (200, "out-of-order")
    assert "10.500" in late["note"] and "11.000" in late["note"]
    _code, state, _headers = await sink_server.get("/api/state")
    assert state["delivery_anomalies"] == {"duplicate": 1, "out-of-order": 1}
    assert (state["accepted"], state["refused"], state["rules"]) == (4, 0, {})
    (group,) = state["groups"]
    assert (group["status"], group["violations"], group["delivery_anomalies"]) == (5, 0, 2)
    assert state["feed"][0]["delivery"] == "out-of-order"


async def test_bad_input_is_refused_and_the_sink_keeps_serving(sink_server):
    answers = [
        await sink_server.post(raw=b"{not json", content_type="application/json"),
        await sink_server.post(raw=b"\xff\xfe", content_type="application/json"),
        await sink_server.post(raw=b"", content_type="application/json"),
        await sink_server.post(raw=b"[1, 2]", content_type="application/json"),
        await sink_server.post(raw=b"null", content_type="application/json"),
        await sink_server.post(raw=b'{"a": 1}', content_type="text/plain"),
        await sink_server.post(raw=b'{"a": 1}', content_type=""),
        await sink_server.post(raw=b"x" * (MAX_BODY_BYTES + 1), content_type="application/json"),
        await sink_server.post(raw=b" " * (2 * MAX_BODY_BYTES), content_type="application/json"),
    ]
    assert [(code, answer["rule"]) for code, answer in answers] == [
        (400, "json"),
        (400, "json"),
        (400, "json"),
        (422, "schema.type"),
        (422, "schema.type"),
        (415, "content-type"),
        (415, "content-type"),
        (413, "size"),
        (413, "size"),
    ]
    assert all("error" in answer for _code, answer in answers)
    assert "text/plain" in answers[5][1]["error"]

    # still serving, and still judging
    assert (await sink_server.get("/healthz"))[0] == 200
    assert await sink_server.post(body(7, 4, 1.0)) == (200, {"ok": True})
    assert await sink_server.post(
        body(9, 5, 2.0), content_type="application/json; charset=utf-8"
    ) == (
        200,
        {"ok": True},
    )
    assert (sink_server.sink.accepted, sink_server.sink.refused) == (2, 9)


async def test_many_connections_at_once(sink_server):
    results = await asyncio.gather(
        *(sink_server.post(body(7, 4, 1.0, dbid=1000 + i)) for i in range(50)),
        *(sink_server.post(raw=b"nope", content_type="application/json") for _ in range(20)),
    )
    assert [code for code, _ in results] == [200] * 50 + [400] * 20


async def test_record_holds_every_message_with_its_verdict(sink_server):
    await sink_server.post(body(7, 4, 1.0))
    await sink_server.post(body(7, 4, 2.0))  # load twice: transition
    await sink_server.post(raw=b"nope", content_type="application/json")
    await sink_server.post(raw=b"{}", content_type="text/plain")
    lines = sink_server.recorded()
    assert [(e["seq"], e["status"], e["verdict"], e["rule"]) for e in lines] == [
        (1, 200, "valid", None),
        (2, 409, "invalid", "transition"),
        (3, 400, "invalid", "json"),
        (4, 415, "invalid", "content-type"),
    ]
    assert lines[0]["body"]["GSW_CAMPAIGN_GROUP_DBID"] == "101"
    assert lines[1]["field"] == "GSW_CAMPAIGN_GROUP_ACTION"
    assert lines[1]["error"].endswith("[transition]")
    assert lines[2]["raw"] == "nope"
    assert all(isinstance(e["received"], float) for e in lines)


async def test_the_dashboard_api_has_groups_series_and_the_feed(sink_server):
    await sink_server.post(body(7, 4, 1.0))
    await sink_server.post(body(9, 5, 2.0))
    await sink_server.post(body(0, 5, 3.0, hit=0.25))
    await sink_server.post(body(0, 5, 4.0, hit=None))
    await sink_server.post(body(0, 5, 3.5))  # late: out of order, not in the series
    await sink_server.post(body(7, 4, 1.0, dbid=102))
    code, state, _headers = await sink_server.get("/api/state")
    assert code == 200
    assert [g["dbid"] for g in state["groups"]] == ["101", "102"]
    group = state["groups"][0]
    assert (group["status"], group["dial_mode"], group["optimize_by"], group["optimize_goal"]) == (
        5,
        1,
        1,
        85,
    )
    assert group["hit_ratio"] is None and group["busy_factor"] == 0.8
    assert (group["messages"], group["violations"], group["last_verdict"]) == (5, 0, "out-of-order")
    assert state["series_fields"] == [
        "at",
        "busy_factor",
        "hit_ratio",
        "overdial_rate",
        "time_to_complete",
    ]
    assert [p[0] for p in state["series"]["101"]] == [1.0, 2.0, 3.0, 4.0]
    assert [p[2] for p in state["series"]["101"]] == [0.3, 0.3, 0.25, None]
    feed = state["feed"]
    assert [e["seq"] for e in feed] == [6, 5, 4, 3, 2, 1], "newest first"
    assert (feed[1]["valid"], feed[1]["delivery"], feed[1]["http_status"]) == (
        True,
        "out-of-order",
        200,
    )
    assert (state["accepted"], state["refused"], state["rules"]) == (6, 0, {})


async def test_the_series_is_capped(sink_server):
    await sink_server.post(body(7, 4, 0.0))
    for i in range(SERIES_POINTS + 20):
        sink_server.sink.take(
            sink_server.sink.judge(orjson.dumps(body(0, 4, 1.0 + i)), "application/json")
        )
    _code, state, _headers = await sink_server.get("/api/state")
    assert len(state["series"]["101"]) == SERIES_POINTS
    assert len(state["feed"]) == 50


async def test_the_dashboard_page_schema_and_messages_are_served(sink_server):
    code, page, headers = await sink_server.get("/")
    assert code == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert '<script src="/static/dashboard.js"' in page
    for name in ("dashboard.js", "dashboard.css", "favicon.svg"):
        code, _data, _headers = await sink_server.get(f"/static/{name}")
        assert code == 200, name
    for path in ("/static/nothing.js", "/static/..%2Fsink.py", "/static/../sink.py"):
        assert (await sink_server.get(path))[0] in (404, 405), path
    code, schema, headers = await sink_server.get("/schema")
    assert code == 200 and schema == load_schema()
    await sink_server.post(body(7, 4, 1.0))
    code, messages, _headers = await sink_server.get("/messages")
    assert code == 200
    (entry,) = messages["latest"]
    assert (entry["status"], entry["verdict"], entry["body"]["GSW_CAMPAIGN_GROUP_ACTION"]) == (
        200,
        "valid",
        7,
    )


# -- a real daemon posting to the sink ----------------------------------------------------


@contextlib.asynccontextmanager
async def daemon_posting_to(sink_url: str, write_ini: Any, ini_sections: Any) -> AsyncIterator[Any]:
    """An in-process Daemon (ephemeral control port) whose receiver is the sink."""
    from ocsd.config.settings import load_settings
    from ocsd.service.daemon import Daemon

    sections = ini_sections(
        sink_url + PATH,
        interval=1,
        ocsd={"time-scale": 600, "seed": 11},
        **{
            # calls that ring long enough to outlive an unload: WaitingUnload is seen
            "calling-list:Renewals_Q4": {"no-answer-timeout": 1200},
            "calling-list:Renewals_Lapsed": {"no-answer-timeout": 1200},
        },
    )
    freeze_heap()  # as `ocsd run` freezes its heap: see support.inprocess
    daemon = Daemon(load_settings(write_ini(sections, name="to-sink.ini")))
    await daemon.startup()
    try:
        yield daemon
    finally:
        async with asyncio.timeout(20):
            await daemon.shutdown()


async def wait_for(condition: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not within {within} s")


async def test_every_body_a_real_daemon_sends_is_valid_over_a_full_life_cycle(
    sink_server, write_ini, ini_sections
):
    sink = sink_server.sink

    def seen(dbid: str, action: int, status: int | None = None) -> bool:
        return any(
            e["body"]
            and e["body"].get("GSW_CAMPAIGN_GROUP_DBID") == dbid
            and e["body"].get("GSW_CAMPAIGN_GROUP_ACTION") == action
            and (status is None or e["body"].get("GSW_CAMPAIGN_GROUP_STATUS") == status)
            for e in sink.latest
        )

    async with daemon_posting_to(sink_server.url, write_ini, ini_sections) as daemon:
        ask = daemon.control.handle_request
        from ocsd.core.genesys import Request
        from ocsd.core.lifecycle import DialingChange

        for dbid in (101, 102, 103):
            ask(dbid, Request.LOAD, DialingChange(), None)
        await wait_for(lambda: seen("103", 0), 5, "a periodic body of a loaded group")
        for dbid in (101, 102, 103):
            ask(dbid, Request.START, DialingChange(), None)
        ask(102, Request.SET_DIAL_MODE, DialingChange(mode=DialMode.PREDICTIVE), None)
        await wait_for(lambda: seen("102", 0, 5), 5, "a periodic body of a running group")
        ask(101, Request.UNLOAD, DialingChange(), None)  # running with calls: 10, WaitingUnload
        await wait_for(lambda: seen("101", 0, 1), 5, "a periodic body while the unload waits")
        await wait_for(lambda: seen("101", 8, 0), 10, "the unload completing")
        ask(102, Request.STOP, DialingChange(), None)
        ask(102, Request.UNLOAD, DialingChange(), None)
        ask(103, Request.FORCE_UNLOAD, DialingChange(), None)
        ask(101, Request.LOAD, DialingChange(), None)
        await wait_for(lambda: seen("101", 7) and seen("103", 29), 5, "the last notifications")
        await asyncio.sleep(1.2)  # one more round of periodic bodies
    sent = sum(daemon.notifier.counters.sent.values()) if daemon.notifier else 0
    refused = [e for e in sink.latest if e["verdict"] != "valid"]
    assert refused == [], f"the daemon sent bodies the sink refuses: {refused[:3]}"
    assert sink.accepted == sent == len(sink.latest)
    actions = {e["body"]["GSW_CAMPAIGN_GROUP_ACTION"] for e in sink.latest}
    assert actions == {0, 7, 8, 9, 10, 11, 29}
    statuses = {e["body"]["GSW_CAMPAIGN_GROUP_STATUS"] for e in sink.latest}
    assert statuses == {0, 1, 4, 5}
    assert any(e["body"]["GSW_STAT_HIT_RATIO"] is not None for e in sink.latest), (
        "the statistics moved"
    )
