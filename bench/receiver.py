"""A fast HTTP/1.1 receiver for the scale benchmark (bench/scale.py).

    python bench/receiver.py --record FILE [--port 0] [--hang]

A raw asyncio Protocol on uvloop: it parses keep-alive requests minimally (request
line and headers up to the blank line, ``Content-Length`` bytes of body), answers
``200`` with an empty body, and records every request cheaply as (arrival time on
CLOCK_MONOTONIC, the body's ``GSW_CAMPAIGN_GROUP_DBID``, body length) in three
``array`` columns. Nothing is decoded, validated or logged per request.

``--hang`` accepts connections and reads requests (still recording them) but never
answers: a receiver that hangs. SIGUSR1 switches a running receiver to hanging.

On start it prints ``READY <port>`` on stdout. On SIGTERM or SIGINT it writes the
records to ``--record`` (``time.monotonic()`` shares CLOCK_MONOTONIC with every other
process, so the harness can cut windows out of them) and exits 0. The file is a small
binary: ``<q count>`` then ``count`` doubles (times), ``count`` int64 (DBIDs, -1 when
none was found) and ``count`` int64 (body lengths).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import struct
import sys
import time
from array import array
from pathlib import Path
from typing import cast

import uvloop

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Type: text/plain\r\n\r\n"
DBID_KEY = b'"GSW_CAMPAIGN_GROUP_DBID":"'
CONTENT_LENGTH = b"\r\ncontent-length:"
HEADER_END = b"\r\n\r\n"
MAX_HEADER = 64 * 1024


class Records:
    """Arrival time, group DBID and body length of every request, in flat arrays."""

    def __init__(self, hang: bool = False) -> None:
        self.hang = hang  # read requests, never answer
        self.times = array("d")
        self.dbids = array("q")
        self.sizes = array("q")

    def add(self, raw: bytes) -> None:
        self.times.append(time.monotonic())
        start = raw.find(DBID_KEY)
        dbid = -1
        if start >= 0:
            start += len(DBID_KEY)
            end = raw.find(b'"', start)
            if end > start:
                try:
                    dbid = int(raw[start:end])
                except ValueError:
                    dbid = -1
        self.dbids.append(dbid)
        self.sizes.append(len(raw))

    def dump(self, path: Path) -> None:
        with path.open("wb") as out:
            out.write(struct.pack("<q", len(self.times)))
            self.times.tofile(out)
            self.dbids.tofile(out)
            self.sizes.tofile(out)


def load_records(path: Path) -> tuple[array[float], array[int], array[int]]:
    """The three columns written by :meth:`Records.dump`."""
    with path.open("rb") as src:
        (count,) = struct.unpack("<q", src.read(8))
        times, dbids, sizes = array("d"), array("q"), array("q")
        times.fromfile(src, count)
        dbids.fromfile(src, count)
        sizes.fromfile(src, count)
    return times, dbids, sizes


class Receiver(asyncio.Protocol):
    """One connection: split the byte stream into requests, answer each with 200."""

    __slots__ = ("buffer", "records", "transport")

    def __init__(self, records: Records) -> None:
        self.records = records
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        answers = 0
        while True:
            head_end = buffer.find(HEADER_END)
            if head_end < 0:
                if len(buffer) > MAX_HEADER and self.transport is not None:
                    self.transport.close()
                break
            end = head_end + 4 + _content_length(buffer, head_end)
            if len(buffer) < end:
                break
            self.records.add(bytes(buffer[head_end + 4 : end]))
            del buffer[:end]
            answers += 1
        # The complete requests of one read get their answers in one write.
        if answers and not self.records.hang and self.transport is not None:
            self.transport.write(RESPONSE * answers)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.buffer = bytearray()


def _content_length(buffer: bytearray, head_end: int) -> int:
    head = bytes(buffer[:head_end]).lower()
    at = head.find(CONTENT_LENGTH)
    if at < 0:
        return 0
    start = at + len(CONTENT_LENGTH)
    end = head.find(b"\r\n", start)
    try:
        return int(head[start : end if end >= 0 else len(head)].strip())
    except ValueError:
        return 0


async def serve(port: int, record: Path, hang: bool) -> None:
    loop = asyncio.get_running_loop()
    records = Records(hang)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, setattr, records, "hang", True)
    server = await loop.create_server(
        lambda: Receiver(records), "127.0.0.1", port, backlog=4096, reuse_address=True
    )
    bound = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"READY {bound}\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        server.close()
        records.dump(record)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any)")
    parser.add_argument("--record", type=Path, required=True, help="where to write the records")
    parser.add_argument("--hang", action="store_true", help="read requests, never answer")
    args = parser.parse_args(argv)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args.port, args.record, args.hang))
    return 0


if __name__ == "__main__":
    sys.exit(main())
