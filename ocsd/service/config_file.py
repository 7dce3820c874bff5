"""Reading the configuration file for a reload only when it is whole.

An editor that saves in place truncates the file and then writes it; a slow writer
leaves it half-written for a while. A reload must not act on what it sees in between:
it waits until the file has stopped changing (:func:`settled`), refuses a file with
nothing in it (:func:`blank`), and reads it again if it changed while it was read.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from ocsd.config.ini import MAX_INI_BYTES
from ocsd.config.settings import ConfigError, Settings, load_settings

#: Seconds the file's size, modification time and inode must stay the same before a
#: reload reads it (an editor's in-place save takes milliseconds).
SETTLE_S = 0.5
#: A file last modified this many seconds ago is read at once (2 s: the coarsest
#: modification-time resolution of common file systems).
OLD_FILE_S = 2.0
#: Seconds between two looks while waiting for the file to settle.
SETTLE_STEP_S = 0.1
#: A file still changing after this many seconds is not read (the reload is refused).
SETTLE_GIVE_UP_S = 10.0

#: What changes when the file is edited or replaced: mtime (ns), size, inode.
FileStat = tuple[int, int, int]


@dataclass(frozen=True)
class Reading:
    """One read of the whole, settled file: its settings, or why there are none."""

    stat: FileStat | None
    fingerprint: str | None
    settings: Settings | None
    error: str | None = None


def file_stat(path: str | None) -> FileStat | None:
    """The file's mtime, size and inode; None when there is no file to look at."""
    if not path:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size, info.st_ino


def fingerprint(path: str | None) -> str | None:
    """A digest of the file, or None if it cannot be read right now."""
    if not path:
        return None
    try:
        with open(path, "rb") as file:
            return _digest(file)
    except OSError:
        return None


def _digest(file: BinaryIO) -> str:
    """SHA-256 of the first ``MAX_INI_BYTES + 1`` bytes, read 1 MiB at a time: a look
    of the watcher costs 1 MiB of memory, whatever the size of the file."""
    digest, left = hashlib.sha256(), MAX_INI_BYTES + 1
    while left > 0 and (chunk := file.read(min(2**20, left))):
        digest.update(chunk)
        left -= len(chunk)
    return digest.hexdigest()


def _read_capped(path: str) -> bytes:
    """At most one byte more than ocsd reads of a configuration: enough to tell that
    a file is too large (``load_settings`` refuses it, naming the limit), and never the
    whole of a runaway file or of ``/dev/zero``."""
    with open(path, "rb") as file:
        return file.read(MAX_INI_BYTES + 1)


def settled(stat: FileStat | None, unchanged_for: float, wall_now: float) -> bool:
    """Whether a file may be read: unchanged while ocsd watched it for SETTLE_S, or
    last modified long enough ago that no writer is at work."""
    if unchanged_for >= SETTLE_S:
        return True
    return stat is not None and wall_now - stat[0] / 1e9 >= OLD_FILE_S


def blank(data: bytes) -> bool:
    """Nothing but blank lines and comments: what a file truncated by an editor that
    saves in place looks like (a configuration always names sections). Over 1 MiB is
    not looked at (a copy of a runaway file each): ``load_settings`` says what it lacks."""
    if len(data) > 2**20:
        return False
    text = data.decode("utf-8", "replace").lstrip("\ufeff")
    return all(not line.strip() or line.lstrip()[0] in ";#" for line in text.splitlines())


async def read_settled(path: str, stopping: Callable[[], bool]) -> Reading | None:
    """The file once it has stopped changing, read whole (settings or the error that
    refuses it); None when ocsd starts stopping meanwhile."""
    deadline = time.monotonic() + SETTLE_GIVE_UP_S
    while True:
        stat = file_stat(path)
        since = time.monotonic()
        while not settled(stat, time.monotonic() - since, time.time()):
            if stopping():
                return None
            if time.monotonic() > deadline:
                return Reading(
                    stat,
                    None,
                    None,
                    f"{path}: still being written after {SETTLE_GIVE_UP_S:g} s; not read "
                    "(save it again, or send SIGHUP, once it is complete)",
                )
            await asyncio.sleep(SETTLE_STEP_S)
            now = file_stat(path)
            if now != stat:
                stat, since = now, time.monotonic()
        reading = await asyncio.to_thread(_read, path, stat)
        if reading is not None:
            return reading
        # it changed while it was read: wait for it to settle again


def _read(path: str, expected: FileStat | None) -> Reading | None:
    """Read and load the file; None if it no longer is the file that settled."""
    try:
        data: bytes | None = _read_capped(path)
    except OSError:
        data = None  # load_settings says why
    digest = hashlib.sha256(data).hexdigest() if data is not None else None
    empty = data is not None and blank(data)
    del data  # not held while load_settings reads the file again (64 MiB at most)
    settings, error = None, None
    if empty:
        error = (
            f"{path}: the file is empty (no section, no option): not applied; "
            "an editor saving in place may leave it so for a moment"
        )
    else:
        try:
            settings = load_settings(path)
        except ConfigError as exc:
            error = str(exc)
    if file_stat(path) != expected:
        return None
    return Reading(expected, digest, settings, error)
