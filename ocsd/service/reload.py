"""Live reconfiguration: SIGHUP or a change of the file on disk re-reads the
configuration and applies the differences without a restart.

A configuration that does not load (or whose delivery cannot be set up) is refused as a
whole and the daemon keeps running on the previous one. What changed is applied where
it lives: a new notifier for delivery options (the old one drains in the background), the
ticker's interval, the feed's tenant, the engine's clock and groups, the scheduler.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any
from zoneinfo import ZoneInfo

from ocsd.config.definitions import group_definitions, group_schedules, shard_hint
from ocsd.config.settings import ConfigError, Settings, load_settings
from ocsd.core.identity import Tenant
from ocsd.delivery.errors import DeliveryError
from ocsd.logs import get_logger
from ocsd.service.controller import DaemonState
from ocsd.service.feed import Feed
from ocsd.service.scheduler import Scheduler
from ocsd.service.sending import Delivery, delivery_changes
from ocsd.service.ticker import PhasedTicker

log = get_logger("ocsd.service")

#: Wall seconds between two looks at the configuration file's modification time.
CONFIG_POLL_S = 1.0
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

DeliveryFactory = Callable[[Settings], "Delivery | None"]


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
        self._background: set[asyncio.Task[None]] = set()  # reloads and notifier drains
        self._stat = _stat(config_path)
        self._fingerprint = _fingerprint(config_path)

    # -- triggers ------------------------------------------------------------------------

    def reload_soon(self, trigger: str) -> None:
        """Reload in the background (a signal handler cannot wait)."""
        self._in_background(self.reload(trigger), "ocsd-reload")

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
            fingerprint = await asyncio.to_thread(_fingerprint, self.config_path)
            if fingerprint is not None and fingerprint != self._fingerprint:
                await self.reload("file changed")

    async def reload(self, trigger: str) -> bool:
        """Re-read the configuration and apply the differences; keep the old one on error."""
        async with self._lock:
            if not self.config_path:
                log.warning("reload skipped: ocsd runs on the embedded example, no file to re-read")
                return False
            self._stat = _stat(self.config_path)
            self._fingerprint = await asyncio.to_thread(_fingerprint, self.config_path)
            try:
                new = await asyncio.to_thread(load_settings, self.config_path)
                changed = await self._apply(new)
            except (ConfigError, DeliveryError) as exc:
                self._state.reload_results["refused"] += 1
                log.error(
                    "configuration refused; still running on the previous one",
                    trigger=trigger,
                    error=str(exc),
                )
                return False
            self._state.reload_results["applied"] += 1
            log.info("configuration reloaded", trigger=trigger, changed=changed or ["nothing"])
            return True

    # -- applying ------------------------------------------------------------------------

    async def _apply(self, new: Settings) -> list[str]:
        old, now = self.settings, self._clock()
        changed = delivery_changes(old, new)
        if changed:
            await self._replace_delivery(new)  # DeliveryError: refused, nothing changed
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
        changed += self._apply_groups(new, now)
        self.settings = new
        return changed

    async def _replace_delivery(self, new: Settings) -> None:
        """A new notifier for the new delivery options; the old one drains meanwhile.

        Built in a thread: loading the system's trusted CAs for a ``ca-file`` takes ~50 ms
        and opening the outbox touches the disk, neither may stall the ticks.
        """
        candidate = await asyncio.to_thread(self._build_delivery, new)
        previous = self._feed.delivery
        drain: asyncio.Task[None] | None = None
        if previous is not None:  # let its queued and in-flight POSTs finish
            drain = self._in_background(previous.notifier.close(), "ocsd-notifier-drain")
            if previous.reliable is not None and (candidate is None or candidate.reliable is None):
                log.warning(
                    "delivery-mode is no longer reliable: what waits in the outbox is "
                    "delivered when it is reliable again",
                    outbox=previous.reliable.outbox.path,
                )
        if candidate is not None:
            # a reliable notifier starts sending after the old pool is done, so a group's
            # notifications still in flight there are not overtaken
            await candidate.notifier.start(after=drain)
        self._feed.delivery = candidate

    def _apply_groups(self, new: Settings, now: float) -> list[str]:
        changed: list[str] = []
        engine, feed = self._feed.engine, self._feed
        current = engine.definitions
        wanted = group_definitions(new)
        if current.keys() != wanted.keys():
            feed.groups_changed()
        for dbid in current.keys() - wanted.keys():
            name = current[dbid].identity.name
            feed.notify(engine.remove(dbid, now))
            self.scheduler.remove_group(dbid)
            feed.forget(dbid)
            changed.append(f"group {name} removed")
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
        task.add_done_callback(self._background.discard)
        return task

    async def stop(self) -> None:
        """Wait for the reloads and drains under way (at shutdown)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


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
