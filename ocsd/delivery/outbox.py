"""Durable storage of the reliable delivery mode: the outbox and the dead-letter file.

**Outbox** (SQLite, WAL mode, ``synchronous=NORMAL``): one row per state notification
not yet delivered. A row is written before the notification's first POST and deleted
after the receiver accepted it, so a restart or a crash during a receiver outage loses
none of them. Writes are buffered and committed in one transaction: the notifier
flushes the buffer before every POST of a state notification (recorded before sent),
and a loop callback flushes deletes and attempt counts right after they happen. The
calls are small and synchronous on the event loop (measured with bench/delivery_modes.py:
~20 µs for a lone row, ~12-16 µs a row in a batch);
nothing of this runs in the ``ocs`` delivery mode.

WAL with ``synchronous=NORMAL`` survives a crash of the process (a commit is in the
operating system's cache once ``COMMIT`` returns); a power failure may lose the last
commits before a checkpoint.

**Dead letters** (JSON lines): one line per state notification that exhausted its
attempts or was refused for good (a 4xx other than 408/429). ``take`` removes lines
(for a re-send through the control API) by rewriting the file atomically.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ocsd.delivery.errors import OutboxError

if TYPE_CHECKING:
    from ocsd.delivery.notifier import Notification

__all__ = [
    "DeadLetters",
    "Outbox",
    "OutboxError",
    "Stored",
    "dead_letter_record",
    "next_seq",
    "read_dead_letters",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq        INTEGER PRIMARY KEY,   -- global order of production (ordering per group)
    message_id TEXT    NOT NULL,      -- webhook-id, the same on every attempt
    dbid       INTEGER NOT NULL,      -- GSW_CAMPAIGN_GROUP_DBID
    group_name TEXT    NOT NULL,
    body       BLOB    NOT NULL,      -- the exact bytes POSTed
    attempts   INTEGER NOT NULL,      -- attempts made so far
    created    REAL    NOT NULL       -- wall time it was produced
)
"""


@dataclass(slots=True)
class Stored:
    """A state notification as the outbox keeps it."""

    seq: int
    message_id: str
    dbid: int
    group_name: str
    body: bytes
    attempts: int
    created: float


# -- sequence numbers ------------------------------------------------------------------

_last_seq = 0


def next_seq(floor: int = 0) -> int:
    """A sequence number above every earlier one of this process and above ``floor``.

    Time-based (nanoseconds), so the rows of a later process sort after those of an
    earlier one; one counter per process, so two notifiers of one process (a reload)
    never collide.
    """
    global _last_seq
    _last_seq = max(_last_seq + 1, time.time_ns(), floor + 1)
    return _last_seq


# -- one process per outbox ----------------------------------------------------------------

_locks: dict[str, tuple[int, int]] = {}  # real path -> (fd, users)


def _lock(path: str) -> str:
    """Hold an exclusive lock on ``<path>.lock`` for this process (shared by its notifiers)."""
    real = os.path.realpath(path)
    if real in _locks:
        fd, users = _locks[real]
        _locks[real] = (fd, users + 1)
        return real
    fd = os.open(real + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise OutboxError(
            f"outbox {path} is in use by another ocsd process (one daemon per outbox-path)"
        ) from None
    _locks[real] = (fd, 1)
    return real


def _unlock(real: str) -> None:
    fd, users = _locks[real]
    if users > 1:
        _locks[real] = (fd, users - 1)
        return
    del _locks[real]
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


class Outbox:
    """The SQLite outbox of one notifier. Every method is synchronous and short."""

    def __init__(self, path: str) -> None:
        self.path = path
        directory = Path(path).resolve().parent
        if not directory.is_dir():
            raise OutboxError(f"outbox {path}: directory {directory} does not exist")
        self._real = _lock(path)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=2000")
            self._db.execute(SCHEMA)
            row = self._db.execute("SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM outbox").fetchone()
        except sqlite3.Error as exc:
            _unlock(self._real)
            raise OutboxError(f"outbox {path}: cannot open it as SQLite: {exc}") from None
        self.count: int = row[0]
        next_seq(row[1])  # new rows sort after every stored one
        self._inserts: list[tuple[Any, ...]] = []
        self._updates: list[tuple[int, int]] = []
        self._deletes: list[tuple[int]] = []
        self.errors = 0
        self.last_error: str | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def dirty(self) -> bool:
        return bool(self._inserts or self._updates or self._deletes)

    def add(self, row: Stored) -> None:
        self._inserts.append(
            (
                row.seq,
                row.message_id,
                row.dbid,
                row.group_name,
                row.body,
                row.attempts,
                row.created,
            )
        )
        self.count += 1

    def set_attempts(self, seq: int, attempts: int) -> None:
        self._updates.append((attempts, seq))

    def delete(self, seq: int) -> None:
        self._deletes.append((seq,))
        self.count -= 1

    def flush(self) -> bool:
        """Commit the buffered writes in one transaction; False (logged by the caller) on error."""
        if not self.dirty or self._closed:
            return True
        inserts, updates, deletes = self._inserts, self._updates, self._deletes
        self._inserts, self._updates, self._deletes = [], [], []
        try:
            self._db.execute("BEGIN")
            if inserts:
                self._db.executemany(
                    "INSERT OR REPLACE INTO outbox VALUES (?,?,?,?,?,?,?)", inserts
                )
            if updates:
                self._db.executemany("UPDATE outbox SET attempts = ? WHERE seq = ?", updates)
            if deletes:
                self._db.executemany("DELETE FROM outbox WHERE seq = ?", deletes)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            self.errors += 1
            self.last_error = str(exc)
            return False
        return True

    def load(self, after_seq: int, limit: int) -> list[Stored]:
        """Rows with ``seq > after_seq`` in production order, at most ``limit``."""
        self.flush()
        try:
            rows = self._db.execute(
                "SELECT seq, message_id, dbid, group_name, body, attempts, created FROM outbox "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        except sqlite3.Error as exc:
            raise OutboxError(f"outbox {self.path}: cannot read it: {exc}") from None
        return [Stored(r[0], r[1], r[2], r[3], bytes(r[4]), r[5], r[6]) for r in rows]

    def close(self) -> None:
        if self._closed:
            return
        self.flush()
        self._closed = True
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        _unlock(self._real)


# -- dead letters -------------------------------------------------------------------------


class DeadLetters:
    """The dead-letter file: JSON lines, appended by the notifier, taken by a re-send."""

    def __init__(self, path: str) -> None:
        self.path = path
        directory = Path(path).resolve().parent
        if not directory.is_dir():
            raise OutboxError(f"dead-letter file {path}: directory {directory} does not exist")
        try:
            with open(path, "ab"):
                pass
            with open(path, "rb") as file:
                self.count = sum(1 for line in file if line.strip())
        except OSError as exc:
            raise OutboxError(f"dead-letter file {path}: {exc.strerror or exc}") from None
        self._held: list[bytes] = []  # appended while a re-send rewrites the file
        self._lock = asyncio.Lock()
        self._busy = False

    def append(self, record: dict[str, Any]) -> None:
        line = orjson.dumps(record) + b"\n"
        self.count += 1
        if self._busy:
            self._held.append(line)
            return
        self._write([line])

    def _write(self, lines: list[bytes]) -> None:
        try:
            with open(self.path, "ab") as file:
                file.writelines(lines)
        except OSError as exc:
            raise OutboxError(f"dead-letter file {self.path}: {exc.strerror or exc}") from None

    async def read(self, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """(number of dead letters, the first ``limit`` of them, oldest first)."""
        async with self._lock:
            records = await asyncio.to_thread(read_dead_letters, self.path)
        return len(records), records[:limit]

    async def take(self, message_ids: Iterable[str] | None) -> list[dict[str, Any]]:
        """Remove and return the dead letters with these ids (all when None)."""
        wanted = None if message_ids is None else set(message_ids)
        async with self._lock:
            self._busy = True
            try:
                taken = await asyncio.to_thread(_take, self.path, wanted)
            finally:
                self._busy = False
                held, self._held = self._held, []
                if held:
                    self._write(held)
        self.count -= len(taken)
        return taken


def dead_letter_record(
    notification: Notification, reason: str, detail: str, safe_uri: str
) -> dict[str, Any]:
    """The dead-letter line of a state notification given up: enough to re-send it."""
    return {
        "id": notification.message_id,
        "kind": "state",
        "dbid": notification.group_dbid,
        "campaign_group": notification.group_name,
        "reason": reason,
        "detail": detail,
        "attempts": notification.attempts,
        "created": round(notification.created, 3),
        "dead_at": round(time.time(), 3),
        "uri": safe_uri,
        "body": notification.body.decode("utf-8", "replace"),
    }


def read_dead_letters(path: str) -> list[dict[str, Any]]:
    """Every readable dead letter of ``path`` (none if the file does not exist)."""
    try:
        with open(path, "rb") as file:
            lines = file.read().splitlines()
    except FileNotFoundError:
        return []
    records = []
    for line in lines:
        with contextlib.suppress(orjson.JSONDecodeError):
            record = orjson.loads(line)
            if valid_dead_letter(record):
                records.append(record)
    return records


def valid_dead_letter(record: Any) -> bool:
    """A dead letter this version can re-send: an id, a group DBID and a body."""
    return (
        isinstance(record, dict)
        and isinstance(record.get("id"), str)
        and isinstance(record.get("dbid"), int)
        and isinstance(record.get("body"), str)
        and isinstance(record.get("created", 0), int | float)
    )


def _take(path: str, wanted: set[str] | None) -> list[dict[str, Any]]:
    with open(path, "rb") as file:
        lines = file.read().splitlines()
    taken: list[dict[str, Any]] = []
    kept: list[bytes] = []
    for line in lines:
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            kept.append(line)  # never lose what cannot be read; leave it for a person
            continue
        if valid_dead_letter(record) and (wanted is None or record["id"] in wanted):
            taken.append(record)
        else:
            kept.append(line)
    if taken:
        partial = f"{path}.partial"
        with open(partial, "wb") as file:
            file.writelines(line + b"\n" for line in kept)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    return taken
