"""The daemon: wires engine, notifier, tickers, scheduler and control server.

Modelled on uvicorn's ``Server``: ``startup`` -> wait for a stop signal ->
``shutdown``. The first SIGTERM/SIGINT stops gracefully (no new work, in-flight
POSTs get up to ``http-response-timeout``); a second one forces the exit. SIGHUP,
or a change of the configuration file on disk, reloads the configuration and
applies the differences without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import heapq
import itertools
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import uvloop
from aiohttp import web
from prometheus_client import CollectorRegistry

from ocsd.config.definitions import group_definitions, group_schedules
from ocsd.config.settings import ConfigError, Settings, load_settings, parse_shard
from ocsd.core.body import BodyEncoder, GroupSnapshot
from ocsd.core.engine import Engine, UnknownGroup
from ocsd.core.genesys import Actor, status_name
from ocsd.core.identity import Tenant
from ocsd.core.lifecycle import DialingChange, InvalidParameter, Request, RequestRefused
from ocsd.core.schedule import Entry
from ocsd.delivery.notifier import DeliveryCounters, Kind, Notification, Notifier, ReliableNotifier
from ocsd.delivery.outbox import OutboxError, read_dead_letters
from ocsd.delivery.signing import Signer
from ocsd.logs import get_logger
from ocsd.logs.redact import redact_uri
from ocsd.service import control_api as control
from ocsd.service.metrics import DaemonFigures, Metrics
from ocsd.service.ticker import PhasedTicker, Ticker, plan_phases

log = get_logger("ocsd.service.daemon")

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: Wall seconds between two steps of the dialing simulations.
SIMULATION_STEP_S = 0.25
#: Wall seconds within which every loaded group's simulation is brought up to date,
#: whether or not anything reads it (a little at each step, round robin).
CATCH_UP_S = 5.0
#: Groups loaded and started per event-loop iteration by ``--start-all``.
START_ALL_BATCH = 500
#: Wall seconds between two looks at the configuration file's modification time.
CONFIG_POLL_S = 1.0
#: Options that are read once at start-up; a reload that changes them says so.
RESTART_OPTIONS = ("control_host", "control_port", "log_format", "stats_window", "seed")
#: Options of delivery: a change makes a new notifier (a new pool, a new delivery mode).
DELIVERY_OPTIONS = (
    "send_campaigngroup_states",
    "campaigngroup_states_uri",
    "http_response_timeout",
    "http_connection_pool_size",
    "delivery_mode",
    "retry_schedule",
    "max_attempts",
    "webhook_secret",
    "outbox_path",
    "dead_letter_path",
    "ca_file",
)


class StartupError(Exception):
    """The daemon could not start (e.g. the control port is taken); exit non-zero."""


def shard_hint(settings: Settings) -> str:
    """Said with an unknown DBID when this instance runs one shard of the groups."""
    if settings.shard is None:
        return ""
    k, n = parse_shard(settings.shard)
    return (
        f" in shard {settings.shard} ([ocsd] shard): this instance runs the groups whose "
        f"dbid mod {n} = {k - 1}"
    )


class Scheduler:
    """Runs schedule entries at their wall-clock times, one heap for all groups."""

    def __init__(
        self, started: float, tz: ZoneInfo, run_entry: Callable[[int, Entry], None]
    ) -> None:
        self.started = started
        self.tz = tz
        self._run_entry = run_entry
        self._heap: list[tuple[float, int, int, int, Entry]] = []  # due, seq, dbid, generation
        self._generation: dict[int, int] = {}
        self._entries: dict[int, tuple[Entry, ...]] = {}
        self._seq = itertools.count()
        self._wake = asyncio.Event()

    def set_group(
        self, dbid: int, entries: tuple[Entry, ...], now: float, initial: bool = False
    ) -> bool:
        """Plan a group's entries; False if they are unchanged.

        On a re-plan, offsets already past are not run again.
        """
        if self._entries.get(dbid, ()) == entries:
            return False
        generation = self._generation.get(dbid, 0) + 1
        self._generation[dbid] = generation
        self._entries[dbid] = entries
        for entry in entries:
            due = entry.first_due(self.started, self.tz)
            if entry.offset is None and due < now:
                due = entry.next_daily(now, self.tz)
            if entry.offset is not None and due < now and not initial:
                continue  # an offset that came before this reload: it ran already
            heapq.heappush(self._heap, (due, next(self._seq), dbid, generation, entry))
        self._wake.set()
        return True

    def set_timezone(self, tz: ZoneInfo, now: float) -> None:
        """Re-plan every group's entries in a new time zone (past offsets stay done)."""
        self.tz = tz
        for dbid, entries in list(self._entries.items()):
            self._entries.pop(dbid)
            self.set_group(dbid, entries, now)

    def remove_group(self, dbid: int) -> None:
        self._generation[dbid] = self._generation.get(dbid, 0) + 1
        self._entries.pop(dbid, None)

    async def run(self) -> None:
        while True:
            self._wake.clear()
            delay = self._heap[0][0] - time.time() if self._heap else None
            if delay is None or delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue
            due, _seq, dbid, generation, entry = heapq.heappop(self._heap)
            if self._generation.get(dbid) != generation:
                continue  # re-planned or removed since
            if entry.clock is not None:
                next_due = entry.next_daily(due + 1, self.tz)
                heapq.heappush(self._heap, (next_due, next(self._seq), dbid, generation, entry))
            self._run_entry(dbid, entry)


class Daemon:
    def __init__(
        self,
        settings: Settings,
        config_path: str | None = None,
        clock: Callable[[], float] = time.time,
        start_all: bool = False,
    ) -> None:
        self.settings = settings
        self.config_path = config_path
        self.clock = clock
        self.start_all = start_all
        self.started_wall = clock()
        self.engine = Engine(
            group_definitions(settings).values(),
            wall_start=self.started_wall,
            time_scale=settings.time_scale,
            stats_window=settings.stats_window,
            seed=settings.seed,
        )
        self.engine.unknown_hint = shard_hint(settings)
        self.tenant = Tenant(settings.tenant_name, settings.tenant_ccid)
        self.encoder = BodyEncoder()
        self.notifier: Notifier | None = None
        # one scheduler for every group's periodic notification, each at its own phase
        self.ticker = PhasedTicker(settings.campaigngroup_states_interval, self._tick)
        self._phases: list[list[int]] = []  # slot -> DBIDs of the groups with that phase
        self._phases_stale = True
        self.stepper = Ticker(SIMULATION_STEP_S, self._step)
        self.scheduler = Scheduler(
            self.started_wall, ZoneInfo(settings.schedule_timezone), self._run_schedule_entry
        )
        self.reloads = 0
        self.reload_results: Counter[str] = Counter()
        self.metrics = Metrics()
        self.metrics.collect_from(self._figures)
        self.ready = False
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()  # notifier drains and reloads
        self._should_exit = asyncio.Event()
        self._force_exit = False
        self._config_stat = _stat(config_path)
        self._config_fingerprint = _fingerprint(config_path)
        self._reload_lock = asyncio.Lock()
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
        try:
            self.notifier = self._build_notifier(settings)
        except OutboxError as exc:
            raise StartupError(str(exc)) from None
        if self.notifier is not None:
            await self.notifier.start()
        self._runner = web.AppRunner(
            control.create_app(self), access_log=None, handle_signals=False, shutdown_timeout=1.0
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
        now = self.clock()
        for dbid, entries in group_schedules(settings).items():
            self.scheduler.set_group(dbid, entries, now, initial=True)
        for name, coroutine in (
            ("ticker", self.ticker.run()),
            ("simulation", self.stepper.run()),
            ("scheduler", self.scheduler.run()),
            ("config-watch", self._watch_config()),
        ):
            self._tasks.append(asyncio.create_task(coroutine, name=f"ocsd-{name}"))
        log.info(
            "ocsd started",
            control=f"http://{settings.control_host}:{self.control_port}",
            control_host=settings.control_host,
            control_port=self.control_port,
            groups=len(self.engine),
            sending=settings.delivers,
            delivery_mode=settings.delivery_mode,
            signing=settings.webhook_secret is not None,
            control_token=settings.control_token is not None,
            uri=redact_uri(settings.campaigngroup_states_uri or "") or None,
            interval_s=settings.campaigngroup_states_interval,
            time_scale=settings.time_scale,
            config=self.config_path or "embedded example",
        )
        self.ready = True
        if self.start_all:  # after the control API answers, a batch per loop iteration
            task = asyncio.create_task(self._start_all(), name="ocsd-start-all")
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        else:
            _settle_heap()

    async def _start_all(self) -> None:
        """``ocsd run --start-all``: load and start every group, as a schedule would (actor 2).

        Straight to the engine: one summary line, not a view and a log line per request.
        """
        started = 0
        for index, group in enumerate(self.engine.groups):
            if index and index % START_ALL_BATCH == 0:
                await asyncio.sleep(0)  # the control API and sending run between batches
            dbid, now = group.identity.dbid, self.clock()
            for request in (Request.LOAD, Request.START):  # each on its own, as before
                try:
                    for snapshot in self.engine.request(dbid, request, Actor.SCHEDULE, now):
                        self._notify(snapshot, "state")
                except (RequestRefused, InvalidParameter, UnknownGroup) as exc:
                    log.warning(
                        "scheduled request skipped",
                        request=request.value,
                        dbid=dbid,
                        campaign_group=group.identity.name,
                        actor="schedule",
                        reason=str(exc),
                    )
                else:
                    started += request == Request.START
        log.info("all groups loaded and started", started=started, groups=len(self.engine))
        _settle_heap()

    async def shutdown(self) -> None:
        log.info("ocsd stopping")
        if self._runner is not None:
            await self._runner.cleanup()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        counters = None
        grace = min(self.settings.http_response_timeout, self.settings.shutdown_grace)
        if self.notifier is not None:
            await self.notifier.close(grace)
            counters = self.notifier.counters
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        log.info(
            "ocsd stopped",
            sent=sum(counters.sent.values()) if counters else 0,
            failed=sum(counters.failed.values()) if counters else 0,
            dropped=sum(counters.dropped.values()) if counters else 0,
            retried=sum(counters.retried.values()) if counters else 0,
            dead_lettered=sum(counters.dead_lettered.values()) if counters else 0,
            ticks=self.ticker.ticks,
            reloads=self.reloads,
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
        loop.add_signal_handler(signal.SIGHUP, self._reload_soon, "SIGHUP")
        try:
            yield
        finally:
            for sig in (*HANDLED_SIGNALS, signal.SIGHUP):
                loop.remove_signal_handler(sig)

    # -- producing notifications -----------------------------------------------------

    def _notify(self, snapshot: GroupSnapshot, kind: Kind) -> None:
        if self.notifier is None:
            return
        body = self.encoder.encode(snapshot, self.tenant)
        self.notifier.submit(
            Notification(kind, snapshot.identity.name, snapshot.identity.dbid, body)
        )

    def _tick(self, slot: int, lateness: float) -> None:
        """One phase slot of the interval: queue the periodic notification of its loaded
        groups; each body is built when a sender takes it."""
        self.metrics.tick_lateness.observe(max(0.0, lateness))
        notifier = self.notifier
        if notifier is None:
            return
        slots = self.ticker.slots
        if self._phases_stale or len(self._phases) != slots:
            self._phases = plan_phases(self.engine.definitions, slots)
            self._phases_stale = False
        groups = self.engine.by_dbid
        for dbid in self._phases[slot]:
            group = groups.get(dbid)
            if group is not None and group.loaded:
                notifier.due(dbid, group.identity.name)

    def _periodic_body(self, dbid: int) -> bytes | None:
        """The notifier's body builder: the group's periodic body now, None if not loaded."""
        snapshot = self.engine.periodic_one(dbid, self.clock())
        return None if snapshot is None else self.encoder.encode(snapshot, self.tenant)

    def _step(self, _lateness: float) -> None:
        """Step the groups that change on their own, notifying what that caused (actor 3);
        bring a share of the others' simulations up to date."""
        now = self.clock()
        self.engine.catch_up(now, SIMULATION_STEP_S / CATCH_UP_S, CATCH_UP_S)
        for snapshot in self.engine.advance(now):
            self._notify(snapshot, "state")
            log.info(
                "campaign group changed by OCS",
                campaign_group=snapshot.identity.name,
                action=int(snapshot.action),
                status=status_name(snapshot.status),
                actor=snapshot.actor.name.lower(),
            )

    def _apply(
        self,
        dbid: int,
        request: Request,
        actor: Actor,
        change: DialingChange,
        auto_complete: bool | None,
    ) -> bool:
        """A request from a schedule or start-up: refusals are logged, never fatal."""
        try:
            self.handle_request(dbid, request, change, auto_complete, actor)
        except (RequestRefused, InvalidParameter, UnknownGroup) as exc:
            log.warning(
                "scheduled request skipped",
                request=request.value,
                dbid=dbid,
                actor=actor.name.lower(),
                reason=str(exc),
            )
            return False
        return True

    def _run_schedule_entry(self, dbid: int, entry: Entry) -> None:
        log.info("schedule entry due", dbid=dbid, entry=entry.text)
        for request in entry.requests:
            change = (
                entry.change
                if request in (Request.START, Request.SET_DIAL_MODE)
                else DialingChange()
            )
            if not self._apply(dbid, request, Actor.SCHEDULE, change, None):
                break

    # -- live reconfiguration --------------------------------------------------------

    def _build_notifier(self, settings: Settings) -> Notifier | None:
        """The notifier of ``settings``' delivery mode, not started; raises OutboxError."""
        if not settings.delivers:
            return None
        assert settings.campaigngroup_states_uri is not None
        secret = settings.webhook_secret
        signer = Signer(secret.get_secret_value()) if secret is not None else None
        notifier: Notifier
        if settings.delivery_mode == "reliable":
            notifier = ReliableNotifier(
                settings.campaigngroup_states_uri,
                settings.http_response_timeout,
                settings.http_connection_pool_size,
                latency=self.metrics.post_latency,
                signer=signer,
                ca_file=settings.ca_file,
                retry_schedule=settings.retry_delays,
                max_attempts=settings.attempts_allowed,
                outbox_path=settings.outbox_path,
                dead_letter_path=settings.dead_letter_path,
                builder=self._periodic_body,
            )
        else:
            notifier = Notifier(
                settings.campaigngroup_states_uri,
                settings.http_response_timeout,
                settings.http_connection_pool_size,
                latency=self.metrics.post_latency,
                signer=signer,
                ca_file=settings.ca_file,
                builder=self._periodic_body,
            )
        if self.notifier is not None:
            notifier.counters = self.notifier.counters  # metrics stay cumulative
        return notifier

    def _reload_soon(self, trigger: str) -> None:
        task = asyncio.create_task(self.reload(trigger), name="ocsd-reload")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _watch_config(self) -> None:
        """Reload when the configuration file changes on disk (polled: works on any mount)."""
        if not self.config_path:
            return
        while True:
            await asyncio.sleep(CONFIG_POLL_S)
            stat = _stat(self.config_path)
            if stat is None or stat == self._config_stat:
                continue  # hash the file only when its modification time, size or inode moved
            self._config_stat = stat
            fingerprint = await asyncio.to_thread(_fingerprint, self.config_path)
            if fingerprint is not None and fingerprint != self._config_fingerprint:
                await self.reload("file changed")

    async def reload(self, trigger: str) -> bool:
        """Re-read the configuration and apply the differences; keep the old one on error."""
        async with self._reload_lock:
            if not self.config_path:
                log.warning("reload skipped: ocsd runs on the embedded example, no file to re-read")
                return False
            self._config_stat = _stat(self.config_path)
            self._config_fingerprint = await asyncio.to_thread(_fingerprint, self.config_path)
            try:
                new = await asyncio.to_thread(load_settings, self.config_path)
                changed = await self._apply_settings(new)
            except (ConfigError, OutboxError) as exc:
                self.reload_results["refused"] += 1
                log.error(
                    "configuration refused; still running on the previous one",
                    trigger=trigger,
                    error=str(exc),
                )
                return False
            self.reloads += 1
            self.reload_results["applied"] += 1
            log.info("configuration reloaded", trigger=trigger, changed=changed or ["nothing"])
            return True

    async def _apply_settings(self, new: Settings) -> list[str]:
        old, now = self.settings, self.clock()
        changed: list[str] = []
        delivery = DELIVERY_OPTIONS
        if any(getattr(old, f) != getattr(new, f) for f in delivery):
            candidate = self._build_notifier(new)  # OutboxError: refused, nothing changed
            changed += [f.replace("_", "-") for f in delivery if getattr(old, f) != getattr(new, f)]
            previous = self.notifier
            drain: asyncio.Task[None] | None = None
            if previous is not None:  # let its queued and in-flight POSTs finish
                drain = asyncio.create_task(previous.close(), name="ocsd-notifier-drain")
                self._background.add(drain)
                drain.add_done_callback(self._background.discard)
                if isinstance(previous, ReliableNotifier) and not isinstance(
                    candidate, ReliableNotifier
                ):
                    log.warning(
                        "delivery-mode is no longer reliable: what waits in the outbox is "
                        "delivered when it is reliable again",
                        outbox=previous.outbox.path,
                    )
            if candidate is not None:
                # a reliable notifier starts sending after the old pool is done, so a
                # group's notifications still in flight there are not overtaken
                await candidate.start(after=drain)
            self.notifier = candidate
        if old.campaigngroup_states_interval != new.campaigngroup_states_interval:
            changed.append("campaigngroup-states-interval")
            self.ticker.set_interval(new.campaigngroup_states_interval)
        if (old.tenant_name, old.tenant_ccid) != (new.tenant_name, new.tenant_ccid):
            changed.append("tenant")
            self.tenant = Tenant(new.tenant_name, new.tenant_ccid)
        if old.time_scale != new.time_scale:
            changed.append("time-scale")
            self.engine.clock.rescale(now, new.time_scale)
        if old.shard != new.shard:
            changed.append("shard")
            self.engine.unknown_hint = shard_hint(new)
        if old.schedule_timezone != new.schedule_timezone:
            changed.append("schedule-timezone")
            self.scheduler.set_timezone(ZoneInfo(new.schedule_timezone), now)
        for field in RESTART_OPTIONS:
            if getattr(old, field) != getattr(new, field):
                changed.append(f"{field.replace('_', '-')} (applies after a restart)")
        changed += self._apply_groups(new, now)
        self.settings = new
        return changed

    def _apply_groups(self, new: Settings, now: float) -> list[str]:
        changed: list[str] = []
        current = self.engine.definitions
        wanted = group_definitions(new)
        if current.keys() != wanted.keys():
            self._phases_stale = True
        for dbid in current.keys() - wanted.keys():
            name = current[dbid].identity.name
            for snapshot in self.engine.remove(dbid, now):
                self._notify(snapshot, "state")
            self.scheduler.remove_group(dbid)
            self.encoder.forget(dbid)
            changed.append(f"group {name} removed")
        for dbid, definition in wanted.items():
            if dbid not in current:
                self.engine.add(definition)
                changed.append(f"group {definition.identity.name} added")
            elif current[dbid] != definition:
                self.engine.update(definition)
                changed.append(f"group {definition.identity.name} changed")
        new_schedules = group_schedules(new)
        for dbid in wanted:
            if self.scheduler.set_group(dbid, new_schedules.get(dbid, ()), now):
                changed.append(f"schedule of {wanted[dbid].identity.name}")
        return changed

    # -- the Controller protocol of the control API ----------------------------------

    def handle_request(
        self,
        dbid: int,
        request: Request,
        change: DialingChange,
        auto_complete: bool | None,
        actor: Actor = Actor.CLIENT,
    ) -> dict[str, Any]:
        now = self.clock()
        snapshots = self.engine.request(dbid, request, actor, now, change, auto_complete)
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
            "campaigngroup": self.engine.view(dbid, now),
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
        return self.engine.views(self.clock())

    def group_view(self, dbid: int) -> dict[str, Any]:
        return self.engine.view(dbid, self.clock())

    def _figures(self) -> DaemonFigures:
        notifier = self.notifier
        counters = notifier.counters if notifier else DeliveryCounters()
        return DaemonFigures(
            sent=counters.sent,
            failed=counters.failed,
            dropped=counters.dropped,
            statuses=Counter(group.status for group in self.engine.groups),
            pending=notifier.pending if notifier else 0,
            reloads=self.reload_results,
            ticks_skipped=self.ticker.skipped,
            retried=counters.retried,
            dead_lettered=counters.dead_lettered,
            outbox_pending=notifier.outbox_pending if notifier else 0,
            dead_letters=notifier.dead_letter_count if notifier else 0,
            delivery_stopped=notifier.stopped if notifier else False,
            delivery_mode=self.settings.delivery_mode,
        )

    # -- dead letters (reliable mode) ------------------------------------------------

    async def dead_letters(self, limit: int) -> dict[str, Any]:
        notifier = self.notifier
        if isinstance(notifier, ReliableNotifier):
            count, records = await notifier.dead_letters.read(limit)
        else:  # not sending reliably now: the file as it is
            records = await asyncio.to_thread(read_dead_letters, self.settings.dead_letter_path)
            count, records = len(records), records[:limit]
        return {
            "delivery_mode": self.settings.delivery_mode,
            "file": self.settings.dead_letter_path,
            "count": count,
            "deadletters": records,
        }

    async def resend_dead_letters(self, message_id: str | None) -> dict[str, Any]:
        """Queue dead letters again; raises LookupError (unknown id) or RuntimeError."""
        notifier = self.notifier
        if not isinstance(notifier, ReliableNotifier):
            raise RuntimeError(
                "dead letters are re-sent in delivery-mode = reliable with sending on; "
                f"now delivery-mode = {self.settings.delivery_mode}, "
                f"sending {'on' if notifier else 'off'}"
            )
        taken = await notifier.resend(None if message_id is None else [message_id])
        if message_id is not None and not taken:
            raise LookupError(f"no dead letter with id {message_id!r}")
        return {"resent": len(taken), "ids": [record["id"] for record in taken]}

    def control_token(self) -> str | None:
        token = self.settings.control_token
        return token.get_secret_value() if token is not None else None

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready: configuration loaded, control server up, loop tasks running."""
        tasks_alive = bool(self._tasks) and not any(t.done() for t in self._tasks)
        ready = self.ready and tasks_alive and not self._should_exit.is_set()
        return ready, {
            "ready": ready,
            "configuration": self.config_path or "embedded example",
            "loop_tasks_running": tasks_alive,
            "stopping": self._should_exit.is_set(),
        }

    def registry(self) -> CollectorRegistry:
        return self.metrics.registry

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "uptime_s": round(time.monotonic() - self.started_at, 3),
            "groups": len(self.engine),
            "pending_notifications": self.notifier.pending if self.notifier else 0,
            "reloads": self.reloads,
        }


def _settle_heap() -> None:
    """After start-up: move what start-up built out of the collector's sight.

    ``run`` turns the collector off for start-up, which allocates millions of
    long-lived objects and next to no garbage; frozen, they are never scanned again, so
    no later gen-2 collection stalls the loop. A no-op when the collector is on.
    """
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def _stat(path: str | None) -> tuple[int, int, int] | None:
    """What changes when the file is edited or replaced: mtime, size, inode."""
    if not path:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size, info.st_ino


def _fingerprint(path: str | None) -> str | None:
    """A digest of the configuration file, or None if it cannot be read right now."""
    if not path:
        return None
    try:
        with open(path, "rb") as file:
            return hashlib.sha256(file.read()).hexdigest()
    except OSError:
        return None


def run(settings: Settings, config_path: str | None = None, start_all: bool = False) -> int:
    """Run the daemon on uvloop until stopped; the process exit code."""
    gc.disable()  # start-up allocates long-lived objects only; see _settle_heap
    daemon = Daemon(settings, config_path, start_all=start_all)
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
