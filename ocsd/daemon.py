"""The daemon: wires engine, notifier, ticker and control server; owns the life cycle.

Modelled on uvicorn's ``Server``: ``startup`` -> wait for a stop signal ->
``shutdown``. The first SIGTERM/SIGINT stops gracefully (no new work, in-flight
POSTs get up to ``http-response-timeout``); a second one forces the exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvloop
from aiohttp import web

from ocsd import control
from ocsd.body import GroupSnapshot, Tenant, build_body, encode
from ocsd.campaign import DialingChange, Request
from ocsd.engine import Engine, GroupDefinition
from ocsd.genesys import Actor, status_name
from ocsd.logs import get_logger
from ocsd.notifier import Kind, Notification, Notifier
from ocsd.redact import redact_uri
from ocsd.settings import Settings
from ocsd.ticker import Ticker

log = get_logger("ocsd.daemon")

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StartupError(Exception):
    """The daemon could not start (e.g. the control port is taken); exit non-zero."""


def definitions(settings: Settings) -> list[GroupDefinition]:
    return [
        GroupDefinition(
            identity=settings.group_identity(name),
            dialing=group.default_dialing(),
            auto_complete=group.auto_complete,
            agents=group.agents,
        )
        for name, group in settings.campaign_groups.items()
    ]


class Daemon:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.engine = Engine(definitions(settings))
        self.tenant = Tenant(settings.tenant_name, settings.tenant_ccid)
        self.notifier: Notifier | None = None
        self.ticker = Ticker(settings.campaigngroup_states_interval, self._tick)
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._should_exit = asyncio.Event()
        self._force_exit = False
        self.control_port: int | None = None
        self.started_at = time.monotonic()

    # -- life cycle ------------------------------------------------------------------

    async def serve(self) -> None:
        with self._signal_handlers():
            await self.startup()
            try:
                await self._should_exit.wait()
            finally:
                await self.shutdown()

    async def startup(self) -> None:
        settings = self.settings
        if settings.delivers:
            assert settings.campaigngroup_states_uri is not None
            self.notifier = Notifier(
                settings.campaigngroup_states_uri,
                settings.http_response_timeout,
                settings.http_connection_pool_size,
            )
            await self.notifier.start()
        self._runner = web.AppRunner(
            control.create_app(self), access_log=None, handle_signals=False
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, settings.control_host, settings.control_port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            if self.notifier:
                await self.notifier.close(0)
            raise StartupError(
                f"cannot listen on {settings.control_host}:{settings.control_port} "
                f"([ocsd] control-host/control-port): {exc.strerror or exc}"
            ) from None
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.control_port = sockets[0].getsockname()[1] if sockets else settings.control_port
        self._tasks.append(asyncio.create_task(self.ticker.run(), name="ocsd-ticker"))
        log.info(
            "ocsd started",
            control=f"http://{settings.control_host}:{self.control_port}",
            control_host=settings.control_host,
            control_port=self.control_port,
            groups=len(self.engine),
            sending=settings.delivers,
            uri=redact_uri(settings.campaigngroup_states_uri or "") or None,
            interval_s=settings.campaigngroup_states_interval,
        )

    async def shutdown(self) -> None:
        log.info("ocsd stopping")
        if self._runner is not None:
            await self._runner.cleanup()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        counters = None
        if self.notifier is not None:
            await self.notifier.close()
            counters = self.notifier.counters
        log.info(
            "ocsd stopped",
            sent=sum(counters.sent.values()) if counters else 0,
            failed=sum(counters.failed.values()) if counters else 0,
            dropped=sum(counters.dropped.values()) if counters else 0,
            ticks=self.ticker.ticks,
        )

    def request_exit(self, sig: int | None = None) -> None:
        if self._should_exit.is_set():
            self._force_exit = True
            log.warning("second stop signal: exiting now")
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
            return
        log.info("stop requested", signal=signal.Signals(sig).name if sig else None)
        self._should_exit.set()

    @contextlib.contextmanager
    def _signal_handlers(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in HANDLED_SIGNALS:
            loop.add_signal_handler(sig, self.request_exit, sig)
        try:
            yield
        finally:
            for sig in HANDLED_SIGNALS:
                loop.remove_signal_handler(sig)

    # -- producing notifications -----------------------------------------------------

    def _notify(self, snapshot: GroupSnapshot, kind: Kind) -> None:
        if self.notifier is None:
            return
        body = encode(build_body(snapshot, self.tenant))
        self.notifier.submit(
            Notification(kind, snapshot.identity.name, snapshot.identity.dbid, body)
        )

    def _tick(self, _lateness: float) -> None:
        if self.notifier is None:
            return
        for snapshot in self.engine.periodic(self.clock()):
            self._notify(snapshot, "periodic")

    # -- the Controller protocol of the control API ----------------------------------

    def handle_request(
        self,
        dbid: int,
        request: Request,
        change: DialingChange,
        auto_complete: bool | None,
        actor: Actor = Actor.CLIENT,
    ) -> dict[str, Any]:
        snapshots = self.engine.request(dbid, request, actor, self.clock(), change, auto_complete)
        for snapshot in snapshots:
            self._notify(snapshot, "state")
        group = self.engine.group(dbid)
        log.info(
            "request applied",
            request=request.value,
            campaign_group=group.identity.name,
            dbid=dbid,
            actor=actor.name.lower(),
            status=status_name(group.status),
        )
        return {
            "campaigngroup": self.engine.view(dbid),
            "notifications": [
                {
                    "action": int(s.action),
                    "status": int(s.status),
                    "actor": int(s.actor),
                    "at": s.at,
                }
                for s in snapshots
            ],
        }

    def group_views(self) -> list[dict[str, Any]]:
        return self.engine.views()

    def group_view(self, dbid: int) -> dict[str, Any]:
        return self.engine.view(dbid)

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "uptime_s": round(time.monotonic() - self.started_at, 3),
            "groups": len(self.engine),
            "pending_notifications": self.notifier.pending if self.notifier else 0,
        }


def run(settings: Settings) -> int:
    """Run the daemon on uvloop until stopped; the process exit code."""
    daemon = Daemon(settings)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        try:
            runner.run(daemon.serve())
        except StartupError as exc:
            log.error("ocsd cannot start", error=str(exc))
            return 2
        except asyncio.CancelledError:
            if daemon._force_exit:
                return 1
            raise
    return 0
