"""Recording receivers: real aiohttp HTTP servers on 127.0.0.1 that keep every request.

- :class:`Receiver` answers as told (``ok``, ``status500``, ``hang``, ``close``);
- :class:`FaultReceiver` fails in more ways (slow, redirects, 4xx, 429 with Retry-After,
  503), optionally over https, on a chosen port, and can be stopped and started again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from support.net import LOCALHOST, RECEIVER_PATH, bound_port

BEHAVIOURS = ("ok", "status500", "hang", "close")


@dataclass
class Received:
    """One request the receiver got."""

    at: float  # time.monotonic() on arrival
    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    json: Any  # parsed body, or None when it is not JSON
    behaviour: str  # how the receiver answered it

    @property
    def action(self) -> int | None:
        return self.json.get("GSW_CAMPAIGN_GROUP_ACTION") if isinstance(self.json, dict) else None

    @property
    def dbid(self) -> str | None:
        return self.json.get("GSW_CAMPAIGN_GROUP_DBID") if isinstance(self.json, dict) else None

    @property
    def status(self) -> int | None:
        return self.json.get("GSW_CAMPAIGN_GROUP_STATUS") if isinstance(self.json, dict) else None

    @property
    def actor(self) -> int | None:
        return self.json.get("GSW_CAMPAIGN_GROUP_ACTOR") if isinstance(self.json, dict) else None

    @property
    def periodic(self) -> bool:
        return self.action == 0

    def __repr__(self) -> str:  # short, for assertion messages
        body = self.json if isinstance(self.json, dict) else self.raw[:80]
        if isinstance(body, dict):
            body = {
                k: body.get(k)
                for k in (
                    "GSW_CAMPAIGN_GROUP_NAME",
                    "GSW_CAMPAIGN_GROUP_STATUS",
                    "GSW_CAMPAIGN_GROUP_ACTION",
                    "GSW_CAMPAIGN_GROUP_ACTOR",
                    "GSW_DIAL_MODE",
                )
            }
        return f"<{self.method} {self.path} {self.behaviour} {body}>"


Predicate = Callable[[Received], bool]


def state_of(dbid: int | str) -> Predicate:
    """Matches state (81000) bodies of one group."""
    return lambda r: r.dbid == str(dbid) and not r.periodic


def periodic_of(dbid: int | str) -> Predicate:
    """Matches periodic (81001) bodies of one group."""
    return lambda r: r.dbid == str(dbid) and r.periodic


class Receiver:
    """A real HTTP server on 127.0.0.1 that records every request.

    ``behaviour`` is how it answers from now on; ``queue_behaviours`` sets how the next
    requests are answered before falling back to ``behaviour``. ``hang`` holds the
    request open until the receiver stops (the end of the test).
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.behaviour = "ok"
        self._next: deque[str] = deque()
        self._arrived = asyncio.Event()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # set-up ---------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOCALHOST, 0)
        await site.start()
        self.port = bound_port(self._runner)

    async def stop(self) -> None:
        self._release.set()  # let hanging handlers return
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return self.url_for(RECEIVER_PATH)

    def url_for(self, path: str, userinfo: str | None = None) -> str:
        credentials = f"{userinfo}@" if userinfo else ""
        return f"http://{credentials}{LOCALHOST}:{self.port}{path}"

    def set_behaviour(self, behaviour: str) -> None:
        assert behaviour in BEHAVIOURS, behaviour
        self.behaviour = behaviour

    def queue_behaviours(self, *behaviours: str) -> None:
        for behaviour in behaviours:
            assert behaviour in BEHAVIOURS, behaviour
        self._next.extend(behaviours)

    # handling -------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        behaviour = self._next.popleft() if self._next else self.behaviour
        self._record(request, raw, behaviour)
        if behaviour == "status500":
            return web.json_response({"error": "receiver told to fail"}, status=500)
        if behaviour == "hang":
            await self._release.wait()
            return web.Response(status=200)
        if behaviour == "close":
            assert request.transport is not None
            request.transport.abort()  # drop the connection without an answer
            await self._release.wait()  # never answer on the dead connection
            return web.Response(status=200)
        return web.json_response({"ok": True})

    def _record(self, request: web.Request, raw: bytes, behaviour: str) -> None:
        """Keep what arrived (with its JSON, if it parses) and wake whoever waits for it."""
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        self.received.append(
            Received(
                at=time.monotonic(),
                method=request.method,
                path=request.path,
                headers=dict(request.headers),
                raw=raw,
                json=parsed,
                behaviour=behaviour,
            )
        )
        self._arrived.set()

    # observing ------------------------------------------------------------------------

    state_of = staticmethod(state_of)
    periodic_of = staticmethod(periodic_of)

    def matching(self, predicate: Predicate | None = None) -> list[Received]:
        return [r for r in self.received if predicate is None or predicate(r)]

    def count(self, predicate: Predicate | None = None) -> int:
        return len(self.matching(predicate))

    async def wait_for(
        self, n: int, predicate: Predicate | None = None, within: float = 5.0
    ) -> list[Received]:
        """Wait until at least ``n`` received requests match; return all that match."""
        try:
            async with asyncio.timeout(within):
                while True:
                    self._arrived.clear()
                    found = self.matching(predicate)
                    if len(found) >= n:
                        return found
                    await self._arrived.wait()
        except TimeoutError:
            raise AssertionError(
                f"receiver: wanted {n} matching request(s) within {within} s, "
                f"got {self.count(predicate)}; everything received: {self.received}"
            ) from None

    async def settle(self, seconds: float = 0.3) -> None:
        """Let anything already on its way arrive (for 'nothing more was sent' checks)."""
        await asyncio.sleep(seconds)


#: Behaviours of FaultReceiver beyond those of Receiver.
FAULT_BEHAVIOURS = (
    "slow",  # answers 200 after ``slow_s`` seconds
    "redirect",  # 302 to another path
    "status400",
    "status410",
    "status429",  # with Retry-After: ``retry_after`` when set
    "status503",
)


class FaultReceiver(Receiver):
    """A Receiver with more ways to fail, optionally over https, on a chosen port.

    ``stop()`` then ``start(port=same)`` takes it down and brings it back (connection
    refused meanwhile). ``answer_for`` decides per request (e.g. 503 to the first attempt
    of each webhook-id), before ``queue_behaviours``/``behaviour``.
    """

    def __init__(self, ssl_context: Any = None, slow_s: float = 0.3) -> None:
        super().__init__()
        self.ssl_context = ssl_context
        self.slow_s = slow_s
        self.retry_after: str | None = None
        self.answer_for: Callable[[web.Request, bytes], str | None] | None = None

    async def start(self, port: int = 0) -> None:  # type: ignore[override]
        self._release = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOCALHOST, port, ssl_context=self.ssl_context)
        await site.start()
        self.port = bound_port(self._runner)

    async def stop(self) -> None:
        await super().stop()
        self._runner = None

    def url_for(self, path: str, userinfo: str | None = None) -> str:
        credentials = f"{userinfo}@" if userinfo else ""
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{credentials}{LOCALHOST}:{self.port}{path}"

    def set_behaviour(self, behaviour: str) -> None:
        assert behaviour in BEHAVIOURS + FAULT_BEHAVIOURS, behaviour
        self.behaviour = behaviour

    def queue_behaviours(self, *behaviours: str) -> None:
        for behaviour in behaviours:
            assert behaviour in BEHAVIOURS + FAULT_BEHAVIOURS, behaviour
        self._next.extend(behaviours)

    @property
    def accepted(self) -> list[Received]:
        """The requests answered 2xx (ok and slow)."""
        return [r for r in self.received if r.behaviour in ("ok", "slow")]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        chosen = self.answer_for(request, raw) if self.answer_for else None
        if chosen is None:
            chosen = self._next.popleft() if self._next else self.behaviour
        if chosen in BEHAVIOURS:
            self._next.appendleft(chosen)  # Receiver._handle takes it from there
            return await super()._handle(request)
        self._record(request, raw, chosen)
        if chosen == "slow":
            await asyncio.sleep(self.slow_s)
            return web.json_response({"ok": True})
        if chosen == "redirect":
            raise web.HTTPFound(location="/moved")
        status = int(chosen.removeprefix("status"))
        headers = (
            {"Retry-After": self.retry_after}
            if chosen == "status429" and self.retry_after
            else None
        )
        return web.json_response(
            {"error": f"receiver told to answer {status}"}, status=status, headers=headers
        )
