"""End-to-end helpers: the schema guard on received bodies, ``ocsd sink``/``ocsd demo``
subprocesses, and headless Chromium (Debian's ``chromium``) for the dashboard.

Every process started here listens on 127.0.0.1 only, is waited for with a bound, and is
stopped by its own pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ocsd.receiver.validate import schema_problems

LOCALHOST = "127.0.0.1"
#: Seconds `apt-get install chromium` may take when the browser is missing.
INSTALL_TIMEOUT = 600
#: Seconds one headless Chromium run may take.
BROWSER_TIMEOUT = 60


# -- every body a recording receiver got holds to the schema -------------------------------


@pytest.fixture(autouse=True)
def received_bodies_hold_to_the_schema(request: pytest.FixtureRequest) -> Iterator[None]:
    receiver = request.getfixturevalue("receiver") if "receiver" in request.fixturenames else None
    yield
    if receiver is None:
        return
    bad = []
    for r in receiver.received:
        if isinstance(r.json, dict) and r.json.get("GSW_USER_EVENT") == "CampaignGroupState":
            problems = schema_problems(r.json)
            if problems:
                bad.append(f"{'; '.join(map(str, problems))} in {r.json!r}")
    assert not bad, "bodies the daemon sent that break the schema:\n" + "\n".join(bad[:10])


# -- subprocesses of ocsd other than `ocsd run` --------------------------------------------


def free_ports(count: int = 1) -> list[int]:
    """``count`` different TCP ports on 127.0.0.1 where nothing listens right now (all
    bound at once while they are picked, so they cannot be the same port twice)."""
    import socket

    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind((LOCALHOST, 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def free_port() -> int:
    return free_ports(1)[0]


def clean_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("OCSD_")}
    env.update(overrides)
    return env


@dataclass
class Process:
    """A running ocsd subprocess and everything it printed (stdout lines, stderr)."""

    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _readers: list[asyncio.Task[None]] = field(default_factory=list)
    _new_line: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def output(self) -> str:
        return "\n".join(self.lines) + "\n-- stderr --\n" + "\n".join(self.errors)

    async def _read(self, stream: asyncio.StreamReader, into: list[str]) -> None:
        while raw := await stream.readline():
            into.append(raw.decode("utf-8", "replace").rstrip("\n"))
            self._new_line.set()
        self._new_line.set()

    async def wait_for_line(self, pattern: str, within: float) -> re.Match[str]:
        """The first stdout line matching ``pattern`` (re.search), waiting up to ``within`` s."""
        regex = re.compile(pattern)
        try:
            async with asyncio.timeout(within):
                while True:
                    self._new_line.clear()
                    for line in self.lines:
                        if match := regex.search(line):
                            return match
                    if all(r.done() for r in self._readers):
                        break
                    await self._new_line.wait()
        except TimeoutError:
            pass
        raise AssertionError(f"no line matching {pattern!r} within {within} s:\n{self.output}")

    async def stop(self, sig: int = signal.SIGTERM, grace: float = 10.0) -> int:
        """Send ``sig`` to this process's pid; SIGKILL it after ``grace`` s. The exit code."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                await asyncio.wait_for(self.proc.wait(), 5)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self._readers), 5)
        assert self.proc.returncode is not None
        return self.proc.returncode


@contextlib.asynccontextmanager
async def ocsd_subprocess(*args: str, env: dict[str, str] | None = None) -> AsyncIterator[Process]:
    """``python -m ocsd <args>``; always stopped (by its pid) when the block ends."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ocsd",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env if env is not None else clean_env(),
    )
    process = Process(proc)
    assert proc.stdout is not None and proc.stderr is not None
    process._readers = [
        asyncio.create_task(process._read(proc.stdout, process.lines)),
        asyncio.create_task(process._read(proc.stderr, process.errors)),
    ]
    try:
        yield process
    finally:
        await process.stop()


@pytest.fixture
def ocsd_cli() -> Any:
    """``async with ocsd_cli(*args) as process``: see :func:`ocsd_subprocess`."""
    return ocsd_subprocess


@pytest.fixture
def get_free_ports() -> Any:
    """``get_free_ports(n)``: n different TCP ports on 127.0.0.1 where nothing listens now."""
    return free_ports


@pytest.fixture
def ocsd_sink() -> Any:
    """``async with ocsd_sink(*extra_args) as (process, url)``: ``ocsd sink`` on a free port."""

    @contextlib.asynccontextmanager
    async def start(*extra: str) -> AsyncIterator[tuple[Process, str]]:
        async with ocsd_subprocess("sink", "--host", LOCALHOST, "--port", "0", *extra) as proc:
            match = await proc.wait_for_line(r'"event":"ocsd sink listening"', within=10)
            url = json.loads(match.string)["url"].rstrip("/")
            yield proc, url

    return start


# -- headless Chromium -----------------------------------------------------------------------


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _install_chromium() -> str:
    """Try Debian's package; the reason it failed otherwise."""
    if not shutil.which("apt-get"):
        return "no apt-get on this machine"
    if os.geteuid() != 0:
        return "not root, cannot apt-get install chromium"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "chromium", "fonts-dejavu-core"],
    ):
        try:
            done = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{' '.join(command)}: {exc}"
        if done.returncode != 0:
            return f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()[-300:]}"
    return ""


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of a headless-capable Chromium; installed with apt-get when missing.

    Skips (loudly: ``pytest -rs`` shows it) only when it can be neither found nor installed.
    """
    path = _find_chromium()
    if path is None:
        reason = _install_chromium()
        path = _find_chromium()
        if path is None:
            pytest.skip(
                "BROWSER TEST SKIPPED: Debian's chromium is not installed and could not be "
                f"installed ({reason or 'unknown reason'}); run `apt-get install -y chromium`"
            )
    return path


@dataclass
class Browser:
    """Headless Chromium runs against 127.0.0.1: ``dump_dom`` and ``screenshot``."""

    path: str

    def _command(self, profile: str, budget_ms: int) -> list[str]:
        return [
            self.path,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}",
        ]

    async def _run(self, args: list[str], budget_ms: int) -> str:
        with tempfile.TemporaryDirectory(prefix="ocsd-chromium-") as profile:
            proc = await asyncio.create_subprocess_exec(
                *self._command(profile, budget_ms),
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
            try:
                out, err = await asyncio.wait_for(proc.communicate(), BROWSER_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # its own session: chromium's children
                await proc.communicate()
                raise AssertionError(
                    f"chromium did not finish within {BROWSER_TIMEOUT} s"
                ) from None
            assert proc.returncode == 0, (
                f"chromium exited {proc.returncode}: {err.decode()[-2000:]}"
            )
            return out.decode("utf-8", "replace")

    async def dump_dom(self, url: str, budget_ms: int = 4000) -> str:
        """The DOM after the page's scripts ran for ``budget_ms`` of virtual time."""
        return await self._run(["--dump-dom", url], budget_ms)

    async def screenshot(
        self, url: str, path: Path, size: tuple[int, int] = (1400, 900), budget_ms: int = 4000
    ) -> None:
        await self._run(
            [f"--screenshot={path}", f"--window-size={size[0]},{size[1]}", url], budget_ms
        )


@pytest.fixture
def browser(chromium: str) -> Browser:
    return Browser(chromium)
