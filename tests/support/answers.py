"""Receivers whose answers are hostile: a huge body, a body that never ends.

:class:`AnsweringReceiver` is a real aiohttp server on 127.0.0.1 that answers every POST
with ``status`` and a body of ``body_bytes`` (``None``: a chunked body that never ends),
and counts what it managed to write before the client hung up, so a test can tell how
much of the answer the daemon read.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from support.net import LOCALHOST, RECEIVER_PATH, bound_port

#: What the receiver writes at a time (the same bytes object every time: no memory grows).
CHUNK = b"x" * 65536


@dataclass
class AnsweringReceiver:
    """Answers every request with ``status`` and a ``body_bytes`` body (None: endless)."""

    status: int = 200
    body_bytes: int | None = None
    trickle_s: float = 0.0  # seconds between two writes of one byte (0: full chunks)
    posts: int = 0
    written: list[int] = field(default_factory=list)  # bytes written, per answer, once over
    _runner: web.AppRunner | None = None
    port: int = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, LOCALHOST, 0).start()
        self.port = bound_port(self._runner)

    async def stop(self) -> None:
        if self._runner is not None:
            async with asyncio.timeout(10):
                await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}{RECEIVER_PATH}"

    @property
    def total_written(self) -> int:
        return sum(self.written)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        self.posts += 1
        response = web.StreamResponse(status=self.status)
        if self.body_bytes is None:
            response.enable_chunked_encoding()
        else:
            response.content_length = self.body_bytes
        await response.prepare(request)
        written = 0
        try:
            while self.body_bytes is None or written < self.body_bytes:
                part = CHUNK if self.body_bytes is None else CHUNK[: self.body_bytes - written]
                if self.trickle_s:
                    part = part[:1]
                    await asyncio.sleep(self.trickle_s)
                await response.write(part)
                written += len(part)
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client hung up: what was written so far is the figure
        finally:
            self.written.append(written)
        return response
