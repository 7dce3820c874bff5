"""Durable storage of the reliable delivery mode: the outbox and the dead-letter file.

**Outbox** (SQLite, WAL mode, ``synchronous=NORMAL``): one row per state notification
not yet delivered. A row is written before the notification's first POST and deleted
after the receiver accepted it, so a restart or a crash during a receiver outage loses
none of them. Writes are buffered and committed in a transaction: the control service
flushes the buffer before it answers a request (a 200 means stored), the notifier
before every POST of a state notification (recorded before sent), and a loop callback
flushes deletes and attempt counts right after they happen. What cannot be written (a
full disk) stays buffered and is retried; the backlog says so once and holds what is
not stored. The calls are small and synchronous on the event loop (measured with
bench/delivery_modes.py: ~20 µs for a lone row, ~12-16 µs a row in a batch); nothing of
this runs in the ``ocs`` delivery mode.

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
import resource
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ocsd.delivery.errors import OutboxError
from ocsd.logs import get_logger

if TYPE_CHECKING:
    from ocsd.delivery.notifier import Notification

log = get_logger("ocsd.delivery")

__all__ = [
    "DeadLetters",
    "Outbox",
    "OutboxError",
    "Stored",
    "dead_letter_record",
    "first_dead_letters",
    "next_seq",
    "read_dead_letters",
]

#: Seconds between two attempts to commit new rows after a failure (deletes: every flush).
RETRY_WRITE_S = 0.5
#: Seconds between two measurements of the room left on the outbox's filesystem.
FIT_EVERY_S = 1.0
#: Bytes kept free on the outbox's filesystem beyond the write-ahead log's room.
SPARE_BYTES = 64 * 1024
#: Pages of write-ahead log before a checkpoint: SQLite's default, fewer on a small disk.
WAL_PAGES_MAX, WAL_PAGES_MIN = 1000, 16
#: The largest max_page_count set (SQLite's limit before 3.45).
MAX_PAGES = 1_073_741_823
#: Bytes a row takes beyond its body, roughly (its id, names, numbers, b-tree cells).
ROW_OVERHEAD = 200

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
    try:
        fd = os.open(real + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise OutboxError(
            f"outbox {path}: cannot create its lock file {real}.lock: {exc.strerror or exc}"
        ) from None
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
    """The SQLite outbox of one notifier. Every method is synchronous and short.

    Writes are buffered and committed by :meth:`flush`; what cannot be written (a full
    disk, a read-only file) stays buffered and is tried again, never dropped: inserts
    no sooner than :data:`RETRY_WRITE_S` after a failure, acknowledgements (deletes and
    attempt counts) at every flush, before inserts. ``stored_up_to`` says which rows
    are committed (every row with a lower ``seq`` that is not buffered), so a
    notification is never sent before it is stored.

    So that a full filesystem never blocks the deletes that would free it, the database
    may grow only to what the filesystem has free minus the room of the write-ahead log
    and :data:`SPARE_BYTES` (SQLite's ``max_page_count``, measured at most every
    :data:`FIT_EVERY_S`): new rows fail first, and deletes and checkpoints still have
    room. On a small filesystem the log is checkpointed sooner (``wal_autocheckpoint``).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        directory = Path(path).resolve().parent
        if not directory.is_dir():
            raise OutboxError(f"outbox {path}: directory {directory} does not exist")
        if not os.access(directory, os.W_OK):
            raise OutboxError(
                f"outbox {path}: directory {directory} is not writable "
                "(a read-only filesystem or its permissions)"
            )
        self._directory = str(directory)
        self._real = _lock(path)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=2000")
            self._db.execute(SCHEMA)
            self._page = int(self._db.execute("PRAGMA page_size").fetchone()[0])
            self._wal_pages = wal_pages(_free_bytes(self._directory), self._page)
            self._db.execute(f"PRAGMA wal_autocheckpoint={self._wal_pages}")
            row = self._db.execute("SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM outbox").fetchone()
        except (sqlite3.Error, OSError) as exc:
            _unlock(self._real)
            raise OutboxError(f"outbox {path}: cannot open it as SQLite: {exc}") from None
        self.count: int = row[0]  # owed: stored or still buffered, not yet deleted
        self.stored_up_to: int = row[1]  # rows up to this seq are committed (unless buffered)
        next_seq(row[1])  # new rows sort after every stored one
        self._inserts: list[tuple[Any, ...]] = []  # in seq order
        self._updates: list[tuple[int, int]] = []
        self._deletes: list[tuple[int]] = []
        self.write_errors = 0
        self.last_error: str | None = None
        self._inserts_failing = False
        self._acks_failing = False
        self._retry_at = 0.0
        self._fit_at = 0.0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def dirty(self) -> bool:
        return bool(self._inserts or self._updates or self._deletes)

    @property
    def writable(self) -> bool:
        """The last attempt to commit each kind of write succeeded."""
        return not (self._inserts_failing or self._acks_failing)

    @property
    def unstored(self) -> int:
        """Rows added but not committed yet (lost if the process dies now)."""
        return len(self._inserts)

    @property
    def acks_pending(self) -> bool:
        """Deletes or attempt counts not committed yet."""
        return bool(self._updates or self._deletes)

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
        """Commit what is buffered: acknowledgements first, then new rows in production
        order; True when nothing is left. A failure is kept in ``last_error`` and
        ``write_errors``; what failed stays buffered."""
        if self._closed or not self.dirty:
            return not self.dirty
        now = time.monotonic()
        if now >= self._fit_at:
            self._fit_to_disk(now)
        if self._updates or self._deletes:
            self._acks_failing = not self._commit_acks()
        if self._inserts and (not self._inserts_failing or now >= self._retry_at):
            self._inserts_failing = not self._commit_inserts()
            if self._inserts_failing:
                self._retry_at = now + RETRY_WRITE_S
        return not self.dirty

    def _commit_acks(self) -> bool:
        """The buffered acknowledgements, in transactions that each touch at most half
        the log's room of pages (a row changed or deleted touches about one page)."""
        step = max(self._wal_pages // 2, 1)
        while self._updates or self._deletes:
            updates, deletes = self._updates[:step], self._deletes[:step]
            if not self._transaction(
                ("UPDATE outbox SET attempts = ? WHERE seq = ?", updates),
                ("DELETE FROM outbox WHERE seq = ?", deletes),
            ):
                return False
            del self._updates[: len(updates)], self._deletes[: len(deletes)]
        return True

    def _commit_inserts(self) -> bool:
        """The buffered rows, oldest first, in transactions of at most half the log's room."""
        room = self._wal_pages * self._page // 2
        while self._inserts:
            size, end = 0, 0
            while end < len(self._inserts) and (end == 0 or size < room):
                size += len(self._inserts[end][4]) + ROW_OVERHEAD
                end += 1
            chunk = self._inserts[:end]
            if not self._transaction(
                ("INSERT OR REPLACE INTO outbox VALUES (?,?,?,?,?,?,?)", chunk)
            ):
                return False
            del self._inserts[:end]
            self.stored_up_to = chunk[-1][0]
        return True

    def _transaction(self, *steps: tuple[str, Sequence[tuple[Any, ...]]]) -> bool:
        """One transaction of ``executemany`` steps; False (kept in ``last_error``) on error."""
        try:
            self._db.execute("BEGIN")
            for statement, rows in steps:
                if rows:
                    self._db.executemany(statement, rows)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            self.write_errors += 1
            self.last_error = str(exc)
            self._fit_at = 0.0  # measure the room again before the next attempt
            return False
        return True

    def _fit_to_disk(self, now: float) -> None:
        """Let the database grow only as far as leaves room for the write-ahead log and
        :data:`SPARE_BYTES` on its filesystem (see the class doc)."""
        self._fit_at = now + FIT_EVERY_S
        try:
            database = os.stat(self.path).st_size
            try:
                log_size = os.stat(self.path + "-wal").st_size
            except FileNotFoundError:
                log_size = 0
            log_room = max(2 * self._wal_pages * self._page - log_size, 0)
            room = _free_bytes(self._directory) + database - log_room - SPARE_BYTES
            limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
            if limit != resource.RLIM_INFINITY:  # each file on its own may grow to it
                room = min(room, limit - SPARE_BYTES)
            pages = min(max(room // self._page, 1), MAX_PAGES)
            self._db.execute(f"PRAGMA max_page_count={pages}")  # never below the current size
        except (OSError, sqlite3.Error):
            pass  # measured again at the next flush; the writes themselves will say

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
        if rows and (not self._inserts or self._inserts[0][0] > rows[-1][0]):
            # committed (by the notifier before a reload, perhaps): they may be sent
            self.stored_up_to = max(self.stored_up_to, rows[-1][0])
        return [Stored(r[0], r[1], r[2], r[3], bytes(r[4]), r[5], r[6]) for r in rows]

    def close(self) -> int:
        """Commit what can be; how many rows could not be (lost)."""
        if self._closed:
            return 0
        self._retry_at = 0.0
        self.flush()
        lost = self.unstored
        self._closed = True
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        _unlock(self._real)
        return lost


def wal_pages(free_bytes: int, page_size: int) -> int:
    """Pages of write-ahead log between checkpoints: SQLite's 1000, fewer when the
    filesystem is small, so the log's room is at most an eighth of what is free."""
    return min(max(free_bytes // 16 // page_size, WAL_PAGES_MIN), WAL_PAGES_MAX)


def _free_bytes(directory: str) -> int:
    """Bytes this process may still write there: the filesystem's free space, at most
    the file size limit (``RLIMIT_FSIZE``) when one is set."""
    stats = os.statvfs(directory)
    free = stats.f_bavail * stats.f_frsize
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return free if limit == resource.RLIM_INFINITY else min(free, limit)


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
        self.error: str | None = None  # the last append failed (logged once per change)

    def append(self, record: dict[str, Any]) -> bool:
        """Append a dead letter; False when the file cannot be written (logged when that
        starts and when it ends, not at every dead letter): the caller keeps it."""
        line = orjson.dumps(record) + b"\n"
        if self._busy:  # a re-send rewrites the file: written right after it
            self._held.append(line)
            self.count += 1
            return True
        try:
            self._write([*self._held, line])
        except OutboxError as exc:
            self._failed(exc)
            return False
        self._held = []
        if self.error is not None:
            log.warning("dead-letter file writes again", dead_letter_file=self.path)
            self.error = None
        self.count += 1
        return True

    def _failed(self, exc: OutboxError) -> None:
        if self.error is None:
            log.error(
                "dead-letter write failed: what should go there stays in the outbox, its "
                "group waiting, and is tried again; logged again when it writes",
                error=str(exc),
            )
        self.error = str(exc)

    def _write(self, lines: list[bytes]) -> None:
        """Append whole lines or nothing: a write cut short (a full disk) is cut off
        again, so no half line is left to spoil the next one."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutboxError(f"dead-letter file {self.path}: {exc.strerror or exc}") from None
        try:
            end = os.lseek(fd, 0, os.SEEK_END)
            data = memoryview(b"".join(lines))
            while data:
                data = data[os.write(fd, data) :]
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, end)
            raise OutboxError(f"dead-letter file {self.path}: {exc.strerror or exc}") from None
        finally:
            os.close(fd)

    async def read(self, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """(number of dead letters, the first ``limit`` of them, oldest first)."""
        async with self._lock:
            return await asyncio.to_thread(first_dead_letters, self.path, limit)

    async def take(self, message_ids: Iterable[str] | None) -> list[dict[str, Any]]:
        """Remove and return the dead letters with these ids (all when None)."""
        wanted = None if message_ids is None else set(message_ids)
        async with self._lock:
            self._busy = True
            try:
                taken = await asyncio.to_thread(_take, self.path, wanted)
            finally:
                self._busy = False
                self._write_held()
        self.count -= len(taken)
        return taken

    def _write_held(self) -> None:
        """Append what came while a re-send rewrote the file; kept for the next append
        if it cannot be written now (never dropped)."""
        if not self._held:
            return
        try:
            self._write(self._held)
        except OutboxError as exc:
            self._failed(exc)  # written with the next dead letter
            return
        self._held = []


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
    return first_dead_letters(path, None)[1]


def first_dead_letters(path: str, limit: int | None) -> tuple[int, list[dict[str, Any]]]:
    """(how many readable dead letters ``path`` holds, the first ``limit`` of them): read
    a line at a time, so listing a few of a large file keeps only those in memory."""
    count, records = 0, list[dict[str, Any]]()
    try:
        file = open(path, "rb")  # noqa: SIM115 - closed below, a line at a time
    except FileNotFoundError:
        return 0, []
    with file:
        for line in file:
            with contextlib.suppress(orjson.JSONDecodeError):
                record = orjson.loads(line)
                if valid_dead_letter(record):
                    count += 1
                    if limit is None or len(records) < limit:
                        records.append(record)
    return count, records


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
    """Remove the wanted dead letters from ``path`` (all when None); them. The others are
    copied a line at a time to a new file that replaces it (atomically)."""
    taken: list[dict[str, Any]] = []
    partial = f"{path}.partial"
    try:
        with open(path, "rb") as file, open(partial, "wb") as kept:
            for line in file:
                if not line.strip():
                    continue
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    record = None  # never lose what cannot be read; leave it for a person
                if valid_dead_letter(record) and (wanted is None or record["id"] in wanted):
                    taken.append(record)
                else:
                    kept.write(line if line.endswith(b"\n") else line + b"\n")
            kept.flush()
            os.fsync(kept.fileno())
        if taken:
            os.replace(partial, path)
        else:
            os.remove(partial)
    except OSError as exc:  # the file as it was: nothing taken
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise OutboxError(
            f"dead-letter file {path}: cannot rewrite it: {exc.strerror or exc}"
        ) from None
    return taken
