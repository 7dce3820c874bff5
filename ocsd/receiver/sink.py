"""``ocsd sink``: a receiver that judges every CampaignGroupState notification.

Every POST (any path) is a notification. The sink answers:

- 2xx (200 ``{"ok": true}``) to a message that holds to the schema and to the life cycle,
  also when delivery did something to it: a duplicate of the group's previous message
  or one that arrived out of order is answered 200 with ``"delivery": "duplicate"`` or
  ``"out-of-order"``, counted and shown apart from the violations;
- 415 to a Content-Type that is not JSON or a body with a Content-Encoding (ocsd never
  compresses; the connection is closed without reading the body), 413 to a body over the size limit, 400 to a
  body that is not JSON or nests deeper than any CampaignGroupState can, 422 to a body that breaks the schema (contract: The body and Enumerations, docs/contract.md#body),
  409 to a valid body that breaks the life cycle (contract: Life cycle, docs/contract.md#life-cycle: a
  transition it does not allow, a periodic notification for a group that is not loaded, an
  action/status pair that does not fit).

Every refusal is ``{"error": "<field>: <what> [<rule>]", "field": ..., "rule": ...,
"problems": [...]}``. The rules live in :mod:`ocsd.receiver.validate`. The sink logs a one-line
summary per message, can record every message with its verdict as JSON lines, and
keeps serving whatever it gets.

It also serves a live dashboard at ``/`` (static HTML, JS and hand-drawn SVG in
``ocsd/static``) that polls ``GET /api/state``: the groups, a capped time series of
their statistics and the latest messages with their verdicts. ``GET /messages`` returns
the latest messages in full, ``GET /schema`` the JSON Schema, ``GET /healthz`` ok.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import IO, Any

import orjson
from aiohttp import web

from ocsd.core import genesys as gsw
from ocsd.core.genesys import status_name
from ocsd.logs import configure_logging, get_logger
from ocsd.receiver.display import duration_text
from ocsd.receiver.listener import ConnectionLimits, connection_cap, serve
from ocsd.receiver.refusals import answer_malformed_as_json, close_unread, content_encoding
from ocsd.receiver.validate import (
    DELIVERY_ANOMALIES,
    MAX_NESTING,
    LifeCycleChecker,
    Problem,
    action_name,
    nested_deeper_than,
    schema_problems,
    schema_text,
)

#: Largest body accepted; a real one is about 1 KB.
MAX_BODY_BYTES = 1024 * 1024
#: Messages kept in full for ``GET /messages``, and the bytes they may take in all
#: (``--keep-bytes``): kept as their JSON text, not as parsed objects (~24x larger).
KEEP_LATEST = 1000
KEEP_BYTES = 32 * 1024 * 1024
#: Longest text of a body kept for the dashboard (a name can be a megabyte long), and
#: calling lists kept per group.
TEXT_KEPT = 200
LISTS_KEPT = 50
#: Messages kept, in short, for the dashboard's feed.
FEED_LENGTH = 100
#: Groups shown on the dashboard at most (a flood of DBIDs cannot exhaust memory).
BOARD_GROUPS = 500
#: Refused messages kept apart for the dashboard, so a refusal does not scroll away at once.
REFUSALS_KEPT = 20
REFUSALS_SHOWN = 3
#: Points kept per group for the dashboard's charts (at a 2 s interval: 20 minutes).
SERIES_POINTS = 600
#: Characters of a body that is not JSON kept in the record.
RAW_EXCERPT = 200

log = get_logger("ocsd.receiver.sink")

STATIC_FILES = {
    "index.html": "text/html",
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
ACTORS = {0: "unknown", 1: "client", 2: "schedule", 3: "OCS"}
STATISTICS = (
    ("busy_factor", gsw.GSW_STAT_BUSY_FACTOR),
    ("hit_ratio", gsw.GSW_STAT_HIT_RATIO),
    ("overdial_rate", gsw.GSW_STAT_OVERDIAL_RATE),
    ("time_to_complete", gsw.GSW_STAT_TIME_TO_COMPLETE),
)


@dataclass
class Judgement:
    """The sink's verdict on one POST."""

    http_status: int
    body: Any = None
    problems: list[Problem] = field(default_factory=list)
    raw_excerpt: str | None = None
    anomalies: list[Problem] = field(default_factory=list)  # delivery: duplicate, out of order

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def delivery(self) -> str | None:
        """What delivery did to a valid message (``duplicate``, ``out-of-order``), if anything."""
        return self.anomalies[0].rule if self.anomalies else None

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def answer(self) -> dict[str, Any]:
        if self.first is None:
            if self.anomalies:
                return {"ok": True, "delivery": self.delivery, "note": self.anomalies[0].message}
            return {"ok": True}
        return {
            "error": str(self.first),
            "field": self.first.field,
            "rule": self.first.rule,
            "problems": [p.as_dict() for p in self.problems],
        }


def summary(body: dict[str, Any]) -> str:
    """One line about a valid body: ``Renewals@Retention Team: StartDialing (9) by ...``."""
    action = body.get(gsw.GSW_CAMPAIGN_GROUP_ACTION, -1)
    status = body.get(gsw.GSW_CAMPAIGN_GROUP_STATUS, -1)
    actor = ACTORS.get(body.get(gsw.GSW_CAMPAIGN_GROUP_ACTOR, -1), "?")
    what = "periodic" if action == 0 else f"{action_name(action)} by {actor}"
    text = f"{_clip(body.get(gsw.GSW_CAMPAIGN_GROUP_NAME))}: {what} -> {status_name(status)}"
    if gsw.GSW_DIAL_MODE in body:
        text += f", dial mode {_clip(body[gsw.GSW_DIAL_MODE])}"
    stats = [
        f"{short}={_fmt(body.get(key))}"
        for short, key in (
            ("busy", gsw.GSW_STAT_BUSY_FACTOR),
            ("hit", gsw.GSW_STAT_HIT_RATIO),
            ("overdial", gsw.GSW_STAT_OVERDIAL_RATE),
            ("ttc", gsw.GSW_STAT_TIME_TO_COMPLETE),
        )
    ]
    return f"{text}; {' '.join(stats)}"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(_clip(value))[:TEXT_KEPT]


def _feed_item(
    seq: int, received: float, judgement: Judgement, body: dict[str, Any] | None
) -> dict[str, Any]:
    """One line of the dashboard's message feed: the verdict and what the body says."""
    first = judgement.first
    return {
        "seq": seq,
        "received": received,
        "http_status": judgement.http_status,
        "valid": judgement.valid,
        "rule": first.rule if first else None,
        "field": first.field if first else None,
        "error": first.message if first else None,
        "delivery": judgement.delivery,
        "group": _text(body, gsw.GSW_CAMPAIGN_GROUP_NAME),
        "dbid": _text(body, gsw.GSW_CAMPAIGN_GROUP_DBID),
        "at": _text(body, gsw.GSW_DATE_TIME),
        "action": _value(body, gsw.GSW_CAMPAIGN_GROUP_ACTION),
        "status": _value(body, gsw.GSW_CAMPAIGN_GROUP_STATUS),
        "actor": _value(body, gsw.GSW_CAMPAIGN_GROUP_ACTOR),
        "dial_mode": _value(body, gsw.GSW_DIAL_MODE),
        **{name: _value(body, key) for name, key in STATISTICS},
    }


def _group_view(dbid: str, at: float, received: float, body: dict[str, Any]) -> dict[str, Any]:
    """The dashboard's row of a group, from a body that holds to the schema."""
    return {
        "dbid": dbid,
        "name": _clip(body[gsw.GSW_CAMPAIGN_GROUP_NAME]),
        "uuid": _clip(body[gsw.GSW_CAMPAIGN_GROUP_UUID]),
        "campaign": _clip(body[gsw.GSW_CAMPAIGN_NAME]),
        "group": _clip(body[gsw.GSW_GROUP_NAME]),
        "template": _clip(body.get(gsw.GSW_CAMPAIGN_TEMPLATE_NAME)),
        "queue": _clip(body[gsw.GSW_QUEUE_NAME]),
        "tenant": _clip(body[gsw.GSW_TENANT_NAME]),
        "status": body[gsw.GSW_CAMPAIGN_GROUP_STATUS],
        "dial_mode": body.get(gsw.GSW_DIAL_MODE),
        "optimize_by": body.get(gsw.GSW_OPTIMIZE_BY),
        "optimize_goal": body.get(gsw.GSW_OPTIMIZE_GOAL),
        "action": body[gsw.GSW_CAMPAIGN_GROUP_ACTION],
        "actor": body[gsw.GSW_CAMPAIGN_GROUP_ACTOR],
        "at": at,
        "received": received,
        "calling_lists": [
            {
                "name": _clip(cl[gsw.GSW_CALLING_LIST_NAME]),
                "dbid": cl[gsw.GSW_CALLING_LIST_DBID],
                "hit_ratio": cl[gsw.GSW_STAT_HIT_RATIO],
                "time_to_complete": cl[gsw.GSW_STAT_TIME_TO_COMPLETE],
            }
            for cl in body[gsw.GSW_CALLING_LISTS][:LISTS_KEPT]
        ],
        **{name: body[key] for name, key in STATISTICS},
        "time_to_complete_text": duration_text(body[gsw.GSW_STAT_TIME_TO_COMPLETE]),
    }


class Board:
    """What the dashboard shows: the latest view of each group, series, a message feed."""

    def __init__(self) -> None:
        self.groups: dict[str, dict[str, Any]] = {}
        self.series: dict[str, deque[list[float | None]]] = {}
        self.feed: deque[dict[str, Any]] = deque(maxlen=FEED_LENGTH)
        self.refusals: deque[dict[str, Any]] = deque(maxlen=REFUSALS_KEPT)

    def add(self, seq: int, received: float, judgement: Judgement) -> None:
        body = judgement.body if isinstance(judgement.body, dict) else None
        item = _feed_item(seq, received, judgement, body)
        self.feed.append(item)
        if not judgement.valid:
            self.refusals.append(item)
        schema_valid = judgement.http_status in (200, 409)
        if body is None or not schema_valid:
            return
        dbid = str(body[gsw.GSW_CAMPAIGN_GROUP_DBID])
        group = self.groups.get(dbid)
        if group is None:
            if len(self.groups) >= BOARD_GROUPS:
                return  # the feed shows it; the table and the charts are full
            group = self.groups[dbid] = {"messages": 0, "violations": 0}
        first = judgement.first
        group["messages"] += 1
        group["violations"] += 0 if judgement.valid else 1
        group["last_verdict"] = first.rule if first else (judgement.delivery or "valid")
        if judgement.anomalies:
            group["delivery_anomalies"] = group.get("delivery_anomalies", 0) + 1
            return  # a duplicate or an older message: the view keeps the newer one
        at = float(body[gsw.GSW_DATE_TIME])
        group.update(_group_view(dbid, at, received, body))
        points = self.series.setdefault(dbid, deque(maxlen=SERIES_POINTS))
        points.append([at, *(body[key] for _name, key in STATISTICS)])

    def state(self, feed: int = 50) -> dict[str, Any]:
        order = sorted(self.groups, key=lambda d: (len(d), d))
        return {
            "groups": [self.groups[d] for d in order if "name" in self.groups[d]],
            "series": {d: list(self.series.get(d, ())) for d in order},
            "series_fields": ["at", *(name for name, _key in STATISTICS)],
            "feed": list(itertools.islice(reversed(self.feed), feed)),
            "refusals": list(itertools.islice(reversed(self.refusals), REFUSALS_SHOWN)),
        }


def _text(body: dict[str, Any] | None, key: str) -> str | None:
    value = body.get(key) if body else None
    return _clip(value) if isinstance(value, str) else None


def _clip(value: Any) -> Any:
    """A text cut to TEXT_KEPT characters; anything else as it is."""
    if isinstance(value, str) and len(value) > TEXT_KEPT:
        return value[: TEXT_KEPT - 3] + "..."
    return value


def _value(body: dict[str, Any] | None, key: str) -> Any:
    value = body.get(key) if body else None
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _is_json(content_type: str) -> bool:
    _type, _, subtype = content_type.partition("/")
    return subtype == "json" or subtype.endswith("+json")


class Latest:
    """The latest messages as their JSON text: at most ``count`` of them and ``max_bytes``
    in all (the newest is kept whatever its size). Iterating gives them parsed."""

    def __init__(self, count: int = KEEP_LATEST, max_bytes: int = KEEP_BYTES) -> None:
        self.count = count
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: deque[bytes] = deque()

    def append(self, entry: bytes) -> None:
        self._entries.append(entry)
        self.bytes += len(entry)
        while len(self._entries) > 1 and (
            len(self._entries) > self.count or self.bytes > self.max_bytes
        ):
            self.bytes -= len(self._entries.popleft())

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (orjson.loads(entry) for entry in self._entries)

    def json_array(self) -> bytes:
        """The entries as one JSON array, without parsing them again."""
        return b"[" + b",".join(self._entries) + b"]"


class Sink:
    """The receiver's state: verdicts, counters, the record file and the dashboard's board."""

    def __init__(
        self,
        record: IO[bytes] | None = None,
        *,
        max_body: int = MAX_BODY_BYTES,
        keep_bytes: int = KEEP_BYTES,
        terse: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.record = record
        self.max_body = max_body
        self.terse = terse  # one summary per valid message, without its fields (console)
        self.clock = clock
        self.started = clock()
        self.latest = Latest(KEEP_LATEST, keep_bytes)
        self.checker = LifeCycleChecker()
        self.board = Board()
        self.accepted = 0
        self.refused = 0
        self.rules: Counter[str] = Counter()
        self.delivery_anomalies: Counter[str] = Counter()  # duplicate, out-of-order
        self._seq = itertools.count(1)
        self._static = _load_static()

    # -- judging ---------------------------------------------------------------------

    def judge(self, raw: bytes, content_type: str | None) -> Judgement:
        """The verdict on one POST body (pure but for the life-cycle checker's memory)."""
        if content_type is None or not _is_json(content_type):
            got = repr(content_type) if content_type else "none"
            return Judgement(
                415,
                problems=[
                    Problem(
                        "content-type", None, f"Content-Type must be application/json, got {got}"
                    )
                ],
            )
        if nested_deeper_than(raw):
            return Judgement(
                400,
                problems=[
                    Problem(
                        "depth",
                        None,
                        f"the body nests arrays and objects more than {MAX_NESTING} deep "
                        "(a CampaignGroupState is 3 deep)",
                    )
                ],
                raw_excerpt=raw[:RAW_EXCERPT].decode("utf-8", "replace"),
            )
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return Judgement(
                400,
                problems=[Problem("json", None, f"the body is not valid JSON ({exc})")],
                raw_excerpt=raw[:RAW_EXCERPT].decode("utf-8", "replace"),
            )
        problems = schema_problems(body)
        if problems:
            return Judgement(422, body, problems)
        found = self.checker.check(body)
        problems = [p for p in found if p.rule not in DELIVERY_ANOMALIES]
        anomalies = [p for p in found if p.rule in DELIVERY_ANOMALIES]
        return Judgement(409 if problems else 200, body, problems, anomalies=anomalies)

    def compressed(self, coding: str) -> Judgement:
        return Judgement(
            415,
            problems=[
                Problem(
                    "content-encoding",
                    None,
                    f"Content-Encoding must be identity (ocsd never compresses), got {coding[:40]!r}",
                )
            ],
        )

    def too_large(self) -> Judgement:
        return Judgement(
            413, problems=[Problem("size", None, f"the body is larger than {self.max_body} bytes")]
        )

    def take(self, judgement: Judgement) -> dict[str, Any]:
        """Count, record, log and show one judged message; the record entry."""
        seq = next(self._seq)
        received = round(self.clock(), 3)
        first = judgement.first
        entry: dict[str, Any] = {
            "seq": seq,
            "received": received,
            "status": judgement.http_status,
            "verdict": "valid" if judgement.valid else "invalid",
            "error": str(first) if first else None,
            "rule": first.rule if first else None,
            "field": first.field if first else None,
            "problems": [p.as_dict() for p in judgement.problems],
            "delivery": judgement.delivery,
            "body": judgement.body,
        }
        if judgement.raw_excerpt is not None:
            entry["raw"] = judgement.raw_excerpt
        line = _entry_json(entry)
        self.latest.append(line)
        self.board.add(seq, received, judgement)
        if self.record is not None:
            self.record.write(line + b"\n")
            self.record.flush()
        self._count_and_log(judgement)
        return entry

    def _count_and_log(self, judgement: Judgement) -> None:
        """One log line per message: received, received with a delivery anomaly, or refused."""
        first = judgement.first
        body = judgement.body if isinstance(judgement.body, dict) else {}
        if first is None and judgement.anomalies:
            self.accepted += 1
            self.delivery_anomalies[judgement.anomalies[0].rule] += 1
            log.info(
                "notification received: " + judgement.anomalies[0].rule,
                summary=summary(body),
                delivery=judgement.anomalies[0].rule,
                note=judgement.anomalies[0].message,
                campaign_group=_clip(body.get(gsw.GSW_CAMPAIGN_GROUP_NAME)),
                dbid=_clip(body.get(gsw.GSW_CAMPAIGN_GROUP_DBID)),
            )
        elif first is None:
            self.accepted += 1
            if self.terse:
                log.info("notification received", summary=summary(body))
            else:
                log.info(
                    "notification received",
                    summary=summary(body),
                    campaign_group=_clip(body.get(gsw.GSW_CAMPAIGN_GROUP_NAME)),
                    dbid=_clip(body.get(gsw.GSW_CAMPAIGN_GROUP_DBID)),
                    status=body.get(gsw.GSW_CAMPAIGN_GROUP_STATUS),
                    action=body.get(gsw.GSW_CAMPAIGN_GROUP_ACTION),
                    actor=body.get(gsw.GSW_CAMPAIGN_GROUP_ACTOR),
                    busy_factor=body.get(gsw.GSW_STAT_BUSY_FACTOR),
                    hit_ratio=body.get(gsw.GSW_STAT_HIT_RATIO),
                    overdial_rate=body.get(gsw.GSW_STAT_OVERDIAL_RATE),
                    time_to_complete=body.get(gsw.GSW_STAT_TIME_TO_COMPLETE),
                )
        else:
            self.refused += 1
            self.rules[first.rule] += 1
            log.warning(
                "notification refused",
                http_status=judgement.http_status,
                rule=first.rule,
                field=first.field,
                error=first.message,
                campaign_group=_clip(body.get(gsw.GSW_CAMPAIGN_GROUP_NAME)),
                dbid=_clip(body.get(gsw.GSW_CAMPAIGN_GROUP_DBID)),
            )

    # -- HTTP handlers ---------------------------------------------------------------

    async def receive(self, request: web.Request) -> web.Response:
        content_type = request.headers.get("Content-Type")
        if content_type is not None:
            content_type = request.content_type  # without parameters such as charset
        coding = content_encoding(request)
        if coding is not None:
            # refused unread, the connection closed: not one byte of it is decompressed
            judgement = self.compressed(coding)
            self.take(judgement)
            return close_unread(_json(judgement.answer(), judgement.http_status))
        if content_type is None or not _is_json(content_type):
            judgement = self.judge(b"", content_type)
        else:
            try:
                raw = await request.read()
            except web.HTTPRequestEntityTooLarge:
                judgement = self.too_large()
            except ConnectionError:  # the sender hung up part-way through: no message
                return _json({"error": "connection lost"}, 400)
            else:
                judgement = self.judge(raw, content_type)
        self.take(judgement)
        return _json(judgement.answer(), judgement.http_status)

    async def messages(self, _request: web.Request) -> web.Response:
        head = b'{"accepted":%d,"refused":%d,"latest":' % (self.accepted, self.refused)
        return web.Response(
            body=head + self.latest.json_array() + b"}", content_type="application/json"
        )

    async def healthz(self, _request: web.Request) -> web.Response:
        return _json({"status": "ok", "accepted": self.accepted, "refused": self.refused})

    async def api_state(self, _request: web.Request) -> web.Response:
        return _json(
            {
                "now": round(self.clock(), 3),
                "started": round(self.started, 3),
                "accepted": self.accepted,
                "refused": self.refused,
                "rules": dict(self.rules),
                "delivery_anomalies": dict(self.delivery_anomalies),
                **self.board.state(),
            }
        )

    async def schema(self, _request: web.Request) -> web.Response:
        return web.Response(
            text=schema_text(), content_type="application/schema+json", headers=SECURITY_HEADERS
        )

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info.get("name", "index.html")
        if name not in self._static:
            raise web.HTTPNotFound()
        return web.Response(
            body=self._static[name],
            content_type=STATIC_FILES[name],
            charset="utf-8" if STATIC_FILES[name].startswith("text/") else None,
            headers=SECURITY_HEADERS,
        )


def _entry_json(entry: dict[str, Any]) -> bytes:
    """A record entry as JSON; a body orjson cannot write (too deep for it, an integer
    over 64 bits) is kept as an excerpt of its text instead."""
    try:
        text = orjson.dumps(entry)
    except TypeError:
        body = entry.pop("body")
        entry["body"] = None
        entry["raw"] = repr(body)[:RAW_EXCERPT]
        text = orjson.dumps(entry)
    # a copy of its exact size: orjson's own bytes keeps the much larger buffer it wrote
    # into (measured: ~32 MiB held for a 1 MB entry)
    return memoryview(text).tobytes()


def _load_static() -> dict[str, bytes]:
    folder = resources.files("ocsd.receiver").joinpath("static")
    return {name: folder.joinpath(name).read_bytes() for name in STATIC_FILES}


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


#: Every answer of the sink says what it is, so ``ocsd ctl`` pointed at it by mistake can
#: say "that is the sink, not the control API" (the control API says ``control``).
API_HEADER = "X-Ocsd-Api"


async def _says_who(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers[API_HEADER] = "sink"


def create_app(sink: Sink) -> web.Application:
    """The sink's aiohttp application: POST anywhere to judge, GET the dashboard and APIs."""
    app = web.Application(client_max_size=sink.max_body)
    answer_malformed_as_json(app, API_HEADER, "sink")
    app.on_response_prepare.append(_says_who)
    app.router.add_post("/{path:.*}", sink.receive)
    app.router.add_get("/", sink.static)
    app.router.add_get("/static/{name}", sink.static)
    app.router.add_get("/api/state", sink.api_state)
    app.router.add_get("/schema", sink.schema)
    app.router.add_get("/messages", sink.messages)
    app.router.add_get("/healthz", sink.healthz)
    return app


#: Defaults of ``--idle-timeout`` and ``--max-connections``: longer than an HTTP client's
#: keep-alive (aiohttp's pool keeps an idle connection 15 s), room for a pool of 1,000.
IDLE_TIMEOUT_S = 60.0
MAX_CONNECTIONS = 1024


async def start_site(
    app: web.Application,
    host: str,
    port: int,
    limits: ConnectionLimits | None = None,
) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on host:port (0: any free port); the runner and the port it got.

    Idle connections are closed after ``limits.idle_timeout`` s, and past
    ``limits.max_connections`` (capped under the file limit) the oldest idle one is
    closed to admit a new one. Raises OSError when the port cannot be had.
    """
    limits = limits or ConnectionLimits(IDLE_TIMEOUT_S, MAX_CONNECTIONS)
    capped = ConnectionLimits(limits.idle_timeout, connection_cap(limits.max_connections))
    runner, _site = await serve(app, host, port, capped, shutdown_timeout=1.0)
    addresses = runner.addresses
    return runner, (addresses[0][1] if addresses else port)


def url_host(host: str) -> str:
    """The host to put in a URL for a listening address (``0.0.0.0`` -> ``127.0.0.1``)."""
    if host in ("0.0.0.0", "", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


async def _serve(args: argparse.Namespace, record: IO[bytes] | None) -> None:
    sink = Sink(
        record,
        max_body=args.max_body,
        keep_bytes=args.keep_bytes,
        terse=args.log_format == "console",
    )
    limits = ConnectionLimits(args.idle_timeout, args.max_connections)
    runner, port = await start_site(create_app(sink), args.host, args.port, limits)
    url = f"http://{url_host(args.host)}:{port}/"
    dashboard = getattr(args, "dashboard_url", None) or url
    log.info("ocsd sink listening", url=url, dashboard=dashboard, record=str(args.record or ""))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        log.info("ocsd sink stopped", accepted=sink.accepted, refused=sink.refused)


def run(args: argparse.Namespace) -> int:
    import uvloop

    configure_logging(args.log_format)  # the options were checked by `ocsd sink`'s parser
    try:
        record = args.record.open("ab") if args.record else None
    except OSError as exc:
        log.error("ocsd sink cannot open the record file", path=str(args.record), error=str(exc))
        return 2
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_serve(args, record))
    except OSError as exc:
        log.error(
            "ocsd sink cannot start",
            error=f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
        )
        return 2
    finally:
        if record is not None:
            record.close()
    return 0
