"""The fixtures of the shared test harness (registered in tests/conftest.py).

Everything here talks to 127.0.0.1 only, bounds every wait with a timeout, and stops
every process it starts by that process's own pid.

- ``receiver``: a real aiohttp HTTP server that records every POST it gets and answers
  as told (``ok``, ``status500``, ``hang``, ``close``); ``make_receiver`` starts more,
  ``make_fault_receiver`` starts FaultReceivers (more faults, https, a chosen port).
- ``tls_material``: a throw-away CA and a server certificate for 127.0.0.1.
- ``write_ini`` / ``ini_sections``: a temporary INI file from a dict of sections;
  ``rewrite_ini`` replaces a file's content atomically (as editors save).
- ``ocsd_process``: ``async with ocsd_process(config, args=[...]) as proc`` runs
  ``ocsd run`` as a subprocess, collects its stdout/stderr lines, and always stops it.
- ``start_daemon``: ``await start_daemon(sections)``, a Daemon in this event loop.
- ``refusing_uri``: a URI on a port where nothing listens.
- ``run_ocsd``: runs a short ``ocsd`` command (check-config, ctl, ...) to completion.
- ``control_for``, ``wait_until``, ``ocsd_env``: a control client, a bounded poll, and
  this environment without OCSD_* variables.

The helpers behind them live in the other modules of this package.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from support import net
from support.control import Control
from support.ini import make_sections, replace_ini, write_ini_file
from support.inprocess import InProcess, start_in_process
from support.processes import (
    Completed,
    OcsdProcess,
    clean_env,
    ocsd_command,
    run_command,
    start_ocsd,
)
from support.receivers import FaultReceiver, Receiver
from support.tls import TlsMaterial, make_tls_material
from support.waiting import eventually

# -- receivers -----------------------------------------------------------------------------


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    await recv.start()
    try:
        yield recv
    finally:
        await recv.stop()


@pytest.fixture
async def make_receiver() -> AsyncIterator[Callable[[], Any]]:
    """``await make_receiver()``: one more recording receiver (stopped after the test)."""
    started: list[Receiver] = []

    async def make() -> Receiver:
        recv = Receiver()
        await recv.start()
        started.append(recv)
        return recv

    try:
        yield make
    finally:
        for recv in started:
            await recv.stop()


@pytest.fixture
async def make_fault_receiver() -> AsyncIterator[Callable[..., Any]]:
    """``await make_fault_receiver(ssl_context=None, port=0)``: a started FaultReceiver."""
    started: list[FaultReceiver] = []

    async def make(ssl_context: Any = None, port: int = 0, start: bool = True) -> FaultReceiver:
        recv = FaultReceiver(ssl_context)
        if start:
            await recv.start(port)
        started.append(recv)
        return recv

    try:
        yield make
    finally:
        for recv in started:
            if recv._runner is not None:
                await recv.stop()


@pytest.fixture
def refusing_uri() -> str:
    """An http URI on a 127.0.0.1 port where nothing listens (connection refused)."""
    return net.refusing_uri()


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    """A self-signed CA and a server certificate for IP 127.0.0.1, made with ``cryptography``."""
    return make_tls_material(tmp_path_factory.mktemp("tls"))


# -- configuration files -------------------------------------------------------------------


@pytest.fixture
def ini_sections() -> Callable[..., dict[str, dict[str, Any]]]:
    """``ini_sections(uri, interval=0, timeout=2, ...)``: see :func:`support.ini.make_sections`."""
    return make_sections


@pytest.fixture
def write_ini(tmp_path: Path) -> Callable[..., Path]:
    """``write_ini(sections, name="ocsd.ini")``: an INI file in tmp_path; its path."""

    def write(sections: Mapping[str, Mapping[str, Any]] | str, name: str = "ocsd.ini") -> Path:
        return write_ini_file(tmp_path, sections, name)

    return write


@pytest.fixture
def rewrite_ini() -> Callable[..., None]:
    """``rewrite_ini(path, sections_or_text)``: see :func:`support.ini.replace_ini`."""
    return replace_ini


# -- subprocesses --------------------------------------------------------------------------


@pytest.fixture
def ocsd_process(tmp_path: Path) -> Callable[..., contextlib.AbstractAsyncContextManager[Any]]:
    """``async with ocsd_process(config, env=None, args=()) as proc``; see
    :func:`support.processes.start_ocsd`."""

    def start(
        config: Path | None,
        env: Mapping[str, str] | None = None,
        wait_started: bool = True,
        args: Iterable[str] = (),
    ) -> contextlib.AbstractAsyncContextManager[OcsdProcess]:
        return start_ocsd(config, env=env, cwd=tmp_path, wait_started=wait_started, args=args)

    return start


@pytest.fixture
def run_ocsd() -> Callable[..., Any]:
    """``await run_ocsd("check-config", "--config", path, env=None, within=15)``."""

    async def run(
        *args: str, env: Mapping[str, str] | None = None, within: float = 15.0
    ) -> Completed:
        return await run_command(ocsd_command(*args), env=env, within=within)

    return run


@pytest.fixture
def ocsd_env() -> Callable[..., dict[str, str]]:
    """``ocsd_env(OCSD_X="...")``: this environment without any OCSD_* variable, plus those."""
    return clean_env


# -- the in-process daemon -----------------------------------------------------------------


@pytest.fixture
async def start_daemon(
    write_ini: Callable[..., Path],
    receiver: Receiver,
) -> AsyncIterator[Callable[..., Any]]:
    """``await start_daemon(sections)``: an in-process Daemon on an ephemeral control port.

    Builds Settings with ocsd.config.settings.load_settings from a tmp INI, freezes the
    heap (support.inprocess.freeze_heap: the collector would otherwise stall the shared
    loop), awaits ``daemon.startup()``, and ``daemon.shutdown()`` at the end of the test
    whatever happens. Depends on ``receiver`` so the daemon shuts down while the receiver
    still behaves as told (e.g. still hangs), and the receiver stops after it.
    """
    from ocsd.config.settings import load_settings

    stack = contextlib.AsyncExitStack()
    counter = 0

    async def start(sections: Mapping[str, Mapping[str, Any]]) -> InProcess:
        nonlocal counter
        counter += 1
        settings = load_settings(write_ini(sections, name=f"inprocess-{counter}.ini"))
        return await start_in_process(stack, settings)

    try:
        yield start
    finally:
        async with asyncio.timeout(20):
            await stack.aclose()


@pytest.fixture
def wait_until() -> Callable[..., Any]:
    """``await wait_until(lambda: ..., within=5, what="...")``."""
    return eventually


@pytest.fixture
async def control_for() -> AsyncIterator[Callable[[str], Control]]:
    """``control_for(base_url)``: a Control client (one session, closed after the test)."""
    session = aiohttp.ClientSession()
    try:
        yield lambda base: Control(session, base.rstrip("/"))
    finally:
        await session.close()
