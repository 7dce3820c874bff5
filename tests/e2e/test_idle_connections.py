"""Idle connections cannot lock anyone out of the control API or the sink.

The real daemon (and the real ``ocsd sink``) as a subprocess whose file limit is lowered
to 256 (RLIMIT_NOFILE, set in the child before it runs); 400 sockets connect and never
send a byte. Past the connection limit the newcomers are answered 503 and closed at once
(every idle one is younger than half a second); a second later ``/healthz`` still answers
on a new connection, which closes the oldest idle one to make room; and every one of them
is closed once the idle timeout has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from support.net import LOCALHOST, free_ports
from support.processes import (
    Process,
    clean_env,
    ocsd_command,
    start_ocsd,
    stop_process,
)

FILE_LIMIT = 256
IDLE_SOCKETS = 400
IDLE_TIMEOUT_S = 2.0
STALLED_POST = (
    b"POST /campaigngroups/101 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n{"
)


def _lower_file_limit() -> None:  # runs in the child, before ocsd starts
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT))


def _own_file_limit_fits() -> None:
    """This test process holds the idle sockets: make sure it may."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < IDLE_SOCKETS + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, IDLE_SOCKETS + 1000), hard))


@contextlib.asynccontextmanager
async def _sink(port: int) -> AsyncIterator[Process]:
    args = ("sink", "--port", str(port), "--idle-timeout", str(IDLE_TIMEOUT_S))
    proc = await asyncio.create_subprocess_exec(
        *ocsd_command(*args),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=clean_env(),
        preexec_fn=_lower_file_limit,
    )
    process = Process(proc)
    assert proc.stdout is not None and proc.stderr is not None
    process._readers = [
        asyncio.create_task(process._read(proc.stdout, process.lines)),
        asyncio.create_task(process._read(proc.stderr, process.errors)),
    ]
    try:
        await process.wait_for_line("ocsd sink listening", within=10)
        yield process
    finally:
        await stop_process(proc, process._readers)


async def _open_idle(port: int) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """IDLE_SOCKETS connections that never send anything (opened 50 at a time)."""
    opened: list[Any] = []
    for _ in range(IDLE_SOCKETS // 50):
        batch = [asyncio.open_connection(LOCALHOST, port) for _ in range(50)]
        opened.extend(await asyncio.wait_for(asyncio.gather(*batch), 10))
    return opened


async def _closed_by_peer(reader: asyncio.StreamReader) -> bool:
    """Whether the server closed the connection (after a 503 or without a word)."""
    try:
        await asyncio.wait_for(reader.read(), 0.05)  # to the end: returns at EOF only
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return True


async def _count_closed(sockets: list[Any]) -> int:
    return sum([await _closed_by_peer(reader) for reader, _writer in sockets])


async def _healthz_answers(base: str) -> None:
    """A new connection gets /healthz answered (not stuck behind the idle ones)."""
    started = time.monotonic()
    async with (
        aiohttp.ClientSession() as session,
        session.get(base + "/healthz", timeout=aiohttp.ClientTimeout(total=5)) as response,
    ):
        assert response.status == 200, await response.text()
    assert time.monotonic() - started < 5


async def _all_closed_after_the_idle_timeout(sockets: list[Any]) -> None:
    deadline = time.monotonic() + IDLE_TIMEOUT_S + 15
    closed = 0
    while time.monotonic() < deadline:
        closed = await _count_closed([s for s in sockets if not s[0].at_eof()])
        if all(reader.at_eof() for reader, _ in sockets):
            return
        await asyncio.sleep(0.5)
    still_open = sum(not reader.at_eof() for reader, _ in sockets)
    raise AssertionError(f"{still_open} idle connections still open ({closed} closed last)")


async def _open_stalled_posts(port: int) -> list[tuple[asyncio.StreamReader, Any]]:
    """IDLE_SOCKETS POSTs whose body stops after its first byte (opened 50 at a time)."""
    opened = await _open_idle(port)
    for _reader, writer in opened:
        writer.write(STALLED_POST)
    return opened


async def _answer(reader: asyncio.StreamReader) -> bytes:
    """What the server sent before it closed the connection (b"": not a word)."""
    try:
        return await reader.read()
    except ConnectionError:
        return b""


def _close_all(sockets: list[Any]) -> None:
    for _reader, writer in sockets:
        writer.close()


@contextlib.asynccontextmanager
async def _ocsd_at_a_low_file_limit(ini_sections, write_ini, tmp_path) -> AsyncIterator[Any]:
    """``ocsd run`` with a file limit of FILE_LIMIT and control-idle-timeout IDLE_TIMEOUT_S."""
    _own_file_limit_fits()
    sections = ini_sections(None)
    sections["ocsd"]["control-idle-timeout"] = IDLE_TIMEOUT_S
    async with start_ocsd(write_ini(sections), cwd=tmp_path, preexec_fn=_lower_file_limit) as proc:
        yield proc


async def test_idle_connections_cannot_lock_out_the_control_api(ini_sections, write_ini, tmp_path):
    async with _ocsd_at_a_low_file_limit(ini_sections, write_ini, tmp_path) as proc:
        sockets = await _open_idle(proc.control_port)
        try:
            # 256 files - 64 kept - a pool of 10: at most 182 open, the rest closed at once
            closed = await _count_closed(sockets)
            assert closed >= IDLE_SOCKETS - 182 - 5, f"only {closed} closed at the limit"
            await asyncio.sleep(1)  # idle for more than MIN_IDLE_AGE_S: room can be made
            await _healthz_answers(proc.control_url)
            await _all_closed_after_the_idle_timeout(sockets)
            await _healthz_answers(proc.control_url)
        finally:
            _close_all(sockets)
        lowered = proc.json_lines(
            event="control-max-connections lowered to fit under the file limit (ulimit -n)"
        )
        assert lowered and lowered[0]["effective"] == 182, proc.stdout_text[-2000:]
        assert proc.json_lines(
            event="connection limit reached: closing the oldest idle connections"
        )


async def test_stalled_request_bodies_cannot_lock_out_the_control_api(
    ini_sections, write_ini, tmp_path
):
    """The probe that locked the API out for good: POSTs whose body stops after one
    byte. Each is closed (503 over the limit, evicted, or timed out), /healthz answers
    again, and nothing is logged as an internal error."""
    async with _ocsd_at_a_low_file_limit(ini_sections, write_ini, tmp_path) as proc:
        sockets = await _open_stalled_posts(proc.control_port)
        try:
            # every one closed: no deadline before, 30 s is a generous bound for 2 s
            answers = await asyncio.wait_for(
                asyncio.gather(*(_answer(reader) for reader, _writer in sockets)),
                IDLE_TIMEOUT_S + 30,
            )
            await _healthz_answers(proc.control_url)
        finally:
            _close_all(sockets)
        refused = [a for a in answers if a]
        assert all(a.startswith(b"HTTP/1.1 503 Service Unavailable") for a in refused), refused[:3]
        await asyncio.sleep(0.5)  # the last closes logged, if anything were logged
        output = proc.stdout_text + proc.stderr_text
        problems = [
            w for w in ("control request failed", "Traceback", "AssertionError") if w in output
        ]
        assert not problems, f"{len(refused)} answered 503; {problems}: {output[-3000:]}"
        assert proc.json_lines(event="closed connections whose request body stopped arriving")


async def test_idle_connections_cannot_lock_out_the_sink():
    _own_file_limit_fits()
    (port,) = free_ports(1)
    async with _sink(port) as sink:
        sockets = await _open_idle(port)
        try:
            assert await _count_closed(sockets) >= IDLE_SOCKETS - (FILE_LIMIT - 64) - 5
            await asyncio.sleep(1)
            await _healthz_answers(f"http://{LOCALHOST}:{port}")
            await _all_closed_after_the_idle_timeout(sockets)
            await _healthz_answers(f"http://{LOCALHOST}:{port}")
        finally:
            _close_all(sockets)
        assert "connection limit reached" in sink.output
