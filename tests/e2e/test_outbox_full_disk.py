"""``ocsd run`` in ``reliable`` mode with its outbox on a real 1 MB filesystem.

A 1 MB tmpfs (root), or else a 1 MB file size limit on the daemon (``RLIMIT_FSIZE``).
``--start-all`` of 503 groups produces 1,006 state notifications (~0.9 MB of outbox
rows) while the receiver hangs, so the outbox fills up. Then:

1. the daemon says so once (not per notification or retry), ``/readyz`` is 503 naming
   the outbox, ``/metrics`` shows what is stored and what only waits in memory, and a
   control request that would change a group is refused (503) and changes nothing;
   the receiver comes back: everything is delivered once, in order per group, what
   waited in memory included, and the daemon says once that the outbox writes again;
2. filled again and killed (SIGKILL): the rows it had stored are all there, it lost
   exactly what ``ocsd_outbox_unstored`` said, and a restart delivers the stored ones
   without sending again anything the receiver had accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sqlite3
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from support.control import Control
from support.disks import file_size_limit, read_only_directory, small_filesystem
from support.ini import extra_groups, make_sections
from support.net import LOCALHOST, RECEIVER_PATH
from support.processes import OcsdProcess, start_ocsd

pytestmark = pytest.mark.e2e

GROUPS = 500  # and the 3 of the base configuration: 503 groups, 1,006 notifications
PRODUCED = 2 * (GROUPS + 3)
MB = 1024 * 1024


def webhook_id(received: Any) -> str:
    return next(v for k, v in received.headers.items() if k.lower() == "webhook-id")


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match, f"{name} not in /metrics"
    return float(match[1])


def stored_ids(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return [row[0] for row in db.execute("SELECT message_id FROM outbox ORDER BY seq")]


def events(ocsd: OcsdProcess, prefix: str) -> list[dict[str, Any]]:
    return [
        line
        for line in ocsd.stdout_lines
        if isinstance(line, dict) and str(line.get("event", "")).startswith(prefix)
    ]


@pytest.fixture
def small_disk(tmp_path: Path):
    """(directory of the outbox, preexec_fn for the daemon): a 1 MB tmpfs, else a 1 MB
    file size limit."""
    with small_filesystem(tmp_path / "disk", "1m") as why:
        if not why:
            yield tmp_path / "disk", None
            return
        if not hasattr(__import__("resource"), "RLIMIT_FSIZE"):
            pytest.skip(f"no 1 MB tmpfs ({why}) and no RLIMIT_FSIZE here")
        yield tmp_path / "disk", file_size_limit(MB)


async def filled(ocsd: OcsdProcess, control: Control) -> str:
    """Wait until the start-all is done and the outbox has been retried a few times;
    /metrics then."""
    await ocsd.wait_for_line(
        lambda line: (
            isinstance(line, dict) and line.get("event") == "all groups loaded and started"
        ),
        within=30,
    )
    await asyncio.sleep(2.0)  # four retries of the outbox and many of the receiver
    status, text = await control.request("GET", "/metrics")
    assert status == 200
    return str(text)


async def test_a_full_disk_is_said_refused_held_and_recovered(
    tmp_path, small_disk, write_ini, make_fault_receiver, control_for
):
    disk, preexec = small_disk
    receiver = await make_fault_receiver()
    receiver.set_behaviour("hang")  # nothing accepted: the outbox fills
    outbox = disk / "outbox.sqlite3"
    sections = make_sections(
        f"http://{LOCALHOST}:{receiver.port}{RECEIVER_PATH}",
        timeout=1,
        pool_size=2,
        ocsd={
            "delivery-mode": "reliable",
            "retry-schedule": "0.5",
            "max-attempts": 1000,
            "outbox-path": outbox,
            "dead-letter-path": tmp_path / "dead.jsonl",
        },
        **extra_groups(GROUPS, 1001),
    )
    config = write_ini(sections)

    # -- 1. full: said once, not ready, counted apart, refused; then recovered ----------
    async with start_ocsd(config, cwd=tmp_path, preexec_fn=preexec, args=["--start-all"]) as ocsd:
        control = control_for(ocsd.control_url)
        metrics = await filled(ocsd, control)
        pending = metric(metrics, "ocsd_outbox_pending")
        assert pending == len(stored_ids(outbox)), (
            f"ocsd_outbox_pending says {pending:.0f}, the outbox holds {len(stored_ids(outbox))}"
        )
        unstored = metric(metrics, "ocsd_outbox_unstored")
        assert metric(metrics, "ocsd_outbox_write_failing") == 1
        assert unstored > 0, "the outbox did not fill: make the run bigger"
        assert pending + unstored == PRODUCED
        assert len(events(ocsd, "outbox cannot write")) == 1, "said more than once"
        status, ready = await control.request("GET", "/readyz")
        assert status == 503 and "outbox cannot write" in ready["storage_problem"], ready
        status, health = await control.request("GET", "/healthz")
        assert status == 200 and health["outbox_writable"] is False
        status, refused = await control.act(1001, "StopDialing")
        assert status == 503 and "nothing changed" in refused["error"], refused
        assert (await control.group(1001))["status"]["name"] == "Running"

        receiver.set_behaviour("ok")  # the receiver is back: delivering frees the outbox
        deadline = time.monotonic() + 90
        while len({webhook_id(r) for r in receiver.accepted}) < PRODUCED:
            assert time.monotonic() < deadline, (
                f"{len(receiver.accepted)} of {PRODUCED} delivered; "
                f"{[line for line in ocsd.stdout_lines if isinstance(line, dict) and line.get('level') == 'error'][-3:]}"
            )
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # nothing more may come
        status, ready = await control.request("GET", "/readyz")
        assert status == 200, ready
        status, metrics = await control.request("GET", "/metrics")
        assert metric(metrics, "ocsd_outbox_write_failing") == 0
        assert metric(metrics, "ocsd_outbox_unstored") == 0
        assert metric(metrics, "ocsd_outbox_pending") == 0
        assert len(events(ocsd, "outbox writes again")) == 1
        assert len(events(ocsd, "outbox cannot write")) == 1
        errors = metric(metrics, "ocsd_outbox_write_errors_total")
    first_run = Counter(webhook_id(r) for r in receiver.accepted)
    assert len(first_run) == PRODUCED and max(first_run.values()) == 1, "a notification sent twice"
    order: dict[str, list[int]] = defaultdict(list)
    for r in receiver.accepted:
        order[str(r.dbid)].append(int(r.action))
    assert all(actions == [7, 9] for actions in order.values()), "out of order in a group"
    print(
        f"\nfull disk, held and recovered: {PRODUCED} produced, {pending:.0f} stored and "
        f"{unstored:.0f} held in memory when it filled, {errors:.0f} failed outbox "
        f"transactions, one error line; all {len(first_run)} delivered once, in order"
    )

    # -- 2. full again, killed: it lost what it said it held, re-sent nothing ---------------
    receiver.set_behaviour("hang")
    async with start_ocsd(config, cwd=tmp_path, preexec_fn=preexec, args=["--start-all"]) as ocsd:
        metrics = await filled(ocsd, control_for(ocsd.control_url))
        unstored = metric(metrics, "ocsd_outbox_unstored")
        pending = metric(metrics, "ocsd_outbox_pending")
        assert await ocsd.stop(signal.SIGKILL) == -signal.SIGKILL
    kept = stored_ids(outbox)
    assert len(kept) == pending, "the kill lost rows that were stored"
    receiver.set_behaviour("ok")
    accepted_before = len(receiver.accepted)
    async with start_ocsd(config, cwd=tmp_path, preexec_fn=preexec) as ocsd:
        deadline = time.monotonic() + 60
        while stored_ids(outbox):
            assert time.monotonic() < deadline, f"{len(stored_ids(outbox))} never delivered"
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
    second_run = Counter(webhook_id(r) for r in receiver.accepted[accepted_before:])
    redelivered = sum(second_run.values()) - len(set(second_run) - set(first_run))
    assert set(second_run) == set(kept), "the restart did not deliver what was stored"
    assert redelivered == 0, f"{redelivered} accepted notifications delivered again"
    lost = PRODUCED - len(kept)
    assert lost == unstored, f"lost {lost}, but ocsd_outbox_unstored said {unstored:.0f}"
    print(
        f"full disk, then SIGKILL: {PRODUCED} produced, {len(kept)} stored and delivered after "
        f"the restart, {lost} lost (ocsd_outbox_unstored said {unstored:.0f}), "
        f"{redelivered} delivered again; storage: {'tmpfs 1 MB' if preexec is None else 'RLIMIT_FSIZE 1 MB'}"
    )
    assert not any("Traceback" in str(line) for line in ocsd.stdout_lines + ocsd.stderr_lines)


async def test_a_read_only_outbox_directory_is_one_line_at_start(tmp_path, write_ini, run_ocsd):
    directory = tmp_path / "ro"
    with read_only_directory(directory) as how:
        if how == "chmod 555" and os.geteuid() == 0:
            pytest.skip("root ignores permissions and no read-only tmpfs could be mounted")
        sections = make_sections(
            f"http://{LOCALHOST}:9{RECEIVER_PATH}",
            ocsd={"delivery-mode": "reliable", "outbox-path": directory / "outbox.sqlite3"},
        )
        done = await run_ocsd("run", "--config", str(write_ini(sections)))
    assert done.returncode == 2, done
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    (line,) = [json.loads(text) for text in done.stdout.splitlines() if "cannot start" in text]
    assert str(directory) in line["error"] and "not writable" in line["error"], line
