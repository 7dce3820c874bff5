"""Serving an aiohttp application with bounded connections (the sink and the control API).

aiohttp keeps a connection that sends nothing open for an hour, waits for a request body
that never comes for ever, and accepts as many connections as the process has file
descriptors: 1,100 half-open sockets at a 1,024 file limit made the control API
unreachable, and 256 POSTs whose body stalled after one byte locked it out for good. Here:

- a connection idle for ``idle_timeout`` seconds is closed: before its first request,
  between two, part-way through a request's headers (aiohttp's keep-alive timer), or
  part-way through a request's body: a body that has not grown for ``idle_timeout``
  seconds while the handler waits for it is closed (checked every quarter of the
  timeout, so within 1.25 times it), and the handler sees the connection lost;
- at ``max_connections`` a new connection makes room by closing the oldest connection
  that connected at least half a second ago and is waiting on its client: idle ones
  first, then ones whose request body has not all arrived. When there is none (every one
  is being answered, or a burst of new clients), the new one is answered 503 (its
  request read and dropped for up to a second, so the answer is not lost to a reset)
  and closed;
- the limit is capped below the process's file limit, so the listening socket can
  always accept.

A flood of stalled sockets, whether silent or part-way through their request, is thus
evicted or timed out, and ``/healthz`` answers again at the latest one idle timeout
later.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web

from ocsd.logs import get_logger

log = get_logger("ocsd.http")

#: File descriptors kept for everything but incoming connections (imports, logs, the
#: outbox, outgoing connections are counted apart).
FD_RESERVE = 64
#: Seconds between two warnings that the connection limit closed idle connections.
WARN_EVERY_S = 60.0
#: An idle connection younger than this is not closed to make room (its request is
#: likely on its way: a burst of clients); the newcomer gets 503 instead.
MIN_IDLE_AGE_S = 0.5
#: How long a refused connection's request is read and dropped after its 503, at most.
REFUSED_LINGER_S = 1.0
#: Refused connections kept open at once to read their request (the rest are closed at
#: once); well inside :data:`FD_RESERVE`.
MAX_LINGERING = 16
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
    b"Content-Type: application/json\r\nContent-Length: 52\r\n\r\n"
    b'{"error": "too many connections; try again shortly"}'
)


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a connection may stay idle, and how many may be open at once."""

    idle_timeout: float
    max_connections: int


def connection_cap(wanted: int, reserved: int = 0) -> int:
    """``wanted``, lowered to fit under this process's file limit (RLIMIT_NOFILE) with
    :data:`FD_RESERVE` plus ``reserved`` descriptors to spare; at least 1."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - FD_RESERVE - reserved))


class _Refused(asyncio.Protocol):
    """A connection over the limit while every other one is busy: 503, then closed.

    Any transport with ``write`` (uvloop's is no ``asyncio.Transport``). Closing a socket
    whose request has not been read makes the kernel send a reset, which can destroy the
    503 before the client reads it; so what the client sends is read and dropped until it
    hangs up or :data:`REFUSED_LINGER_S` has passed, for at most
    :data:`MAX_LINGERING` connections at once (the others are closed at once).
    """

    lingering = 0  # refused connections open right now, across all sites

    def __init__(self) -> None:
        self._transport: asyncio.BaseTransport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not hasattr(transport, "write"):
            transport.close()
            return
        writer = cast(asyncio.WriteTransport, transport)  # duck-typed: uvloop's too
        writer.write(_BUSY)
        if _Refused.lingering >= MAX_LINGERING:
            writer.close()
            return
        _Refused.lingering += 1
        self._transport = writer
        if writer.can_write_eof():
            writer.write_eof()
        self._timer = asyncio.get_running_loop().call_later(REFUSED_LINGER_S, writer.close)

    def data_received(self, data: bytes) -> None:
        pass  # the request of a refused connection: dropped

    def eof_received(self) -> bool:
        return False  # the client is done: close

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._transport = None
            _Refused.lingering -= 1
        if self._timer is not None:
            self._timer.cancel()


def _awaited_body(handler: Any) -> Any:
    """The body of the request aiohttp's handler is serving when part of it has not
    arrived yet (an aiohttp StreamReader): the handler waits on its client; else None."""
    request = getattr(handler, "_current_request", None)
    if request is None:
        return None
    body = request.content
    return None if body.is_eof() else body


def _busy(handler: Any) -> bool:
    """Whether aiohttp's handler is serving a request or has one whole request waiting
    (received, its task not yet run): not idle, whatever its age."""
    return bool(
        getattr(handler, "_request_in_progress", False) or getattr(handler, "_messages", ())
    )


class LimitedSite(web.TCPSite):
    """A TCP site that closes the oldest idle connection to admit a new one past the limit."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        max_connections: int,
        idle_timeout: float | None = None,
    ):
        super().__init__(runner, host, port)
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout  # None: request bodies may stall for ever
        self.evicted = 0
        self.refused = 0
        self.stalled = 0  # connections closed because their request body stopped coming
        self._warned_at = -WARN_EVERY_S
        self._stall_warned_at = -WARN_EVERY_S
        self._accepted_at: dict[Any, float] = {}  # handler -> loop time it connected
        # awaited body -> (its size, loop time it last grew), as of the last check
        self._bodies: dict[Any, tuple[int, float]] = {}
        self._stall_checks: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol, self._host, self._port, backlog=self._backlog
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
        if self.idle_timeout is not None and self.idle_timeout > 0:
            self._stall_checks = asyncio.create_task(
                self._check_stalls(self.idle_timeout / 4), name="ocsd-http-stalled-bodies"
            )

    async def stop(self) -> None:
        if self._stall_checks is not None:
            self._stall_checks.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stall_checks
            self._stall_checks = None
        await super().stop()

    async def _check_stalls(self, every: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(every)
            self.close_stalled(loop.time())

    def close_stalled(self, now: float) -> int:
        """Close every connection whose request body has not grown for ``idle_timeout``
        seconds (as far as the checks so far saw) while its handler waits for it."""
        server = self._runner.server
        if server is None or self.idle_timeout is None:
            return 0
        bodies: dict[Any, tuple[int, float]] = {}
        closed = 0
        for handler in server.connections:
            body = _awaited_body(handler) if handler.transport is not None else None
            if body is None:
                continue
            size = body.total_bytes
            seen = self._bodies.get(body)
            grew_at = seen[1] if seen is not None and seen[0] == size else now
            if now - grew_at >= self.idle_timeout:
                handler.force_close()
                closed += 1
            else:
                bodies[body] = (size, grew_at)
        self._bodies = bodies
        if closed:
            self.stalled += closed
            if time.monotonic() - self._stall_warned_at >= WARN_EVERY_S:
                self._stall_warned_at = time.monotonic()
                log.warning(
                    "closed connections whose request body stopped arriving",
                    listening=self.name,
                    idle_timeout=self.idle_timeout,
                    closed=self.stalled,
                )
        return closed

    def _protocol(self) -> asyncio.BaseProtocol:
        server = self._runner.server
        assert server is not None
        now = asyncio.get_running_loop().time()
        # a closed handler stays listed until its connection_lost: not counted
        open_handlers = [h for h in server.connections if h.transport is not None]
        if len(open_handlers) >= self.max_connections:
            oldest = now - MIN_IDLE_AGE_S
            old = [h for h in open_handlers if self._accepted_at.get(h, now) <= oldest]
            # idle first, then a request whose body has not all arrived: both wait on
            # their client; one being answered is never closed
            idle = next((h for h in old if not _busy(h)), None) or next(
                (h for h in old if _awaited_body(h) is not None), None
            )
            self._warn()
            if idle is None:
                self.refused += 1
                return _Refused()
            idle.force_close()
            self.evicted += 1
        if len(self._accepted_at) > 2 * len(open_handlers) + 16:  # forget closed ones
            live = set(open_handlers)
            self._accepted_at = {h: t for h, t in self._accepted_at.items() if h in live}
        handler: asyncio.BaseProtocol = server()
        self._accepted_at[handler] = now
        return handler

    def _warn(self) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            log.warning(
                "connection limit reached: closing the oldest idle connections",
                listening=self.name,
                max_connections=self.max_connections,
                idle_closed=self.evicted,
                refused=self.refused,
            )


async def serve(
    app: web.Application, host: str, port: int, limits: ConnectionLimits, **runner_options: Any
) -> tuple[web.AppRunner, LimitedSite]:
    """Serve ``app`` on host:port (0: any free port) within ``limits``.

    Raises OSError when the port cannot be had (after cleaning up).
    """
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        keepalive_timeout=limits.idle_timeout,
        **runner_options,
    )
    await runner.setup()
    site = LimitedSite(runner, host, port, limits.max_connections, limits.idle_timeout)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    return runner, site
