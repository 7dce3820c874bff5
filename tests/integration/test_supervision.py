"""Nothing dies in silence: a bug while making or sending one notification, or a task
that dies, is logged with its traceback, counted in /metrics, and the daemon goes on
(or says it is not ready while it restarts the task)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import structlog

import ocsd.delivery.transport as transport_module
import ocsd.service.reload as reload_module
from ocsd.config.settings import load_settings
from ocsd.logs import trace_lines
from ocsd.service.daemon import Daemon


def counted(metrics: str, name: str, **labels: str) -> float:
    """The value of one sample of ``/metrics`` text (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    pattern = rf"^{name}(?:_total)?\{{{re.escape(wanted)}\}} (\S+)$"
    match = re.search(pattern, metrics, re.M)
    return float(match[1]) if match else 0.0


async def test_a_body_that_cannot_be_made_is_logged_counted_and_the_next_one_goes(
    start_daemon, receiver, ini_sections
):
    ocsd = await start_daemon(ini_sections(receiver.url, interval=1))
    feed = ocsd.daemon.feed
    make_body = feed.periodic_body
    failures = []

    def fails_once(dbid: int) -> bytes | None:
        if dbid == 102 and not failures:
            failures.append(dbid)
            raise RuntimeError("a bug in the body source")
        return make_body(dbid)

    ocsd.daemon.notifier._source = fails_once  # the body source the notifier asks
    with structlog.testing.capture_logs() as logs:
        await ocsd.control.ok(102, "LoadCampaign")
        periodic = await receiver.wait_for(2, receiver.periodic_of(102), within=5)

    assert failures == [102], "the source was not asked"
    assert all(r.json["GSW_CAMPAIGN_GROUP_DBID"] == "102" for r in periodic)
    [error] = [e for e in logs if e.get("event", "").startswith("periodic body could not be made")]
    assert error["log_level"] == "error" and error.get("exc_info"), error
    status, metrics = await ocsd.control.request("GET", "/metrics")
    assert status == 200
    assert (
        counted(metrics, "ocsd_notifications_failed", kind="periodic", reason="internal error")
        == 1.0
    )


async def test_a_post_that_fails_inside_ocsd_is_counted_and_the_worker_goes_on(
    start_daemon, receiver, ini_sections, monkeypatch
):
    ocsd = await start_daemon(ini_sections(receiver.url, pool_size=1))
    calls = []

    class BreaksOnce:
        """The trace-line writer, with a bug on the first POST's way to the wire."""

        def write(self, *args: Any, **kwargs: Any) -> None:
            calls.append(args)
            if len(calls) == 1:
                raise KeyError("a bug on the way to the wire")
            trace_lines.write(*args, **kwargs)

    monkeypatch.setattr(transport_module, "trace_lines", BreaksOnce())
    with structlog.testing.capture_logs() as logs:
        await ocsd.control.ok(101, "LoadCampaign")  # its POST hits the bug
        await ocsd.control.ok(102, "LoadCampaign")  # the same (only) worker sends this one
        [received] = await receiver.wait_for(1, receiver.state_of(102), within=5)

    assert received.action == 7
    assert receiver.count(receiver.state_of(101)) == 0
    [error] = [e for e in logs if "internal error" in e.get("event", "")]
    assert error.get("exc_info") and error["campaign_group"] == "Renewals@Retention Team"
    assert ocsd.daemon.notifier.counters.failed[("state", "internal error")] == 1


async def test_a_task_that_dies_turns_readyz_503_until_it_is_restarted(
    receiver, ini_sections, write_ini, control_for, wait_until, monkeypatch
):
    """The configuration watcher dies (its look at the file raises) and is restarted."""
    path = write_ini(ini_sections(receiver.url))
    daemon = Daemon(load_settings(path), str(path))
    monkeypatch.setattr(daemon.supervisor, "_delays", (0.3,))
    broken = False
    real_stat = reload_module._stat

    def stat(path: str | None) -> tuple[int, int, int] | None:
        if broken:
            raise OSError("the disk went away")
        return real_stat(path)

    monkeypatch.setattr(reload_module, "_stat", stat)
    await daemon.startup()
    try:
        control = control_for(f"http://127.0.0.1:{daemon.control_port}")
        supervisor = daemon.supervisor
        assert (await control.request("GET", "/readyz"))[0] == 200
        with structlog.testing.capture_logs() as logs:
            broken = True
            await wait_until(lambda: not supervisor.healthy, within=5, what="the watcher dying")
            status, readiness = await control.request("GET", "/readyz")
            assert status == 503
            assert readiness["ready"] is False
            assert readiness["tasks_down"] == ["ocsd-config-watch"]
            broken = False
            await wait_until(lambda: supervisor.healthy, within=5, what="the watcher restarted")
        assert (await control.request("GET", "/readyz"))[0] == 200
        died = [e for e in logs if e["event"] == "task died"]
        assert died and died[0]["task"] == "ocsd-config-watch" and died[0].get("exc_info")
        assert any(e["event"] == "task restarted" for e in logs)
        metrics = (await control.request("GET", "/metrics"))[1]
        assert counted(metrics, "ocsd_task_restarts", task="ocsd-config-watch") >= 1.0
    finally:
        await daemon.shutdown()


async def test_a_task_that_keeps_dying_stops_the_daemon_with_exit_code_3(
    receiver, ini_sections, write_ini, monkeypatch
):
    path = write_ini(ini_sections(receiver.url))
    daemon = Daemon(load_settings(path), str(path))
    monkeypatch.setattr(daemon.supervisor, "_delays", (0.05,))
    monkeypatch.setattr(daemon.supervisor, "_max_restarts", 2)

    def stat(path: str | None) -> tuple[int, int, int] | None:
        raise OSError("the disk went away for good")

    monkeypatch.setattr(reload_module, "_stat", stat)
    monkeypatch.setattr(reload_module, "CONFIG_POLL_S", 0.05)
    with structlog.testing.capture_logs() as logs:
        await asyncio.wait_for(daemon.serve(), 10)  # returns: it stopped itself

    assert daemon.exit_code == 3
    assert any(e["event"] == "task keeps dying; stopping ocsd" for e in logs)
    assert any(e["event"] == "ocsd stopped" for e in logs)
