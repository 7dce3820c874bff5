"""The daemon's life cycle: start-up, serve until told to stop, shutdown.

Modelled on uvicorn's ``Server``. Start-up builds the rooms and wires them (engine ->
feed -> delivery; control API; ticker, stepper, scheduler and file watcher under a
supervisor), pushing each one's undo on an ``AsyncExitStack`` so a failure half-way
and the shutdown unwind the same way. The first SIGTERM/SIGINT stops gracefully (no new
work; queued state notifications and in-flight POSTs get up to ``min(http-response-
timeout, shutdown-grace)``); a second one forces the exit. SIGHUP reloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from zoneinfo import ZoneInfo

import uvloop

from ocsd.config.definitions import group_definitions, group_schedules, shard_hint
from ocsd.config.settings import Settings, shard_summary, silence_warnings
from ocsd.core.engine import Engine
from ocsd.core.identity import Tenant
from ocsd.delivery.errors import DeliveryError
from ocsd.delivery.notifier import GroupGaps, Notifier
from ocsd.logs import get_logger
from ocsd.logs.redact import redact_uri
from ocsd.receiver.listener import ConnectionLimits, connection_cap, serve
from ocsd.service import control_api
from ocsd.service.bounded_run import EXIT_THRESHOLD_FAILED, RunBounds, report
from ocsd.service.controller import ControlService, DaemonState
from ocsd.service.feed import Feed
from ocsd.service.metrics import Metrics
from ocsd.service.reload import Reloader
from ocsd.service.run_record import RunRecorder
from ocsd.service.scheduler import Scheduler
from ocsd.service.sending import Delivery, build_delivery
from ocsd.service.supervisor import Supervisor
from ocsd.service.ticker import PhasedTicker, Ticker

log = get_logger("ocsd.service")

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: Wall seconds between two steps of the dialing simulations.
SIMULATION_STEP_S = 0.25
#: Exit codes of ``ocsd run``.
EXIT_OK, EXIT_FORCED, EXIT_CANNOT_START, EXIT_TASK_FAILED = 0, 1, 2, 3


class StartupError(Exception):
    """The daemon could not start (e.g. the control port is taken); exit non-zero."""


class Daemon:
    """One running ocsd: the rooms, wired, and their life cycle."""

    recorder: RunRecorder | None  # a bounded run's samples, for its --report

    def __init__(
        self,
        settings: Settings,
        config_path: str | None = None,
        clock: Callable[[], float] = time.time,
        start_all: bool = False,
        bounds: RunBounds | None = None,
    ) -> None:
        self.clock, self.start_all, self.bounds = clock, start_all, bounds or RunBounds()
        self.ran_s, self.recorder = 0.0, None  # wall seconds from ready to stopped
        started_wall = clock()
        self.state = DaemonState(config_path or "embedded example")
        self.metrics = Metrics()
        self.supervisor = Supervisor(on_fatal=self._task_failed)
        engine = Engine(
            group_definitions(settings).values(),
            wall_start=started_wall,
            time_scale=settings.time_scale,
            stats_window=settings.stats_window,
            seed=settings.seed,
        )
        engine.unknown_hint = shard_hint(settings)
        self.feed = Feed(
            engine, Tenant(settings.tenant_name, settings.tenant_ccid), self.metrics, clock
        )
        self.feed.counters.gaps = GroupGaps() if self.bounds.report is not None else None
        # one scheduler for every group's periodic notification, each at its own phase
        self.ticker = PhasedTicker(
            settings.campaigngroup_states_interval,
            lambda slot, lateness: self.feed.on_slot(slot, self.ticker.slots, lateness),
        )
        self.stepper = Ticker(SIMULATION_STEP_S, lambda _late: self.feed.step(SIMULATION_STEP_S))
        self.reloader = Reloader(
            settings,
            config_path,
            feed=self.feed,
            ticker=self.ticker,
            scheduler=Scheduler(
                started_wall,
                ZoneInfo(settings.schedule_timezone),
                lambda dbid, entry: self.control.run_schedule_entry(dbid, entry),
                clock,
            ),
            build_delivery=self._delivery,
            state=self.state,
            clock=clock,
        )
        self.control = ControlService(
            self.feed,
            lambda: self.reloader.settings,
            self.state,
            self.supervisor,
            self.metrics,
            lambda: self.ticker.skipped,
        )
        self.control_port: int | None = None
        self._stack = contextlib.AsyncExitStack()
        self._should_exit = asyncio.Event()
        self._force_exit = False
        self.exit_code = EXIT_OK

    # -- what tests and the demo look at -------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self.reloader.settings

    @property
    def engine(self) -> Engine:
        return self.feed.engine

    @property
    def notifier(self) -> Notifier | None:
        delivery = self.feed.delivery
        return delivery.notifier if delivery is not None else None

    async def reload(self, trigger: str) -> bool:
        return await self.reloader.reload(trigger)

    # -- life cycle ----------------------------------------------------------------------

    async def serve(self) -> None:
        with self._signal_handlers():
            await self.startup()
            loop = asyncio.get_running_loop()
            started = loop.time()
            self._bound_the_run(loop)
            try:
                await self._should_exit.wait()
            finally:
                await self.shutdown()
                self.ran_s = loop.time() - started
                if self.recorder is not None:
                    self.recorder.sample()  # the end of the run

    async def startup(self) -> None:
        """Start every room; on failure, undo what was started and raise StartupError."""
        async with contextlib.AsyncExitStack() as stack:
            await self._start_delivery(stack)
            await self._start_control_server(stack)
            self._start_tasks(stack)
            self._stack = stack.pop_all()
        settings = self.settings
        log.info(
            "ocsd started",
            control=f"http://{settings.control_host}:{self.control_port}",
            control_host=settings.control_host,
            control_port=self.control_port,
            groups=len(self.engine),
            shard=str(settings.shard) if settings.shard else None,
            sending=settings.delivers,
            delivery_mode=settings.delivery_mode,
            signing=settings.webhook_secret is not None,
            control_token=settings.control_token is not None,
            uri=redact_uri(settings.campaigngroup_states_uri or "") or None,
            interval_s=settings.campaigngroup_states_interval,
            time_scale=settings.time_scale,
            config=self.state.config_label,
        )
        if summary := shard_summary(settings):
            log.info(
                "running a shard",
                shard=str(settings.shard),
                shard_from=settings.shard_origin or "[ocsd] shard",
                groups=len(self.engine),
                groups_configured=len(settings.campaign_groups),
                detail=summary,
            )
        for warning in silence_warnings(settings):
            log.warning(warning)
        if faults := settings.fault_rates().described():
            log.warning(
                "faults are injected on purpose ([faults]): the receiver gets dropped, "
                "late, reordered, duplicated or altered notifications",
                faults=faults,
            )
        self.state.ready = True
        if self.start_all:  # after the control API answers, a batch per loop iteration
            task = self.supervisor.spawn("ocsd-start-all", self._start_all)
            self._stack.push_async_callback(_cancel, [task])
        else:
            _settle_heap()

    def _delivery(self, settings: Settings) -> Delivery | None:
        """The delivery of ``settings``, its notifier's workers supervised; counters
        shared by every notifier of this daemon, so the metrics stay cumulative."""
        return build_delivery(
            settings,
            source=self.feed.periodic_body,
            spawn=self.supervisor.spawn,
            latency=self.metrics.post_latency,
            counters=self.feed.counters,
        )

    async def _start_delivery(self, stack: contextlib.AsyncExitStack) -> None:
        try:
            delivery = self._delivery(self.settings)
        except DeliveryError as exc:
            raise StartupError(str(exc)) from None
        self.feed.delivery = delivery
        if delivery is not None:
            await delivery.notifier.start()
        stack.push_async_callback(self.reloader.stop)  # then the drains of earlier ones
        stack.push_async_callback(self._close_delivery)
        # first: no reload under way may start a notifier once this one is closed
        stack.push_async_callback(self.reloader.stop_reloading)

    async def _close_delivery(self) -> None:
        delivery = self.feed.delivery
        if delivery is not None:
            settings = self.settings
            await delivery.notifier.close(
                min(settings.http_response_timeout, settings.shutdown_grace)
            )

    async def _start_control_server(self, stack: contextlib.AsyncExitStack) -> None:
        settings = self.settings
        limits = ConnectionLimits(
            settings.control_idle_timeout,
            connection_cap(
                settings.control_max_connections, reserved=settings.http_connection_pool_size
            ),
        )
        if limits.max_connections < settings.control_max_connections:
            log.warning(
                "control-max-connections lowered to fit under the file limit (ulimit -n)",
                configured=settings.control_max_connections,
                effective=limits.max_connections,
            )
        try:
            runner, _site = await serve(
                control_api.create_app(self.control),
                settings.control_host,
                settings.control_port,
                limits,
                shutdown_timeout=1.0,
            )
        except OSError as exc:
            raise StartupError(
                f"cannot listen on {settings.control_host}:{settings.control_port} "
                f"([ocsd] control-host/control-port): {exc.strerror or exc}"
            ) from None
        stack.push_async_callback(runner.cleanup)
        addresses = runner.addresses
        self.control_port = addresses[0][1] if addresses else settings.control_port

    def _start_tasks(self, stack: contextlib.AsyncExitStack) -> None:
        now = self.clock()
        scheduler = self.reloader.scheduler
        for dbid, entries in group_schedules(self.settings).items():
            scheduler.set_group(dbid, entries, now, initial=True)
        tasks = {
            "ocsd-ticker": self.ticker.run,
            "ocsd-simulation": self.stepper.run,
            "ocsd-scheduler": scheduler.run,
        }
        if self.reloader.config_path:
            tasks["ocsd-config-watch"] = self.reloader.watch
        started = [self.supervisor.spawn(name, run, forever=True) for name, run in tasks.items()]
        stack.push_async_callback(_cancel, started)

    async def _start_all(self) -> None:
        await self.feed.start_all()
        _settle_heap()

    async def shutdown(self) -> None:
        log.info("ocsd stopping")
        self.state.stopping = True
        await self._stack.aclose()
        counters = self.feed.counters
        groups = self.engine.by_dbid.values()
        log.info(
            "ocsd stopped",
            **shutdown_summary(
                uptime_s=time.monotonic() - self.state.started_at,
                groups=len(groups),
                loaded=sum(group.loaded for group in groups),
                sent=counters.sent,
                failed=counters.failed.total(),
                dropped=counters.dropped.total(),
                retried=counters.retried.total(),
                dead_lettered=counters.dead_lettered.total(),
                reloads=self.state.reload_results,
            ),
        )

    def request_exit(self, sig: int | None = None) -> None:
        if self._should_exit.is_set():
            self._force_exit = True
            log.warning("second stop signal: exiting now")
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
            return
        self.state.stopping = True  # /readyz says so from now on
        self._should_exit.set()  # before the line: nothing it does may keep the daemon up
        log.info("stop requested", signal=signal.Signals(sig).name if sig else None)

    def _bound_the_run(self, loop: asyncio.AbstractEventLoop) -> None:
        """Arm the end of a bounded run, and sample it over time for its report."""
        if self.bounds.duration is not None:
            timer = loop.call_later(self.bounds.duration, self._duration_reached)
            self._stack.callback(timer.cancel)
        gaps = self.feed.counters.gaps
        if self.bounds.report is not None and gaps is not None:
            self.recorder = RunRecorder(self.feed.counters, self.metrics.post_latency, gaps)
            task = self.supervisor.spawn("ocsd-run-recorder", self.recorder.run, forever=True)
            self._stack.push_async_callback(_cancel, [task])

    def _duration_reached(self) -> None:
        log.info("run duration reached: stopping", duration_s=self.bounds.duration)
        self.request_exit()

    def _task_failed(self, name: str) -> None:
        """A supervised task keeps dying: stop, and exit non-zero."""
        self.exit_code = EXIT_TASK_FAILED
        self._should_exit.set()

    @contextlib.contextmanager
    def _signal_handlers(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in HANDLED_SIGNALS:
            loop.add_signal_handler(sig, self.request_exit, sig)
        loop.add_signal_handler(signal.SIGHUP, self.reloader.reload_soon, "SIGHUP")
        try:
            yield
        finally:
            for sig in (*HANDLED_SIGNALS, signal.SIGHUP):
                loop.remove_signal_handler(sig)


def shutdown_summary(
    *,
    uptime_s: float,
    groups: int,
    loaded: int,
    sent: Mapping[str, int],
    failed: int,
    dropped: int,
    retried: int,
    dead_lettered: int,
    reloads: Mapping[str, int],
) -> dict[str, Any]:
    """The fields of the "ocsd stopped" line: what a user ran and what was sent, in their
    words (the line said ``ticks=100586``, a count of internal timer slots), and the
    same in one sentence."""
    state, periodic = sent.get("state", 0), sent.get("periodic", 0)
    summary = (
        f"ran {duration_words(uptime_s)} with {groups} campaign group(s) ({loaded} loaded at "
        f"the stop); notifications sent {state + periodic:,} ({state:,} state, "
        f"{periodic:,} periodic), failed {failed:,}, dropped {dropped:,}"
    )
    if retried or dead_lettered:
        summary += f", retried {retried:,}, dead-lettered {dead_lettered:,}"
    return {
        "summary": summary,
        "uptime": duration_words(uptime_s),
        "uptime_s": round(uptime_s, 1),
        "groups": groups,
        "groups_loaded": loaded,
        "notifications_sent": state + periodic,
        "state_notifications_sent": state,
        "periodic_notifications_sent": periodic,
        "notifications_failed": failed,
        "notifications_dropped": dropped,
        "notifications_retried": retried,
        "notifications_dead_lettered": dead_lettered,
        "reloads_applied": reloads.get("applied", 0),
        "reloads_refused": reloads.get("refused", 0),
    }


def duration_words(seconds: float) -> str:
    """``2 h 05 min``, ``4 min 07 s``, ``12 s``: whole units, never ``60 min``."""
    whole = max(0, round(seconds))
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours:02d} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _settle_heap() -> None:
    """After start-up: move what start-up built out of the collector's sight.

    ``run`` turns the collector off for start-up, which allocates millions of
    long-lived objects and next to no garbage; frozen, they are never scanned again, so
    no later gen-2 collection stalls the loop. A no-op when the collector is on.
    """
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def run(
    settings: Settings,
    config_path: str | None = None,
    start_all: bool = False,
    bounds: RunBounds | None = None,
) -> int:
    """Run the daemon on uvloop until stopped (or its duration ends); the exit code."""
    gc.disable()  # start-up allocates long-lived objects only; see _settle_heap
    daemon = Daemon(settings, config_path, start_all=start_all, bounds=bounds)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        try:
            runner.run(daemon.serve())
        except StartupError as exc:
            log.error("ocsd cannot start", error=str(exc))
            return EXIT_CANNOT_START
        except asyncio.CancelledError:
            if daemon._force_exit:
                return EXIT_FORCED
            raise
    if daemon.bounds.reports:
        counters = daemon.feed.counters
        summary = report(daemon.bounds, daemon.metrics, counters, daemon.ran_s, daemon.recorder)
        if not summary.passed and daemon.exit_code == EXIT_OK:
            return EXIT_THRESHOLD_FAILED
    return daemon.exit_code
