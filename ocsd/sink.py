"""``ocsd sink``: a small receiver for CampaignGroupState notifications.

It accepts POSTs, checks that each body is a JSON object with
``GSW_USER_EVENT = "CampaignGroupState"``, logs a one-line summary per message and
can record every message as JSON lines. It answers 2xx to a message it accepts and
4xx with a JSON error naming the problem otherwise, and keeps serving after any bad
input. ``GET /messages`` returns the latest ones; ``GET /healthz`` answers ok.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from collections import deque
from typing import IO, Any

import orjson
import uvloop
from aiohttp import web

from ocsd.logs import configure_logging, get_logger

MAX_BODY_BYTES = 1024 * 1024
KEEP_LATEST = 1000

log = get_logger("ocsd.sink")


class Sink:
    def __init__(self, record: IO[bytes] | None = None) -> None:
        self.record = record
        self.latest: deque[dict[str, Any]] = deque(maxlen=KEEP_LATEST)
        self.accepted = 0
        self.refused = 0

    def verdict(self, raw: bytes, content_type: str) -> tuple[int, str | None, Any]:
        if "json" not in content_type:
            return (
                415,
                f"Content-Type must be application/json, got {content_type or 'none'!r}",
                None,
            )
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return 400, f"body is not valid JSON ({exc})", None
        if not isinstance(body, dict):
            return 400, "body must be a JSON object", body
        if body.get("GSW_USER_EVENT") != "CampaignGroupState":
            return 422, "GSW_USER_EVENT must be 'CampaignGroupState'", body
        return 200, None, body

    async def receive(self, request: web.Request) -> web.Response:
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self.refused += 1
            return _json({"error": f"body larger than {MAX_BODY_BYTES} bytes"}, 413)
        status, error, body = self.verdict(raw, request.content_type)
        entry = {"received": round(time.time(), 3), "status": status, "error": error, "body": body}
        self.latest.append(entry)
        if self.record is not None:
            self.record.write(orjson.dumps(entry) + b"\n")
            self.record.flush()
        if error is None:
            self.accepted += 1
            log.info(
                "notification received",
                campaign_group=body.get("GSW_CAMPAIGN_GROUP_NAME"),
                status=body.get("GSW_CAMPAIGN_GROUP_STATUS"),
                action=body.get("GSW_CAMPAIGN_GROUP_ACTION"),
                actor=body.get("GSW_CAMPAIGN_GROUP_ACTOR"),
                busy_factor=body.get("GSW_STAT_BUSY_FACTOR"),
                hit_ratio=body.get("GSW_STAT_HIT_RATIO"),
                overdial_rate=body.get("GSW_STAT_OVERDIAL_RATE"),
                time_to_complete=body.get("GSW_STAT_TIME_TO_COMPLETE"),
            )
            return _json({"ok": True})
        self.refused += 1
        log.warning("notification refused", http_status=status, error=error)
        return _json({"error": error}, status)

    async def messages(self, _request: web.Request) -> web.Response:
        return _json(
            {"accepted": self.accepted, "refused": self.refused, "latest": list(self.latest)}
        )

    async def healthz(self, _request: web.Request) -> web.Response:
        return _json({"status": "ok", "accepted": self.accepted, "refused": self.refused})


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def create_app(sink: Sink) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post("/{path:.*}", sink.receive)
    app.router.add_get("/messages", sink.messages)
    app.router.add_get("/healthz", sink.healthz)
    return app


async def _serve(args: argparse.Namespace, record: IO[bytes] | None) -> None:
    runner = web.AppRunner(create_app(Sink(record)), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    log.info("ocsd sink listening", url=f"http://{args.host}:{args.port}/")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        log.info("ocsd sink stopped")


def run(args: argparse.Namespace) -> int:
    configure_logging(args.log_format)
    record = args.record.open("ab") if args.record else None
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_serve(args, record))
    except OSError as exc:
        log.error("ocsd sink cannot start", error=str(exc))
        return 2
    finally:
        if record is not None:
            record.close()
    return 0
