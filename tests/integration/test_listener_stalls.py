"""The bounded listener (ocsd/receiver/listener.py) on uvloop, as ``ocsd run``, ``demo``
and ``sink`` serve it: a real aiohttp server on 127.0.0.1 and real sockets.

A connection over the limit while every other one is being answered gets the documented
503 (uvloop's transport is no ``asyncio.Transport``: an ``isinstance`` check once made
every refusal a reset and a traceback); a request whose body stalls is closed after the
idle timeout, and it makes room for a newcomer at the limit before that.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop
from aiohttp import web
from support.net import LOCALHOST

from ocsd.receiver.listener import ConnectionLimits, serve

STALLED_POST = (
    b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 60000\r\n\r\n{"
)
GET_HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
#: Generous bounds for a busy machine: a bug shows as "never", not as "a bit late".
WITHIN_S = 15.0
_CLIENTS: list[asyncio.StreamWriter] = []  # every client socket a scenario opened


class _App:
    """/hold answers once released (a busy connection), /echo reads its body, /healthz."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.holding = 0
        self.failures: list[BaseException] = []

    async def hold(self, _request: web.Request) -> web.Response:
        self.holding += 1
        await self.release.wait()
        return web.Response(text="held")

    async def echo(self, request: web.Request) -> web.Response:
        try:
            return web.Response(body=await request.read())
        except ConnectionError:  # closed as stalled: what the control API and sink do
            return web.Response(status=400, text="connection lost")
        except BaseException as exc:  # anything else would be a listener bug
            self.failures.append(exc)
            raise

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def build(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/hold", self.hold)
        app.router.add_post("/echo", self.echo)
        app.router.add_get("/healthz", self.healthz)
        return app


def _on_uvloop(scenario: Callable[[], Awaitable[None]]) -> None:
    """Run ``scenario`` on uvloop; anything the loop's exception handler is told about
    (an exception in a protocol callback) fails the test."""
    reported: list[dict[str, Any]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert type(loop).__module__.startswith("uvloop")
        loop.set_exception_handler(lambda _loop, context: reported.append(context))
        try:
            await asyncio.wait_for(scenario(), 60)
        finally:  # a failed scenario leaves no socket open (closing the loop would wait)
            while _CLIENTS:
                _CLIENTS.pop().close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
    assert not reported, reported


async def _send(port: int, data: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(LOCALHOST, port), 10)
    _CLIENTS.append(writer)
    writer.write(data)
    await writer.drain()
    return reader, writer


async def _answer(reader: asyncio.StreamReader) -> bytes:
    """All the server sends until it closes the connection (a reset counts as a close)."""
    try:
        return await asyncio.wait_for(reader.read(), WITHIN_S)
    except ConnectionError:
        return b"<reset>"


async def _closed(reader: asyncio.StreamReader) -> bool:
    """Whether the server closed the connection (it sends nothing else here)."""
    try:
        return await asyncio.wait_for(reader.read(), 1.0) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


async def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WITHIN_S
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        await asyncio.sleep(0.02)


def test_a_connection_over_the_limit_is_answered_503_on_uvloop() -> None:
    async def scenario() -> None:
        app = _App()
        runner, site = await serve(app.build(), LOCALHOST, 0, ConnectionLimits(30.0, 2))
        port = runner.addresses[0][1]
        busy = []
        try:
            for _ in range(2):
                busy.append(await _send(port, b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n"))
            await _wait_until(lambda: app.holding == 2, "two requests being answered")
            # the newcomers send their request at once, as clients do: still a 503
            refused = [await _send(port, GET_HEALTHZ) for _ in range(3)]
            answers = [await _answer(reader) for reader, _writer in refused]
            for answer in answers:
                assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), answer
                assert answer.endswith(b'{"error": "too many connections; try again shortly"}')
            assert site.refused == 3 and site.evicted == 0
            app.release.set()
            for reader, _writer in busy:
                assert (await asyncio.wait_for(reader.readuntil(b"held"), WITHIN_S)).startswith(
                    b"HTTP/1.1 200"
                )
            for _reader, writer in busy + refused:
                writer.close()
            # the refused ones lingered only to read their request: room again
            server = runner.server
            assert server is not None
            await _wait_until(lambda: not server.connections, "the server to see them gone")
            reader, writer = await _send(port, GET_HEALTHZ)
            assert (await _answer(reader)).startswith(b"HTTP/1.1 200 OK")
            writer.close()
        finally:
            await runner.cleanup()

    _on_uvloop(scenario)


def test_a_stalled_request_body_is_closed_after_the_idle_timeout_on_uvloop() -> None:
    idle_timeout = 1.0

    async def scenario() -> None:
        app = _App()
        runner, site = await serve(app.build(), LOCALHOST, 0, ConnectionLimits(idle_timeout, 8))
        port = runner.addresses[0][1]
        try:
            started = time.monotonic()
            stalled = [await _send(port, STALLED_POST) for _ in range(8)]
            answers = [await _answer(reader) for reader, _writer in stalled]
            took = time.monotonic() - started
            assert all(a in (b"", b"<reset>") for a in answers), answers
            assert site.stalled == 8, (site.stalled, site.evicted, site.refused)
            assert took >= idle_timeout, f"closed after {took:.2f} s, before the idle timeout"
            for _reader, writer in stalled:
                writer.close()
            reader, writer = await _send(port, GET_HEALTHZ)
            assert (await _answer(reader)).startswith(b"HTTP/1.1 200 OK")
            writer.close()
            # a body that keeps coming, slower than the idle timeout in all, is no stall
            reader, writer = await _send(port, STALLED_POST.replace(b"60000", b"5"))
            for part in (b'"a"', b"}"):
                await asyncio.sleep(idle_timeout * 0.6)
                writer.write(part)
            answer = await _answer(reader)
            assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b'{"a"}'), answer
            writer.close()
            assert not app.failures, app.failures
        finally:
            await runner.cleanup()

    _on_uvloop(scenario)


def test_stalled_request_bodies_make_room_at_the_limit_on_uvloop() -> None:
    """An idle timeout far away: a newcomer closes a stalled body to get in, long
    before the timeout would."""

    async def scenario() -> None:
        app = _App()
        runner, site = await serve(app.build(), LOCALHOST, 0, ConnectionLimits(600.0, 4))
        port = runner.addresses[0][1]
        try:
            stalled = [await _send(port, STALLED_POST) for _ in range(4)]
            await asyncio.sleep(1.0)  # older than MIN_IDLE_AGE_S: room can be made
            newcomers = []
            for _ in range(3):  # each stays open (kept alive): the next one needs room again
                reader, writer = await _send(port, GET_HEALTHZ.replace(b"close", b"keep-alive"))
                answer = await asyncio.wait_for(reader.readuntil(b"ok"), WITHIN_S)
                assert answer.startswith(b"HTTP/1.1 200 OK"), answer
                newcomers.append(writer)
            assert (site.evicted, site.refused, site.stalled) == (3, 0, 0)
            closed = [await _closed(reader) for reader, _writer in stalled]
            assert closed == [True, True, True, False], "the oldest three make room"
            for writer in newcomers + [writer for _reader, writer in stalled]:
                writer.close()
        finally:
            await runner.cleanup()

    _on_uvloop(scenario)
