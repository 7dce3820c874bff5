"""Delivery stays quiet and bounded under floods: drops are logged as a summary, not a
line each; listing a few dead letters of a large file does not read it whole; a dead
letter appended while a re-send rewrites the file is kept even when writing it fails."""

from __future__ import annotations

import contextlib
import json
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from support.disks import small_filesystem

import ocsd.delivery.ocs as ocs_module
from ocsd.delivery.notifier import DROP_LOG_EVERY_S, Notification, Notifier
from ocsd.delivery.ocs import OcsPolicy
from ocsd.delivery.outbox import DeadLetters, first_dead_letters, read_dead_letters
from ocsd.delivery.transport import Transport


async def test_a_flood_of_drops_is_one_log_line(monkeypatch, receiver) -> None:
    monkeypatch.setattr(ocs_module, "STATE_BACKLOG_PER_WORKER", 10)
    receiver.set_behaviour("hang")
    notifier = Notifier(Transport(receiver.url, 0.5, 1), OcsPolicy())
    await notifier.start()
    try:
        with structlog.testing.capture_logs() as logs:
            for n in range(2000):
                notifier.submit(Notification("state", f"G{n}", 1000 + n, b"{}"))
        dropped = notifier.counters.dropped[("state", "backlog full")]
        assert dropped >= 1980
        lines = [line for line in logs if line["event"] == "notification dropped"]
        assert len(lines) == 1, f"{len(lines)} lines for {dropped} drops"
        assert lines[0]["logged_at_most_every_s"] == DROP_LOG_EVERY_S
    finally:
        await notifier.close(0.2)


def write_dead_letters(path: Path, count: int) -> None:
    record = {"id": "", "kind": "state", "dbid": 101, "body": "x" * 1000, "created": 1.0}
    with open(path, "wb") as file:
        for n in range(count):
            record["id"] = f"msg_{n:032x}"
            file.write(json.dumps(record).encode() + b"\n")


def test_listing_a_few_dead_letters_keeps_only_those_in_memory(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    write_dead_letters(path, 30_000)  # ~31 MB
    tracemalloc.start()
    try:
        count, first = first_dead_letters(str(path), 10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 30_000 and [r["id"] for r in first] == [f"msg_{n:032x}" for n in range(10)]
    assert peak < 4 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB to list 10 dead letters"
    assert len(read_dead_letters(str(path))) == 30_000


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """``path`` cannot be appended to for the block: its filesystem full (a small tmpfs
    filled up, as root) or no write permission (anyone else)."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)
        return
    filler = path.parent / "filler"
    with open(filler, "wb", buffering=0) as file, contextlib.suppress(OSError):
        while True:
            file.write(b"\0" * 4096)
    try:
        yield
    finally:
        filler.unlink()


async def test_a_dead_letter_held_during_a_resend_is_kept_when_writing_fails(
    tmp_path: Path,
) -> None:
    with small_filesystem(tmp_path / "disk", "256k") as why:
        if why and os.geteuid() == 0:
            pytest.skip(f"root writes through permissions and no tmpfs: {why}")
        path = tmp_path / "disk" / "dead.jsonl"
        write_dead_letters(path, 3)
        letters = DeadLetters(str(path))
        letters._busy = True  # as while a re-send rewrites the file
        big = "y" * 16384  # more than the free end of the file's last page
        assert letters.append({"id": "msg_new", "kind": "state", "dbid": 1, "body": big})
        with unwritable(path):
            letters._busy = False
            letters._write_held()
            assert letters.error is not None and letters._held, "the held line was dropped"
            assert not letters.append(
                {"id": "msg_refused", "kind": "state", "dbid": 1, "body": "{}"}
            )
        assert letters.append({"id": "msg_next", "kind": "state", "dbid": 1, "body": "{}"})
        ids = [r["id"] for r in read_dead_letters(str(path))]
        assert ids[3:] == ["msg_new", "msg_next"], ids
        assert letters.error is None
