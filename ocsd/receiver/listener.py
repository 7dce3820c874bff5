"""Serving an aiohttp application with bounded connections (the sink and the control API).

aiohttp keeps a connection that sends nothing open for an hour and accepts as many as
the process has file descriptors: 1,100 half-open sockets at a 1,024 file limit made the
control API unreachable. Here a connection idle for ``idle_timeout`` seconds (before its
first request, between two, or part-way through one) is closed, and at
``max_connections`` a new connection makes room by closing the oldest idle one that
connected at least half a second ago; when there is none (every one busy, or a burst of new
clients), the new one is answered 503 and closed. The limit is capped below the
process's file limit, so the listening socket can always accept.
"""

from __future__ import annotations

import asyncio
import resource
import time
from dataclasses import dataclass
from typing import Any

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
    """A connection over the limit while every other one is busy: 503, then closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(_BUSY)
        transport.close()


def _busy(handler: Any) -> bool:
    """Whether aiohttp's handler is serving a request or has one whole request waiting
    (received, its task not yet run): not idle, whatever its age."""
    return bool(
        getattr(handler, "_request_in_progress", False) or getattr(handler, "_messages", ())
    )


class LimitedSite(web.TCPSite):
    """A TCP site that closes the oldest idle connection to admit a new one past the limit."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, max_connections: int):
        super().__init__(runner, host, port)
        self.max_connections = max_connections
        self.evicted = 0
        self.refused = 0
        self._warned_at = -WARN_EVERY_S
        self._accepted_at: dict[Any, float] = {}  # handler -> loop time it connected

    async def start(self) -> None:
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol, self._host, self._port, backlog=self._backlog
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port

    def _protocol(self) -> asyncio.BaseProtocol:
        server = self._runner.server
        assert server is not None
        now = asyncio.get_running_loop().time()
        # a closed handler stays listed until its connection_lost: not counted
        open_handlers = [h for h in server.connections if h.transport is not None]
        if len(open_handlers) >= self.max_connections:
            oldest = now - MIN_IDLE_AGE_S
            idle = next(
                (
                    h
                    for h in open_handlers
                    if not _busy(h) and self._accepted_at.get(h, now) <= oldest
                ),
                None,
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
    site = LimitedSite(runner, host, port, limits.max_connections)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    return runner, site
