"""End-to-end fixtures: the schema guard on received bodies, ``ocsd sink``/``ocsd demo``
subprocesses (support.processes), and headless Chromium (Debian's ``chromium``) for the
dashboard.

Every process started here listens on 127.0.0.1 only, is waited for with a bound, and is
stopped by its own pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.net import LOCALHOST, free_ports
from support.processes import Process, ocsd_subprocess

from ocsd.receiver.validate import schema_problems

#: Seconds `apt-get install chromium` may take when the browser is missing.
INSTALL_TIMEOUT = 600
#: Seconds one headless Chromium run may take.
BROWSER_TIMEOUT = 60


# -- every body a recording receiver got holds to the schema -------------------------------


@pytest.fixture(autouse=True)
def received_bodies_hold_to_the_schema(request: pytest.FixtureRequest) -> Iterator[None]:
    receiver = request.getfixturevalue("receiver") if "receiver" in request.fixturenames else None
    yield
    if receiver is None or request.node.get_closest_marker("faults_injected"):
        return  # [faults] unknown-field sends a field the schema does not know, on purpose
    bad = []
    for r in receiver.received:
        if isinstance(r.json, dict) and r.json.get("GSW_USER_EVENT") == "CampaignGroupState":
            problems = schema_problems(r.json)
            if problems:
                bad.append(f"{'; '.join(map(str, problems))} in {r.json!r}")
    assert not bad, "bodies the daemon sent that break the schema:\n" + "\n".join(bad[:10])


# -- subprocesses of ocsd other than `ocsd run` --------------------------------------------


@pytest.fixture
def ocsd_cli() -> Any:
    """``async with ocsd_cli(*args) as process``: see :func:`support.processes.ocsd_subprocess`."""
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

    async def dump_dom(
        self, url: str, budget_ms: int = 4000, size: tuple[int, int] | None = None
    ) -> str:
        """The DOM after the page's scripts ran for ``budget_ms`` of virtual time, in a
        window of ``size`` (width, height) pixels when given."""
        window = [f"--window-size={size[0]},{size[1]}"] if size else []
        return await self._run([*window, "--dump-dom", url], budget_ms)

    async def screenshot(
        self, url: str, path: Path, size: tuple[int, int] = (1400, 900), budget_ms: int = 4000
    ) -> None:
        await self._run(
            [f"--screenshot={path}", f"--window-size={size[0]},{size[1]}", url], budget_ms
        )


@pytest.fixture
def browser(chromium: str) -> Browser:
    return Browser(chromium)
