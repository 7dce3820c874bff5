"""Live reconfiguration: SIGHUP or a change of the file on disk re-reads the
configuration and applies the differences without a restart.

A reload acts only on the whole file: it waits until the file has stopped changing and
refuses an empty one (:mod:`ocsd.service.config_file`). A configuration that does not
load, whose delivery cannot be set up, or that would force-unload every loaded group by
defining none, is refused as a whole: the daemon keeps running on the previous one,
says why once, and counts it. Everything that can fail is done before anything
changes; then what changed is applied where it lives: groups gone are removed first,
their notifications sent by the delivery and tenant still in force, then a new
notifier for changed delivery options (the old one hands its queued state
notifications over to it and retires in the background, see :meth:`Reloader._hand_over`),
the ticker's interval, the feed's tenant, the engine's clock and groups, the scheduler.

Requests coalesce: a burst of SIGHUPs (and the file watcher) gives one reload, and one
more after the burst for what came during the first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from ocsd.config.definitions import group_definitions, group_schedules, shard_hint
from ocsd.config.settings import ConfigError, Settings, silence_warnings
from ocsd.core.engine import GroupDefinition
from ocsd.core.identity import Tenant
from ocsd.core.lifecycle import CampaignGroup
from ocsd.delivery.errors import DeliveryError
from ocsd.delivery.notifier import Notifier
from ocsd.logs import get_logger
from ocsd.service.config_file import file_stat, fingerprint, read_settled
from ocsd.service.controller import DaemonState
from ocsd.service.feed import Feed
from ocsd.service.scheduler import Scheduler
from ocsd.service.sending import Delivery, delivery_changes
from ocsd.service.ticker import PhasedTicker

log = get_logger("ocsd.service")

#: Wall seconds between two looks at the configuration file's modification time.
CONFIG_POLL_S = 1.0
#: A burst of reload requests is over when none came for this many seconds ...
BURST_QUIET_S = 0.5
#: ... or when it has lasted this long: then the next reload goes anyway.
BURST_MAX_S = 5.0
#: The trigger of a reload the file watcher asks for.
WATCHER = "file changed"
#: Options that are read once at start-up; a reload that changes them says so.
RESTART_OPTIONS = (
    "control_host",
    "control_port",
    "log_format",
    "stats_window",
    "seed",
    "control_idle_timeout",
    "control_max_connections",
)
#: Group names a refusal lists before "and N more".
NAMES_SHOWN = 3

DeliveryFactory = Callable[[Settings], "Delivery | None"]
_stat = file_stat  # the watcher's look at the file


class ReloadRefused(Exception):
    """The configuration loads, but applying it now would lose state or cannot be done."""


class _Stopping(Exception):
    """ocsd began stopping during the reload: nothing was changed."""


def every_group_lost(
    wanted: Mapping[int, GroupDefinition], groups: Iterable[CampaignGroup]
) -> str | None:
    """Why a configuration that defines no group is refused while groups are loaded
    (a truncated file looks just like it); None when it may be applied."""
    if wanted:
        return None
    loaded = [group.identity.name for group in groups if group.loaded]
    if not loaded:
        return None
    names = ", ".join(loaded[:NAMES_SHOWN])
    if len(loaded) > NAMES_SHOWN:
        names += f" and {len(loaded) - NAMES_SHOWN} more"
    return (
        f"defines no campaign group, and {len(loaded)} loaded would be force-unloaded "
        f"({names}): unload them first and reload, or restart ocsd with this file"
    )


@dataclass
class _Handover:
    """A new delivery, started but not in use yet; the old one drains once it takes over."""

    candidate: Delivery | None
    take_over: asyncio.Event
    drain: asyncio.Task[None] | None


class Reloader:
    """Owns the settings in force and every change to them."""

    def __init__(
        self,
        settings: Settings,
        config_path: str | None,
        *,
        feed: Feed,
        ticker: PhasedTicker,
        scheduler: Scheduler,
        build_delivery: DeliveryFactory,
        state: DaemonState,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.config_path = config_path
        self._feed = feed
        self._ticker = ticker
        self.scheduler = scheduler
        self._build_delivery = build_delivery
        self._state = state
        self._clock = clock
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()  # the reload queue, notifier drains
        self._retiring: set[Notifier] = set()  # notifiers a reload replaced, still sending
        self._stat = _stat(config_path)
        self._fingerprint = fingerprint(config_path)
        self._trigger: str | None = None  # a reload asked for and not begun
        self._requests = 0
        self._forced = False  # a request other than the watcher's: reload even if unchanged
        self._queue: asyncio.Task[None] | None = None
        self._stopping = False

    # -- triggers ------------------------------------------------------------------------

    def reload_soon(self, trigger: str) -> None:
        """Ask for a reload (a signal handler cannot wait); requests coalesce."""
        if self._stopping:
            log.info("reload skipped: ocsd is stopping", trigger=trigger)
            return
        self._trigger = self._trigger or trigger
        self._requests += 1
        self._forced = self._forced or trigger != WATCHER
        if self._queue is None or self._queue.done():
            self._queue = self._in_background(self._serve_requests(), "ocsd-reload")

    async def _serve_requests(self) -> None:
        """Reload at once; requests that come during the reload or right after it (the
        rest of a burst) make one more reload, when they pause for BURST_QUIET_S."""
        loop = asyncio.get_running_loop()
        while self._trigger is not None and not self._stopping:
            trigger, forced = self._trigger, self._forced
            self._trigger, self._forced = None, False
            await self.reload(trigger, only_if_changed=not forced)
            ends = loop.time() + BURST_MAX_S
            while not self._stopping and loop.time() < ends:
                seen = self._requests
                await asyncio.sleep(BURST_QUIET_S)
                if self._requests == seen:
                    break

    async def watch(self) -> None:
        """Reload when the configuration file changes on disk (polled: works on any mount)."""
        if not self.config_path:
            return
        while True:
            await asyncio.sleep(CONFIG_POLL_S)
            stat = _stat(self.config_path)
            if stat is None or stat == self._stat:
                continue  # hash the file only when its modification time, size or inode moved
            self._stat = stat
            digest = await asyncio.to_thread(fingerprint, self.config_path)
            if digest is not None and digest != self._fingerprint:
                self.reload_soon(WATCHER)
                if self._queue is not None:  # the reload it asked for is done before the next look
                    await asyncio.shield(self._queue)

    async def reload(self, trigger: str, *, only_if_changed: bool = False) -> bool:
        """Re-read the configuration and apply the differences; keep the old one on error.

        ``only_if_changed``: not when the file is what the last reload read (the watcher
        saw a change that a reload under way, or a SIGHUP's, has read meanwhile).
        """
        async with self._lock:
            if not self.config_path:
                log.warning("reload skipped: ocsd runs on the embedded example, no file to re-read")
                return False
            if only_if_changed:
                digest = await asyncio.to_thread(fingerprint, self.config_path)
                if digest == self._fingerprint:
                    return False
            try:
                if self._stopped():
                    raise _Stopping
                changed = await self._read_and_apply(self.config_path)
            except _Stopping:
                log.info("reload skipped: ocsd is stopping", trigger=trigger)
                return False
            except (ConfigError, DeliveryError, ReloadRefused) as exc:
                return self._refused(trigger, str(exc))
            except Exception as exc:  # a defect: one line with its traceback, and the
                # watcher and SIGHUP live on
                return self._refused(trigger, f"internal error: {exc!r}", exc)
            self._state.reload_results["applied"] += 1
            log.info("configuration reloaded", trigger=trigger, changed=changed or ["nothing"])
            for warning in silence_warnings(self.settings):
                log.warning(warning, trigger=trigger)
            return True

    async def _read_and_apply(self, path: str) -> list[str]:
        """What changed; raises _Stopping when ocsd began stopping meanwhile."""
        reading = await read_settled(path, self._stopped)
        if reading is None:
            raise _Stopping
        self._stat, self._fingerprint = reading.stat, reading.fingerprint
        if reading.settings is None:
            raise ConfigError(reading.error or f"{path}: cannot be read")
        return await self._apply(reading.settings)

    def _stopped(self) -> bool:
        return self._stopping or self._state.stopping

    def _refused(self, trigger: str, error: str, defect: Exception | None = None) -> bool:
        self._state.reload_results["refused"] += 1
        log.error(
            "configuration refused; still running on the previous one",
            trigger=trigger,
            error=error,
            exc_info=defect,
        )
        return False

    # -- applying ------------------------------------------------------------------------

    async def _apply(self, new: Settings) -> list[str]:
        """Prepare what can fail, then change everything at once (no await after)."""
        old = self.settings
        wanted = group_definitions(new)
        self._refuse_losing_every_group(wanted)
        handover = await self._prepare_delivery(new) if delivery_changes(old, new) else None
        try:
            # the groups' states may have changed while the delivery was being made
            self._refuse_losing_every_group(wanted)
            now = self._clock()
            gone = [dbid for dbid in self._feed.engine.by_dbid if dbid not in wanted]
            changed = self._remove_groups(gone, now)  # sent as configured until now
            if handover is not None:
                changed[:0] = delivery_changes(old, new)
                self._hand_over(handover, gone)
        except BaseException:
            if handover is not None and not handover.take_over.is_set():
                self._abandon(handover)
            raise
        changed += self._apply_options(old, new, now)
        changed += self._apply_groups(new, wanted, now)
        self.settings = new
        return changed

    def _refuse_losing_every_group(self, wanted: Mapping[int, GroupDefinition]) -> None:
        if self._stopped():
            raise _Stopping
        refusal = every_group_lost(wanted, self._feed.engine.groups)
        if refusal is not None:
            raise ReloadRefused(f"{self.config_path}: {refusal}")

    async def _prepare_delivery(self, new: Settings) -> _Handover:
        """The new delivery, built and started, the old one still in use.

        Built in a thread: loading the system's trusted CAs for a ``ca-file`` takes ~50 ms
        and opening the outbox touches the disk, neither may stall the ticks. Raises
        DeliveryError, with nothing changed.
        """
        candidate = await asyncio.to_thread(self._build_delivery, new)
        previous = self._feed.delivery
        take_over = asyncio.Event()
        drain = None
        if previous is not None:  # when the new one takes over: what it still owes goes out
            retiring = _retire_after(take_over, previous.notifier, self._retiring)
            drain = self._in_background(retiring, "ocsd-notifier-drain")
        handover = _Handover(candidate, take_over, drain)
        if candidate is not None:
            try:
                # the new notifier starts sending after the old pool is done, so a
                # group's notifications still in flight there are not overtaken
                await candidate.notifier.start(after=drain)
            except Exception as exc:
                self._abandon(handover)
                raise DeliveryError(f"the new delivery cannot start: {exc}") from exc
        return handover

    def _hand_over(self, handover: _Handover, gone: Collection[int]) -> None:
        """The new delivery takes over at once (no await), the old one's queued state
        notifications first, each group's in order, but the groups ``gone``' (the old
        one sends them, to the URI they were made for, then closes: _retire_after)."""
        previous, candidate = self._feed.delivery, handover.candidate
        if previous is not None:
            self._retiring.add(previous.notifier)  # until _retire_after is done
        if previous is not None and candidate is not None:
            _move_queued(previous.notifier, candidate.notifier, gone)
        no_longer_reliable = candidate is None or candidate.reliable is None
        if previous is not None and previous.reliable is not None and no_longer_reliable:
            log.warning(
                "delivery-mode is no longer reliable: what waits in the outbox is "
                "delivered when it is reliable again",
                outbox=previous.reliable.outbox.path,
            )
        handover.take_over.set()
        self._feed.delivery = handover.candidate

    def _abandon(self, handover: _Handover) -> None:
        """A refused reload: the old delivery stays, the new one is closed unused."""
        if handover.drain is not None:
            handover.drain.cancel()
        if handover.candidate is not None:
            self._in_background(handover.candidate.notifier.close(0), "ocsd-notifier-abandon")

    def _apply_options(self, old: Settings, new: Settings, now: float) -> list[str]:
        changed: list[str] = []
        engine = self._feed.engine
        if old.campaigngroup_states_interval != new.campaigngroup_states_interval:
            changed.append("campaigngroup-states-interval")
            self._ticker.set_interval(new.campaigngroup_states_interval)
        if (old.tenant_name, old.tenant_ccid) != (new.tenant_name, new.tenant_ccid):
            changed.append("tenant")
            self._feed.tenant = Tenant(new.tenant_name, new.tenant_ccid)
        if old.time_scale != new.time_scale:
            changed.append("time-scale")
            engine.clock.rescale(now, new.time_scale)
        if old.shard != new.shard:
            changed.append("shard")
            engine.unknown_hint = shard_hint(new)
        if old.schedule_timezone != new.schedule_timezone:
            changed.append("schedule-timezone")
            self.scheduler.set_timezone(ZoneInfo(new.schedule_timezone), now)
        for field in RESTART_OPTIONS:
            if getattr(old, field) != getattr(new, field):
                changed.append(f"{field.replace('_', '-')} (applies after a restart)")
        return changed

    def _remove_groups(self, gone: list[int], now: float) -> list[str]:
        """Groups gone from the configuration: force-unloaded (action 29) through the
        delivery and tenant in force, then removed."""
        changed: list[str] = []
        engine, feed = self._feed.engine, self._feed
        if gone:
            feed.groups_changed()
        for dbid in gone:
            name = engine.group(dbid).identity.name
            snapshots = engine.remove(dbid, now)
            feed.notify(snapshots)
            for snapshot in snapshots:
                feed.log_change(snapshot, "a reload", "the group is gone from the configuration")
            self.scheduler.remove_group(dbid)
            feed.forget(dbid)
            changed.append(f"group {name} removed")
        return changed

    def _apply_groups(
        self, new: Settings, wanted: Mapping[int, GroupDefinition], now: float
    ) -> list[str]:
        changed: list[str] = []
        engine = self._feed.engine
        current = engine.definitions
        if current.keys() != wanted.keys():
            self._feed.groups_changed()
        for dbid, definition in wanted.items():
            if dbid not in current:
                engine.add(definition)
                changed.append(f"group {definition.identity.name} added")
            elif current[dbid] != definition:
                engine.update(definition)
                changed.append(f"group {definition.identity.name} changed")
        schedules = group_schedules(new)
        for dbid in wanted:
            if self.scheduler.set_group(dbid, schedules.get(dbid, ()), now):
                changed.append(f"schedule of {wanted[dbid].identity.name}")
        return changed

    # -- background work -----------------------------------------------------------------

    def _in_background(self, work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(work, name=name)
        self._background.add(task)
        task.add_done_callback(_log_failure)
        task.add_done_callback(self._background.discard)
        return task

    async def stop_reloading(self) -> None:
        """At shutdown, before the delivery closes: no reload starts one; replaced ones hurry."""
        self._stopping = True
        async with self._lock:  # the reload under way has finished or given up
            _hurry(self._retiring, self.settings)

    async def stop(self) -> None:
        """Wait for the reloads and drains under way (at shutdown, within its grace)."""
        self._stopping = True
        _hurry(self._retiring, self.settings)
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


def _hurry(retiring: Iterable[Notifier], settings: Settings) -> None:
    """ocsd stops: notifiers a reload replaced get the shutdown grace, like the one in force."""
    grace = min(settings.http_response_timeout, settings.shutdown_grace)
    for notifier in retiring:
        notifier.hurry(grace)


def _move_queued(previous: Notifier, successor: Notifier, gone: Collection[int]) -> None:
    """The state notifications queued in ``previous``, but the groups ``gone``', go to
    ``successor`` (before anything new: no await)."""
    moved = previous.hand_over(keep=gone)
    for notification in moved:
        successor.submit(notification)
    if moved:
        log.info(
            "queued state notifications handed over to the new delivery",
            count=len(moved),
            uri=successor.safe_uri,
        )


async def _retire_after(
    take_over: asyncio.Event, notifier: Notifier, retiring: set[Notifier]
) -> None:
    """Once the new delivery took over, ``notifier`` sends what it still owes and closes."""
    await take_over.wait()
    try:
        await notifier.retire()
    finally:
        retiring.discard(notifier)


def _log_failure(task: asyncio.Task[None]) -> None:
    """A background task that failed is logged (never "Task exception was never retrieved")."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("background task failed", task=task.get_name(), error=repr(exc), exc_info=exc)
