"""Shared fixtures for the integration and end-to-end tests of ocsd.

Everything here talks to 127.0.0.1 only, bounds every wait with a timeout, and stops
every process it starts by that process's own pid.

- ``receiver``: a real aiohttp HTTP server that records every POST it gets and answers
  as told (``ok``, ``status500``, ``hang``, ``close``); ``make_receiver`` starts more.
- ``write_ini`` / ``ini_sections``: a temporary INI file from a dict of sections;
  ``rewrite_ini`` replaces a file's content atomically (as editors save).
- ``ocsd_process``: ``async with ocsd_process(config, args=[...]) as proc`` runs
  ``ocsd run`` as a subprocess, collects its stdout/stderr lines, and always stops it.
- ``refusing_uri``: a URI on a port where nothing listens.
- ``run_ocsd``: runs a short ``ocsd`` command (check-config, ctl, ...) to completion.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

LOCALHOST = "127.0.0.1"
RECEIVER_PATH = "/ocs/campaign-group-state"
BEHAVIOURS = ("ok", "status500", "hang", "close")

#: Seconds a process gets after SIGTERM before it is killed.
STOP_GRACE = 10.0
#: Seconds a subprocess gets to log "ocsd started".
START_TIMEOUT = 10.0


# -- the recording receiver ------------------------------------------------------------


@dataclass
class Received:
    """One request the receiver got."""

    at: float  # time.monotonic() on arrival
    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    json: Any  # parsed body, or None when it is not JSON
    behaviour: str  # how the receiver answered it

    @property
    def action(self) -> int | None:
        return self.json.get("GSW_CAMPAIGN_GROUP_ACTION") if isinstance(self.json, dict) else None

    @property
    def dbid(self) -> str | None:
        return self.json.get("GSW_CAMPAIGN_GROUP_DBID") if isinstance(self.json, dict) else None

    @property
    def status(self) -> int | None:
        return self.json.get("GSW_CAMPAIGN_GROUP_STATUS") if isinstance(self.json, dict) else None

    @property
    def actor(self) -> int | None:
        return self.json.get("GSW_CAMPAIGN_GROUP_ACTOR") if isinstance(self.json, dict) else None

    @property
    def periodic(self) -> bool:
        return self.action == 0

    def __repr__(self) -> str:  # short, for assertion messages
        body = self.json if isinstance(self.json, dict) else self.raw[:80]
        if isinstance(body, dict):
            body = {
                k: body.get(k)
                for k in (
                    "GSW_CAMPAIGN_GROUP_NAME",
                    "GSW_CAMPAIGN_GROUP_STATUS",
                    "GSW_CAMPAIGN_GROUP_ACTION",
                    "GSW_CAMPAIGN_GROUP_ACTOR",
                    "GSW_DIAL_MODE",
                )
            }
        return f"<{self.method} {self.path} {self.behaviour} {body}>"


Predicate = Callable[[Received], bool]


def state_of(dbid: int | str) -> Predicate:
    """Matches state (81000) bodies of one group."""
    return lambda r: r.dbid == str(dbid) and not r.periodic


def periodic_of(dbid: int | str) -> Predicate:
    """Matches periodic (81001) bodies of one group."""
    return lambda r: r.dbid == str(dbid) and r.periodic


class Receiver:
    """A real HTTP server on 127.0.0.1 that records every request.

    ``behaviour`` is how it answers from now on; ``queue_behaviours`` sets how the next
    requests are answered before falling back to ``behaviour``. ``hang`` holds the
    request open until the receiver stops (the end of the test).
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.behaviour = "ok"
        self._next: deque[str] = deque()
        self._arrived = asyncio.Event()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # set-up ---------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOCALHOST, 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        self._release.set()  # let hanging handlers return
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return self.url_for(RECEIVER_PATH)

    def url_for(self, path: str, userinfo: str | None = None) -> str:
        credentials = f"{userinfo}@" if userinfo else ""
        return f"http://{credentials}{LOCALHOST}:{self.port}{path}"

    def set_behaviour(self, behaviour: str) -> None:
        assert behaviour in BEHAVIOURS, behaviour
        self.behaviour = behaviour

    def queue_behaviours(self, *behaviours: str) -> None:
        for behaviour in behaviours:
            assert behaviour in BEHAVIOURS, behaviour
        self._next.extend(behaviours)

    # handling -------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        behaviour = self._next.popleft() if self._next else self.behaviour
        self._record(request, raw, behaviour)
        if behaviour == "status500":
            return web.json_response({"error": "receiver told to fail"}, status=500)
        if behaviour == "hang":
            await self._release.wait()
            return web.Response(status=200)
        if behaviour == "close":
            assert request.transport is not None
            request.transport.abort()  # drop the connection without an answer
            await self._release.wait()  # never answer on the dead connection
            return web.Response(status=200)
        return web.json_response({"ok": True})

    def _record(self, request: web.Request, raw: bytes, behaviour: str) -> None:
        """Keep what arrived (with its JSON, if it parses) and wake whoever waits for it."""
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        self.received.append(
            Received(
                at=time.monotonic(),
                method=request.method,
                path=request.path,
                headers=dict(request.headers),
                raw=raw,
                json=parsed,
                behaviour=behaviour,
            )
        )
        self._arrived.set()

    # observing ------------------------------------------------------------------------

    state_of = staticmethod(state_of)
    periodic_of = staticmethod(periodic_of)

    def matching(self, predicate: Predicate | None = None) -> list[Received]:
        return [r for r in self.received if predicate is None or predicate(r)]

    def count(self, predicate: Predicate | None = None) -> int:
        return len(self.matching(predicate))

    async def wait_for(
        self, n: int, predicate: Predicate | None = None, within: float = 5.0
    ) -> list[Received]:
        """Wait until at least ``n`` received requests match; return all that match."""
        try:
            async with asyncio.timeout(within):
                while True:
                    self._arrived.clear()
                    found = self.matching(predicate)
                    if len(found) >= n:
                        return found
                    await self._arrived.wait()
        except TimeoutError:
            raise AssertionError(
                f"receiver: wanted {n} matching request(s) within {within} s, "
                f"got {self.count(predicate)}; everything received: {self.received}"
            ) from None

    async def settle(self, seconds: float = 0.3) -> None:
        """Let anything already on its way arrive (for 'nothing more was sent' checks)."""
        await asyncio.sleep(seconds)


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
def refusing_uri() -> str:
    """An http URI on a 127.0.0.1 port where nothing listens (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        port = sock.getsockname()[1]
    return f"http://{LOCALHOST}:{port}{RECEIVER_PATH}"


# -- configuration files ---------------------------------------------------------------

#: A group with a template, predictive by default (dbid 101), one without a template,
#: progressive by default (dbid 102), and a GVP group without agents (dbid 103).
GROUP_A = "Renewals@Retention Team"
GROUP_B = "Collections@Collections Desk"
GROUP_C = "Survey@IVR"


def make_sections(
    uri: str | None,
    *,
    interval: int = 0,
    timeout: float = 2,
    pool_size: int = 10,
    log_format: str = "json",
    control_port: int = 0,
    **extra_sections: Mapping[str, Any],
) -> dict[str, dict[str, Any]]:
    """The sections of a small, complete ocsd configuration sending to ``uri``."""
    sections: dict[str, dict[str, Any]] = {
        "OCServer": {
            "send-campaigngroup-states": "true" if uri else "false",
            "campaigngroup-states-interval": interval,
            "http-response-timeout": timeout,
            "http-connection-pool-size": pool_size,
        },
        "tenant": {"name": "Test Tenant", "ccid": "4242"},
        "ocsd": {"control-host": LOCALHOST, "control-port": control_port, "log-format": log_format},
        "calling-list:Renewals_Q4": {"dbid": 201, "records": 1000},
        "calling-list:Renewals_Lapsed": {"dbid": 202, "records": 500},
        "calling-list:Collections_30d": {"dbid": 211, "records": 800},
        "calling-list:Survey_Nov": {"dbid": 221, "records": 2000},
        f"campaign-group:{GROUP_A}": {
            "dbid": 101,
            "campaign": "Renewals",
            "group": "Retention Team",
            "template": "Retention Outbound Template",
            "queue": "7001",
            "agents": 25,
            "dial-mode": "predictive",
            "optimize-by": "busy-factor",
            "optimize-goal": 85,
            "calling-lists": "Renewals_Q4, Renewals_Lapsed",
        },
        f"campaign-group:{GROUP_B}": {
            "dbid": 102,
            "campaign": "Collections",
            "group": "Collections Desk",
            "queue": "7002",
            "agents": 10,
            "dial-mode": "progressive",
            "calling-lists": "Collections_30d",
        },
        f"campaign-group:{GROUP_C}": {
            "dbid": 103,
            "uuid": "0d6b3a52-9a7e-4c71-8f0e-2f5d1c7b9e44",
            "campaign": "Customer Survey",
            "group": "Survey Ports",
            "queue": "7003",
            "agents": 0,
            "dial-mode": "predictive-gvp",
            "optimize-by": "overdial-rate",
            "optimize-goal": 3,
            "calling-lists": "Survey_Nov",
        },
    }
    if uri:
        sections["OCServer"]["campaigngroup-states-uri"] = uri
    for name, options in extra_sections.items():
        sections.setdefault(name, {}).update(options)
    return sections


def extra_groups(count: int, first_dbid: int) -> dict[str, dict[str, Any]]:
    """``count`` more small progressive groups, DBIDs from ``first_dbid``, each with its
    own calling list (DBID + 4000): sections to pass to :func:`make_sections`."""
    sections: dict[str, dict[str, Any]] = {}
    for dbid in range(first_dbid, first_dbid + count):
        sections[f"calling-list:List {dbid}"] = {"dbid": dbid + 4000, "records": 100}
        sections[f"campaign-group:Campaign {dbid}@Team {dbid}"] = {
            "dbid": dbid,
            "campaign": f"Campaign {dbid}",
            "group": f"Team {dbid}",
            "queue": f"Q{dbid}",
            "agents": 2,
            "dial-mode": "progressive",
            "calling-lists": f"List {dbid}",
        }
    return sections


@pytest.fixture
def ini_sections() -> Callable[..., dict[str, dict[str, Any]]]:
    """``ini_sections(uri, interval=0, timeout=2, ...)``: see :func:`make_sections`."""
    return make_sections


def render_ini(sections: Mapping[str, Mapping[str, Any]]) -> str:
    out: list[str] = []
    for section, options in sections.items():
        out.append(f"[{section}]")
        out.extend(f"{option} = {value}" for option, value in options.items())
        out.append("")
    return "\n".join(out)


@pytest.fixture
def write_ini(tmp_path: Path) -> Callable[..., Path]:
    """``write_ini(sections, name="ocsd.ini")``: an INI file in tmp_path; its path."""

    def write(sections: Mapping[str, Mapping[str, Any]] | str, name: str = "ocsd.ini") -> Path:
        path = tmp_path / name
        text = sections if isinstance(sections, str) else render_ini(sections)
        path.write_text(text, encoding="utf-8")
        return path

    return write


def replace_ini(path: Path, sections: Mapping[str, Mapping[str, Any]] | str) -> None:
    """Give ``path`` new content atomically (write a sibling, then rename over it), so a
    daemon that watches the file never reads half of it."""
    text = sections if isinstance(sections, str) else render_ini(sections)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


@pytest.fixture
def rewrite_ini() -> Callable[..., None]:
    """``rewrite_ini(path, sections_or_text)``: see :func:`replace_ini`."""
    return replace_ini


# -- subprocesses ----------------------------------------------------------------------


def clean_env(**overrides: str) -> dict[str, str]:
    """This environment without any OCSD_* variable, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("OCSD_")}
    env.update(overrides)
    return env


def _parse(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return line


_STARTED_TEXT = re.compile(r"ocsd started .*\bcontrol_port=(\d+)")


@dataclass
class OcsdProcess:
    """A running ``ocsd run`` subprocess and everything it printed."""

    proc: asyncio.subprocess.Process
    stdout_lines: list[Any] = field(default_factory=list)  # parsed JSON when possible
    stderr_lines: list[str] = field(default_factory=list)
    raw_stdout: list[str] = field(default_factory=list)  # every stdout line as printed
    control_port: int | None = None
    exit_code: int | None = None
    _line: asyncio.Event = field(default_factory=asyncio.Event)
    _readers: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def control_url(self) -> str:
        assert self.control_port is not None, "ocsd has not logged 'ocsd started'"
        return f"http://{LOCALHOST}:{self.control_port}"

    @property
    def stdout_text(self) -> str:
        return "\n".join(self.raw_stdout)

    @property
    def stderr_text(self) -> str:
        return "\n".join(self.stderr_lines)

    def json_lines(self, **match: Any) -> list[dict[str, Any]]:
        """JSON log records whose keys equal ``match``."""
        return [
            line
            for line in self.stdout_lines
            if isinstance(line, dict) and all(line.get(k) == v for k, v in match.items())
        ]

    async def _read(self, stream: asyncio.StreamReader, sink: list[Any], parse: bool) -> None:
        while True:
            raw = await stream.readline()
            if not raw:
                self._line.set()  # EOF: let waiters notice the process is gone
                return
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            if parse:
                self.raw_stdout.append(text)
            sink.append(_parse(text) if parse else text)
            self._line.set()

    def _start_readers(self) -> None:
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            asyncio.create_task(self._read(self.proc.stdout, self.stdout_lines, True)),
            asyncio.create_task(self._read(self.proc.stderr, self.stderr_lines, False)),
        ]

    async def wait_for_line(
        self, predicate: Callable[[Any], bool], n: int = 1, within: float = 5.0
    ) -> list[Any]:
        """Wait until ``n`` stdout lines (parsed) match; return them."""
        try:
            async with asyncio.timeout(within):
                while True:
                    self._line.clear()
                    found = [line for line in self.stdout_lines if predicate(line)]
                    if len(found) >= n:
                        return found
                    if self._readers and all(r.done() for r in self._readers):
                        # both pipes at EOF: the process is gone or going; nothing more comes
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self.proc.wait(), 5)
                        break
                    await self._line.wait()
        except TimeoutError:
            pass
        raise AssertionError(
            f"ocsd (pid {self.pid}): wanted {n} matching stdout line(s) within {within} s; "
            f"exit code {self.proc.returncode}\nstdout:\n{self.stdout_text}\n"
            f"stderr:\n{self.stderr_text}"
        )

    async def _wait_started(self) -> None:
        def started(line: Any) -> bool:
            if isinstance(line, dict):
                return line.get("event") == "ocsd started"
            return bool(_STARTED_TEXT.search(line))

        (line,) = (await self.wait_for_line(started, within=START_TIMEOUT))[:1]
        if isinstance(line, dict):
            self.control_port = int(line["control_port"])
        else:
            match = _STARTED_TEXT.search(line)
            assert match is not None
            self.control_port = int(match[1])

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to this process, by its own pid (e.g. SIGHUP: reload)."""
        assert self.proc.returncode is None, f"ocsd (pid {self.pid}) has exited"
        os.kill(self.pid, sig)

    async def stop(self, sig: int = signal.SIGTERM, grace: float = STOP_GRACE) -> int:
        """Send ``sig`` to this process (its own pid), wait up to ``grace`` s, else SIGKILL.

        Returns the exit code; ``exit_code`` keeps it. Safe to call more than once.
        """
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                await asyncio.wait_for(self.proc.wait(), 5)
        # the readers end at EOF once the process is gone
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self._readers), 5)
        for reader in self._readers:
            reader.cancel()
        self.exit_code = self.proc.returncode
        assert self.exit_code is not None
        return self.exit_code


def ocsd_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ocsd", *args]


@contextlib.asynccontextmanager
async def start_ocsd(
    config: Path | None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    wait_started: bool = True,
    args: Iterable[str] = (),
) -> AsyncIterator[OcsdProcess]:
    """Run ``ocsd run [--config FILE] [args]``; always stop it (by its pid) when the block ends."""
    command = ["run", *(["--config", str(config)] if config is not None else []), *args]
    proc = await asyncio.create_subprocess_exec(
        *ocsd_command(*command),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env) if env is not None else clean_env(),
        cwd=cwd,
    )
    ocsd = OcsdProcess(proc)
    ocsd._start_readers()
    try:
        if wait_started:
            await ocsd._wait_started()
        yield ocsd
    finally:
        await ocsd.stop()


@pytest.fixture
def ocsd_process(tmp_path: Path) -> Callable[..., contextlib.AbstractAsyncContextManager[Any]]:
    """``async with ocsd_process(config, env=None, args=()) as proc``; see :func:`start_ocsd`."""

    def start(
        config: Path | None,
        env: Mapping[str, str] | None = None,
        wait_started: bool = True,
        args: Iterable[str] = (),
    ) -> contextlib.AbstractAsyncContextManager[OcsdProcess]:
        return start_ocsd(config, env=env, cwd=tmp_path, wait_started=wait_started, args=args)

    return start


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str
    elapsed: float


async def run_command(
    args: Iterable[str], env: Mapping[str, str] | None = None, within: float = 15.0
) -> Completed:
    """Run a command to completion (killed by its pid if it outlives ``within`` s)."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env) if env is not None else clean_env(),
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), within)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        await proc.communicate()
        raise AssertionError(f"{list(args)} did not finish within {within} s") from None
    assert proc.returncode is not None
    return Completed(
        proc.returncode,
        out.decode("utf-8", "replace"),
        err.decode("utf-8", "replace"),
        time.monotonic() - started,
    )


@pytest.fixture
def run_ocsd() -> Callable[..., Any]:
    """``await run_ocsd("check-config", "--config", path, env=None, within=15)``."""

    async def run(
        *args: str, env: Mapping[str, str] | None = None, within: float = 15.0
    ) -> Completed:
        return await run_command(ocsd_command(*args), env=env, within=within)

    return run


# -- the in-process daemon -------------------------------------------------------------


class Control:
    """A small client of the control API (aiohttp.ClientSession, bounded waits)."""

    def __init__(self, session: Any, base: str) -> None:
        self.session = session
        self.base = base

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: bytes | None = None,
        within: float = 5.0,
    ) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"timeout": aiohttp.ClientTimeout(total=within)}
        if params:
            kwargs["params"] = {k: str(v) for k, v in params.items()}
        if json_body is not None:
            kwargs["json"] = json_body
        if data is not None:
            kwargs["data"] = data
        async with self.session.request(method, self.base + path, **kwargs) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text

    async def act(self, dbid: int | str, req: str, **params: Any) -> tuple[int, Any]:
        """POST /campaigngroups/{dbid}?req=...&<params> (as query parameters)."""
        return await self.request("POST", f"/campaigngroups/{dbid}", params={"req": req, **params})

    async def group(self, dbid: int | str) -> dict[str, Any]:
        status, data = await self.request("GET", f"/campaigngroups/{dbid}")
        assert status == 200, data
        assert isinstance(data, dict)
        return data

    async def status_code(self, dbid: int | str) -> int:
        return int((await self.group(dbid))["status"]["code"])

    async def ok(self, dbid: int | str, req: str, **params: Any) -> dict[str, Any]:
        status, data = await self.act(dbid, req, **params)
        assert status == 200, f"{req} on {dbid}: HTTP {status} {data}"
        assert isinstance(data, dict)
        return data


@dataclass
class InProcess:
    daemon: Any  # ocsd.daemon.Daemon
    control: Control
    settings: Any

    @property
    def base_url(self) -> str:
        return self.control.base


@pytest.fixture
async def start_daemon(
    write_ini: Callable[..., Path],
    receiver: Receiver,
) -> AsyncIterator[Callable[..., Any]]:
    """``await start_daemon(sections)``: an in-process Daemon on an ephemeral control port.

    Builds Settings with ocsd.settings.load_settings from a tmp INI, awaits
    ``daemon.startup()``, and ``daemon.shutdown()`` at the end of the test whatever happens.
    Depends on ``receiver`` so the daemon shuts down while the receiver still behaves as
    told (e.g. still hangs), and the receiver stops after it.
    """
    from ocsd.config.settings import load_settings
    from ocsd.service.daemon import Daemon

    stack = contextlib.AsyncExitStack()
    counter = 0

    async def start(sections: Mapping[str, Mapping[str, Any]]) -> InProcess:
        nonlocal counter
        counter += 1
        settings = load_settings(write_ini(sections, name=f"inprocess-{counter}.ini"))
        assert settings.control_port == 0, "use an ephemeral control port in tests"
        daemon = Daemon(settings)
        await daemon.startup()
        stack.push_async_callback(daemon.shutdown)
        assert daemon.control_port, "the daemon did not report its control port"
        session = await stack.enter_async_context(aiohttp.ClientSession())
        control = Control(session, f"http://{LOCALHOST}:{daemon.control_port}")
        return InProcess(daemon, control, settings)

    try:
        yield start
    finally:
        async with asyncio.timeout(20):
            await stack.aclose()


async def eventually(
    condition: Callable[[], bool], within: float = 5.0, what: str = "condition"
) -> None:
    """Poll ``condition`` every 20 ms until it holds; fail after ``within`` s."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {within} s")
        await asyncio.sleep(0.02)


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


@pytest.fixture
def ocsd_env() -> Callable[..., dict[str, str]]:
    """``ocsd_env(OCSD_X="...")``: this environment without any OCSD_* variable, plus those."""
    return clean_env


# -- fault receivers and TLS material (delivery faults, reliable delivery mode) ------------

#: Behaviours of FaultReceiver beyond those of Receiver.
FAULT_BEHAVIOURS = (
    "slow",  # answers 200 after ``slow_s`` seconds
    "redirect",  # 302 to another path
    "status400",
    "status410",
    "status429",  # with Retry-After: ``retry_after`` when set
    "status503",
)


class FaultReceiver(Receiver):
    """A Receiver with more ways to fail, optionally over https, on a chosen port.

    ``stop()`` then ``start(port=same)`` takes it down and brings it back (connection
    refused meanwhile). ``answer_for`` decides per request (e.g. 503 to the first attempt
    of each webhook-id), before ``queue_behaviours``/``behaviour``.
    """

    def __init__(self, ssl_context: Any = None, slow_s: float = 0.3) -> None:
        super().__init__()
        self.ssl_context = ssl_context
        self.slow_s = slow_s
        self.retry_after: str | None = None
        self.answer_for: Callable[[web.Request, bytes], str | None] | None = None

    async def start(self, port: int = 0) -> None:  # type: ignore[override]
        self._release = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOCALHOST, port, ssl_context=self.ssl_context)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        await super().stop()
        self._runner = None

    def url_for(self, path: str, userinfo: str | None = None) -> str:
        credentials = f"{userinfo}@" if userinfo else ""
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{credentials}{LOCALHOST}:{self.port}{path}"

    def set_behaviour(self, behaviour: str) -> None:
        assert behaviour in BEHAVIOURS + FAULT_BEHAVIOURS, behaviour
        self.behaviour = behaviour

    def queue_behaviours(self, *behaviours: str) -> None:
        for behaviour in behaviours:
            assert behaviour in BEHAVIOURS + FAULT_BEHAVIOURS, behaviour
        self._next.extend(behaviours)

    @property
    def accepted(self) -> list[Received]:
        """The requests answered 2xx (ok and slow)."""
        return [r for r in self.received if r.behaviour in ("ok", "slow")]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        chosen = self.answer_for(request, raw) if self.answer_for else None
        if chosen is None:
            chosen = self._next.popleft() if self._next else self.behaviour
        if chosen in BEHAVIOURS:
            self._next.appendleft(chosen)  # Receiver._handle takes it from there
            return await super()._handle(request)
        self._record(request, raw, chosen)
        if chosen == "slow":
            await asyncio.sleep(self.slow_s)
            return web.json_response({"ok": True})
        if chosen == "redirect":
            raise web.HTTPFound(location="/moved")
        status = int(chosen.removeprefix("status"))
        headers = (
            {"Retry-After": self.retry_after}
            if chosen == "status429" and self.retry_after
            else None
        )
        return web.json_response(
            {"error": f"receiver told to answer {status}"}, status=status, headers=headers
        )


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


@dataclass
class TlsMaterial:
    """A throw-away CA and a server certificate it signed for 127.0.0.1 (PEM files)."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> Any:
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    """A self-signed CA and a server certificate for IP 127.0.0.1, made with ``cryptography``."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ocsd test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LOCALHOST)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOCALHOST))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    material = TlsMaterial(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    material.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    material.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    material.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return material
