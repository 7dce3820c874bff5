"""What a reload must survive in the daemon's own process: a reload under way when the
daemon stops, and a defect in the reload itself.

The delivery is closed at shutdown; a reload that was still building its new notifier
then must not start it afterwards (its senders would outlive the daemon, its pool
never closed). The build is held until the shutdown has begun, so the race is certain.
A reload that raises what nobody expected is refused like a bad file: counted, one line
with the traceback, and the next reload applies.
"""

from __future__ import annotations

import asyncio
import threading

import structlog
from support.ini import make_sections, replace_ini
from support.inprocess import freeze_heap

import ocsd.service.reload as reload_module
from ocsd.config.settings import load_settings
from ocsd.service.daemon import Daemon


def _senders_running() -> list[str]:
    return [
        task.get_name()
        for task in asyncio.all_tasks()
        if task.get_name().startswith("ocsd-sender") and not task.done()
    ]


async def test_a_reload_under_way_at_shutdown_starts_no_notifier(
    receiver, make_receiver, write_ini, wait_until
) -> None:
    second = await make_receiver()
    path = write_ini(make_sections(receiver.url, interval=1))
    freeze_heap()
    daemon = Daemon(load_settings(path), config_path=str(path))
    building, release = threading.Event(), threading.Event()
    built = []
    real_build = daemon.reloader._build_delivery

    def held_build(settings):  # the real build, once the shutdown has begun
        building.set()
        release.wait(10)
        delivery = real_build(settings)
        built.append(delivery)
        return delivery

    daemon.reloader._build_delivery = held_build
    await daemon.startup()
    stopped = False
    try:
        assert _senders_running()
        replace_ini(path, make_sections(second.url, interval=1))
        daemon.reloader.reload_soon("SIGHUP")
        await wait_until(building.is_set, within=10, what="the reload building its notifier")
        shutdown = asyncio.create_task(daemon.shutdown())
        await wait_until(lambda: daemon.state.stopping, within=5, what="the shutdown")
        await asyncio.sleep(0.2)  # the shutdown goes as far as it can meanwhile
        release.set()
        await asyncio.wait_for(shutdown, 20)
        stopped = True
    finally:
        release.set()
        if not stopped:
            await daemon.shutdown()

    assert _senders_running() == [], "a notifier outlived the daemon"
    assert daemon.settings.campaigngroup_states_uri == receiver.url, "applied while stopping"
    assert daemon.state.reload_results["applied"] == 0
    assert second.received == []


async def test_a_defect_in_a_reload_is_refused_and_the_next_reload_applies(
    receiver, make_receiver, write_ini, control_for, monkeypatch
) -> None:
    second = await make_receiver()
    path = write_ini(make_sections(receiver.url, interval=1))
    freeze_heap()
    daemon = Daemon(load_settings(path), config_path=str(path))
    real = reload_module.group_definitions
    broken = True

    def definitions(settings):  # a defect, the first time only
        if broken:
            raise RuntimeError("a bug in the reload")
        return real(settings)

    monkeypatch.setattr(reload_module, "group_definitions", definitions)
    monkeypatch.setattr(reload_module, "CONFIG_POLL_S", 3600.0)  # this test's reloads only
    await daemon.startup()
    try:
        control = control_for(f"http://127.0.0.1:{daemon.control_port}")
        await control.ok(101, "LoadCampaign")
        replace_ini(path, make_sections(second.url, interval=1))
        with structlog.testing.capture_logs() as logs:
            assert not await daemon.reload("SIGHUP")
            ready = (await control.request("GET", "/readyz"))[0]
            broken = False
            assert await daemon.reload("SIGHUP")
        await second.wait_for(1, lambda r: r.periodic, within=5)
    finally:
        await daemon.shutdown()

    refused = [e for e in logs if e["event"].startswith("configuration refused")]
    assert len(refused) == 1, logs
    assert "a bug in the reload" in refused[0]["error"] and refused[0]["exc_info"]
    assert ready == 200
    assert daemon.state.reload_results == {"refused": 1, "applied": 1}
    assert daemon.settings.campaigngroup_states_uri == second.url
