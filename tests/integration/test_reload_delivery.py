"""A reload that replaces the delivery loses no state notification queued before it.

The receiver answers each POST after a while, so most of 40 control requests' state
notifications still wait in the notifier when a reload changes a delivery option. The
old notifier hands them over to the new one (which sends once the old one's in-flight
POST is done), so every one arrives, each group's in order, none is counted dropped,
and nothing says "shutting down".
"""

from __future__ import annotations

import time
from pathlib import Path

import structlog
from support.ini import GROUP_B, IDLE_A, make_sections, replace_ini
from support.inprocess import freeze_heap

import ocsd.service.reload as reload_module
from ocsd.config.settings import load_settings
from ocsd.service.daemon import Daemon

CYCLES = 10
REQUESTS = ("LoadCampaign", "StartDialing", "StopDialing", "ForceUnloadCampaign")
SLOW_S = 0.3  # each POST: 36 queued on one connection take ~11 s, more than the timeout


def _sections(uri: str, timeout: float, *, without: str | None = None) -> dict:
    sections = make_sections(uri, interval=0, timeout=timeout, pool_size=2, **IDLE_A)
    if without is not None:
        del sections[f"campaign-group:{without}"]
    return sections


async def _daemon_with_a_backlog(
    receivers: list, write_ini, control_for, monkeypatch, *, load_b: bool = False
) -> tuple[Daemon, Path, int]:
    """A daemon sending to ``receivers[0]`` (every receiver answering slowly) with the 40
    requests' state notifications, and 102's Load when ``load_b``, waiting in its
    notifier; the daemon, its file, how many state notifications it produced."""
    for receiver in receivers:
        receiver.slow_s = SLOW_S
        receiver.set_behaviour("slow")
    monkeypatch.setattr(reload_module, "CONFIG_POLL_S", 3600.0)  # this test's reload only
    path = write_ini(_sections(receivers[0].url, 5))
    freeze_heap()
    daemon = Daemon(load_settings(path), config_path=str(path))
    await daemon.startup()
    try:
        control = control_for(f"http://127.0.0.1:{daemon.control_port}")
        if load_b:
            await control.ok(102, "LoadCampaign")
        for _ in range(CYCLES):
            for req in REQUESTS:
                await control.ok(101, req)
        produced = daemon.feed.counters.sent["state"] + daemon.notifier.pending
        assert daemon.notifier.pending >= 20, "the receiver answered too fast: no backlog"
    except BaseException:
        await daemon.shutdown()
        raise
    return daemon, path, produced


async def _reload_with_a_backlog(
    first, second, write_ini, control_for, wait_until, monkeypatch, *, remove_b=False
) -> tuple[Daemon, list, list]:
    """Queue the 40 requests' notifications at ``first``, reload onto ``second`` with
    http-response-timeout 6, wait until every one arrived; the daemon, its logs and the
    state notifications received (by arrival). ``remove_b``: group 102 is loaded
    first, and the reload removes it."""
    receivers = [first] if first is second else [first, second]
    daemon, path, produced = await _daemon_with_a_backlog(
        receivers, write_ini, control_for, monkeypatch, load_b=remove_b
    )
    produced += int(remove_b)  # + 102's force-unload (29) by the reload
    counters = daemon.feed.counters
    try:
        replace_ini(path, _sections(second.url, 6, without=GROUP_B if remove_b else None))
        with structlog.testing.capture_logs() as logs:
            assert await daemon.reload("SIGHUP")

            def arrived() -> int:
                return sum(1 for x in receivers for r in x.received if not r.periodic)

            await wait_until(
                lambda: (
                    (arrived() >= produced and counters.sent["state"] >= produced)
                    or any(kind == "state" for kind, _ in counters.dropped)
                ),
                within=60,
                what=f"{produced} state notifications at the receiver",
            )
            await first.settle(2 * SLOW_S)
    finally:
        await daemon.shutdown()
    received = sorted(
        (r for x in receivers for r in x.received if not r.periodic), key=lambda r: r.at
    )
    assert len(received) == produced, received
    return daemon, logs, received


def _assert_in_order(received: list) -> None:
    """Every cycle arrived whole, in the order the requests made them."""
    actions = [r.action for r in received if r.dbid == "101"]
    assert len(actions) % CYCLES == 0, actions
    cycle = actions[: len(actions) // CYCLES]
    assert cycle[0] == 7 and 29 in cycle, cycle  # LoadCampaign ... ForceUnloadCampaign
    assert actions == cycle * CYCLES, actions


def _assert_nothing_dropped(daemon: Daemon, logs: list) -> None:
    dropped = {key: n for key, n in daemon.feed.counters.dropped.items() if key[0] == "state"}
    assert dropped == {}, dropped
    assert not any("abandoned" in e["event"] for e in logs), logs
    assert not any(e.get("reason") == "shutting down" for e in logs), logs
    assert daemon.state.reload_results["applied"] == 1


async def test_a_changed_timeout_delivers_every_queued_state_notification(
    make_fault_receiver, write_ini, control_for, wait_until, monkeypatch
) -> None:
    receiver = await make_fault_receiver()
    daemon, logs, received = await _reload_with_a_backlog(
        receiver, receiver, write_ini, control_for, wait_until, monkeypatch
    )
    _assert_in_order(received)
    _assert_nothing_dropped(daemon, logs)
    handed = [e for e in logs if e["event"].startswith("queued state notifications handed over")]
    assert len(handed) == 1 and handed[0]["count"] >= 20, handed


async def test_a_changed_uri_sends_the_queued_ones_to_the_new_uri_in_order(
    make_fault_receiver, write_ini, control_for, wait_until, monkeypatch
) -> None:
    old, new = await make_fault_receiver(), await make_fault_receiver()
    daemon, logs, received = await _reload_with_a_backlog(
        old, new, write_ini, control_for, wait_until, monkeypatch
    )
    _assert_in_order(received)
    _assert_nothing_dropped(daemon, logs)
    at_old = [r for r in old.received if not r.periodic]
    at_new = [r for r in new.received if not r.periodic]
    assert at_new, "nothing went to the new URI"
    # what the old pool had taken went there; the rest, after it, to the new URI
    assert max(r.at for r in at_old) < min(r.at for r in at_new)


async def test_a_removed_groups_queued_ones_go_to_the_old_uri(
    make_fault_receiver, write_ini, control_for, wait_until, monkeypatch
) -> None:
    old, new = await make_fault_receiver(), await make_fault_receiver()
    daemon, logs, received = await _reload_with_a_backlog(
        old, new, write_ini, control_for, wait_until, monkeypatch, remove_b=True
    )
    _assert_in_order(received)
    _assert_nothing_dropped(daemon, logs)
    assert [r.action for r in old.received if r.dbid == "102"] == [7, 29], old.received
    assert [r for r in new.received if r.dbid == "102"] == []
    assert [r for r in new.received if r.dbid == "101" and not r.periodic]


async def _backlog_then_sending_off(receiver, write_ini, control_for, monkeypatch):
    """A daemon whose 40 requests' notifications wait for ``receiver``, and a file that
    switches sending off; the daemon and how many were produced."""
    daemon, path, produced = await _daemon_with_a_backlog(
        [receiver], write_ini, control_for, monkeypatch
    )
    replace_ini(path, make_sections(None, interval=0, pool_size=2, **IDLE_A))
    return daemon, produced


async def test_sending_switched_off_the_old_pool_sends_everything_it_holds(
    make_fault_receiver, write_ini, control_for, wait_until, monkeypatch
) -> None:
    receiver = await make_fault_receiver()
    daemon, produced = await _backlog_then_sending_off(
        receiver, write_ini, control_for, monkeypatch
    )
    try:
        with structlog.testing.capture_logs() as logs:
            assert await daemon.reload("SIGHUP")
            assert daemon.notifier is None
            counters = daemon.feed.counters
            await wait_until(
                lambda: counters.sent["state"] >= produced or bool(counters.dropped),
                within=60,
                what=f"{produced} state notifications sent by the old pool",
            )
    finally:
        await daemon.shutdown()
    _assert_in_order([r for r in receiver.received if not r.periodic])
    _assert_nothing_dropped(daemon, logs)


async def test_a_stop_cuts_a_replaced_notifier_short_within_the_grace(
    make_fault_receiver, write_ini, control_for, monkeypatch
) -> None:
    receiver = await make_fault_receiver()
    daemon, produced = await _backlog_then_sending_off(
        receiver, write_ini, control_for, monkeypatch
    )
    with structlog.testing.capture_logs() as logs:
        try:
            assert await daemon.reload("SIGHUP")
        finally:
            started = time.monotonic()
            await daemon.shutdown()
            took = time.monotonic() - started
    counters = daemon.feed.counters
    left = counters.dropped[("state", "shutting down")]
    # the POST cut in flight is logged, not counted (as at any shutdown)
    assert left > 0 and produced - 1 <= counters.sent["state"] + left <= produced, counters
    assert took < 5 + 3, f"the shutdown took {took:.1f} s"  # http-response-timeout 5
    assert any(e["event"] == "notifications abandoned at shutdown" for e in logs), logs


async def test_from_ocs_to_reliable_the_queued_ones_go_through_the_outbox(
    make_fault_receiver, write_ini, control_for, wait_until, monkeypatch, tmp_path
) -> None:
    receiver = await make_fault_receiver()
    daemon, path, produced = await _daemon_with_a_backlog(
        [receiver], write_ini, control_for, monkeypatch
    )
    counters = daemon.feed.counters
    try:
        reliable = _sections(receiver.url, 5)
        reliable["ocsd"].update(
            {
                "delivery-mode": "reliable",
                "outbox-path": str(tmp_path / "outbox.sqlite3"),
                "dead-letter-path": str(tmp_path / "dead.jsonl"),
            }
        )
        replace_ini(path, reliable)
        with structlog.testing.capture_logs() as logs:
            assert await daemon.reload("SIGHUP")
            assert daemon.notifier.mode == "reliable"
            await wait_until(
                lambda: counters.sent["state"] >= produced or bool(counters.dropped),
                within=60,
                what=f"{produced} state notifications sent",
            )
    finally:
        await daemon.shutdown()
    received = [r for r in receiver.received if not r.periodic]
    assert len(received) == produced, received
    _assert_in_order(received)
    _assert_nothing_dropped(daemon, logs)
    assert sum(1 for r in received if "webhook-id" in r.headers) >= 20  # via the outbox
