"""The outbox on a real full filesystem (a 1 MB tmpfs) and in a read-only directory.

What it cannot write stays buffered (nothing is lost while the process lives, nothing
is counted as stored that is not), deletes of delivered rows still commit on the full
disk, the rows it frees take what waited, and it says when it writes again. A read-only
directory is one line at open.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

import pytest
from support.disks import read_only_directory, small_filesystem

from ocsd.delivery.outbox import RETRY_WRITE_S, Outbox, OutboxError, Stored, next_seq

BODY = b'{"GSW_USER_EVENT": "CampaignGroupState", "pad": "' + b"x" * 900 + b'"}'


def row(n: int) -> Stored:
    return Stored(next_seq(), f"msg_{n:032x}", 1000 + n % 7, f"G{n % 7}", BODY, 0, time.time())


def rows_in_file(path: Path) -> list[int]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return [seq for (seq,) in db.execute("SELECT seq FROM outbox ORDER BY seq")]


@pytest.fixture
def full_disk(tmp_path: Path):
    with small_filesystem(tmp_path / "disk", "1m") as why:
        if why:
            pytest.skip(f"needs a 1 MB tmpfs, which could not be mounted: {why}")
        yield tmp_path / "disk"


def fill(outbox: Outbox) -> list[Stored]:
    """Add rows until a commit fails (bounded); the rows added."""
    added: list[Stored] = []
    for n in range(5000):
        added.append(row(n))
        outbox.add(added[-1])
        if not outbox.flush():
            return added
    raise AssertionError("5000 rows of 1 KB fitted in a 1 MB filesystem")


def test_a_full_disk_keeps_what_it_cannot_store_and_still_deletes(full_disk: Path) -> None:
    path = full_disk / "outbox.sqlite3"
    outbox = Outbox(str(path))
    try:
        added = fill(outbox)
        # said, not pretended: the rows it could not commit are counted apart, kept
        assert not outbox.writable and "full" in (outbox.last_error or "")
        stored = rows_in_file(path)
        assert len(stored) + outbox.unstored == len(added) == outbox.count
        assert stored == [r.seq for r in added[: len(stored)]], "stored in production order"
        assert outbox.stored_up_to == stored[-1]
        # what was delivered is deleted, even though the disk is full
        for seq in stored[:200]:
            outbox.delete(seq)
        outbox.flush()
        assert not outbox.acks_pending, f"deletes failed on the full disk: {outbox.last_error}"
        assert rows_in_file(path)[:1] == stored[200:201]
        # the room they freed takes what waited, in order, once the retry is due
        time.sleep(RETRY_WRITE_S + 0.05)
        outbox.flush()
        assert outbox.stored_up_to > stored[-1], "nothing of what waited was stored"
        # and once everything is delivered, it writes again
        deadline = time.monotonic() + 30
        while outbox.unstored or not outbox.writable:
            assert time.monotonic() < deadline, f"still {outbox.unstored} unstored"
            for seq in rows_in_file(path):
                outbox.delete(seq)
            time.sleep(RETRY_WRITE_S + 0.05)
            outbox.flush()
        for seq in rows_in_file(path):
            outbox.delete(seq)
        assert outbox.flush() and outbox.writable
        assert outbox.count == 0 and rows_in_file(path) == []
    finally:
        outbox.close()


def test_deletes_commit_even_while_new_rows_cannot(full_disk: Path) -> None:
    """Acknowledgements go first and on their own: a full disk never holds them up."""
    path = full_disk / "outbox.sqlite3"
    outbox = Outbox(str(path))
    try:
        fill(outbox)
        stored = rows_in_file(path)
        for cycle in range(20):  # deliver one, produce one, over and over
            outbox.delete(stored[cycle])
            outbox.add(row(10_000 + cycle))
            outbox.flush()
            assert not outbox.acks_pending, f"cycle {cycle}: {outbox.last_error}"
        assert rows_in_file(path)[0] == stored[20]
    finally:
        outbox.close()


def test_a_read_only_directory_is_one_line_at_open(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    with read_only_directory(directory) as how:
        if how == "chmod 555" and os.geteuid() == 0:
            pytest.skip("root ignores permissions and no read-only tmpfs could be mounted")
        with pytest.raises(OutboxError) as caught:
            Outbox(str(directory / "outbox.sqlite3"))
    message = str(caught.value)
    assert "\n" not in message and str(directory) in message and "not writable" in message


def fill_the_rest(directory: Path) -> Path:
    """Another process's file takes every byte left on the filesystem."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as file, contextlib.suppress(OSError):
        while True:
            file.write(b"\0" * 4096)
    return filler


async def test_a_disk_another_process_fills(
    full_disk: Path, tmp_path: Path, start_daemon, receiver, ini_sections, wait_until
) -> None:
    """Applied but not stored: a 503 that says so; then refused; then, with room again,
    stored and sent."""
    h = await start_daemon(
        ini_sections(
            receiver.url,
            ocsd={
                "delivery-mode": "reliable",
                "retry-schedule": "0.2",
                "outbox-path": full_disk / "outbox.sqlite3",
                "dead-letter-path": tmp_path / "dead.jsonl",
            },
        )
    )
    assert (await h.control.request("GET", "/readyz"))[0] == 200
    filler = fill_the_rest(full_disk)
    status, answer = await h.control.act(101, "LoadCampaign")
    assert status == 503, answer
    assert "applied" in answer["error"] and answer["campaigngroup"]["status"]["name"] == "Active"
    status, answer = await h.control.act(102, "LoadCampaign")
    assert status == 503 and "nothing changed" in answer["error"], answer
    assert (await h.control.group(102))["status"]["name"] == "NotLoaded"
    status, ready = await h.control.request("GET", "/readyz")
    assert status == 503 and "outbox cannot write" in ready["storage_problem"]
    await receiver.settle(0.5)
    assert receiver.count(receiver.state_of(101)) == 0, "sent before it was stored"

    filler.unlink()  # room again: what waited is stored, then sent
    await wait_until(lambda: receiver.count(receiver.state_of(101)) == 1, within=10, what="sent")
    status, ready = await h.control.request("GET", "/readyz")
    assert status == 200, ready
    await h.control.ok(102, "LoadCampaign")
