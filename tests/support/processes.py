"""``ocsd`` as a subprocess, always stopped by its own pid.

- :func:`start_ocsd`: ``ocsd run`` with its stdout (parsed JSON lines) and stderr collected;
  :class:`OcsdProcess` waits for lines and knows the control port it logged.
- :func:`ocsd_subprocess`: any other long-running command (``ocsd sink``, ``ocsd demo``),
  its output as text lines (:class:`Process`).
- :func:`run_command`: a short command (``check-config``, ``ctl``...) run to completion.
- :func:`background_ocsd`: a long-running command for synchronous tests, its output in
  files (:class:`Background`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from support.net import LOCALHOST

#: Seconds a process gets after SIGTERM before it is killed.
STOP_GRACE = 10.0
#: Seconds a subprocess gets to log "ocsd started".
START_TIMEOUT = 10.0


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


async def stop_process(
    proc: asyncio.subprocess.Process,
    readers: Iterable[asyncio.Task[None]],
    sig: int = signal.SIGTERM,
    grace: float = STOP_GRACE,
) -> int:
    """Send ``sig`` to ``proc`` (its own pid), wait up to ``grace`` s, else SIGKILL; then
    let its output ``readers`` finish (they end at EOF). The exit code; safe to repeat."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), 5)
    tasks = list(readers)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
    for reader in tasks:
        reader.cancel()
    assert proc.returncode is not None
    return proc.returncode


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
        self.exit_code = await stop_process(self.proc, self._readers, sig, grace)
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
    preexec_fn: Callable[[], None] | None = None,
) -> AsyncIterator[OcsdProcess]:
    """Run ``ocsd run [--config FILE] [args]``; always stop it (by its pid) when the block ends.
    ``preexec_fn`` runs in the child before ocsd starts (a lowered resource limit)."""
    command = ["run", *(["--config", str(config)] if config is not None else []), *args]
    proc = await asyncio.create_subprocess_exec(
        *ocsd_command(*command),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env) if env is not None else clean_env(),
        cwd=cwd,
        preexec_fn=preexec_fn,
    )
    ocsd = OcsdProcess(proc)
    ocsd._start_readers()
    try:
        if wait_started:
            await ocsd._wait_started()
        yield ocsd
    finally:
        await ocsd.stop()


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

    async def stop(self, sig: int = signal.SIGTERM, grace: float = STOP_GRACE) -> int:
        """Send ``sig`` to this process's pid; SIGKILL it after ``grace`` s. The exit code."""
        return await stop_process(self.proc, self._readers, sig, grace)


@contextlib.asynccontextmanager
async def ocsd_subprocess(*args: str, env: dict[str, str] | None = None) -> AsyncIterator[Process]:
    """``python -m ocsd <args>``; always stopped (by its pid) when the block ends."""
    proc = await asyncio.create_subprocess_exec(
        *ocsd_command(*args),
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


@dataclass
class Background:
    """A long-running ``ocsd`` command for synchronous tests (schemathesis, raw sockets):
    its stdout and stderr go to files, read whenever a test looks."""

    port: int
    proc: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def output(self) -> bytes:
        return self.stdout.read_bytes() + self.stderr.read_bytes()

    def _wait_ready(self, ready: str, within: float) -> None:
        deadline = time.monotonic() + within
        while True:
            assert self.proc.poll() is None, f"it died: {self.stderr.read_text()}"
            assert time.monotonic() < deadline, f"it did not start: {self.stderr.read_text()}"
            for line in self.stdout.read_text(errors="replace").splitlines():
                if f'"{ready}"' in line:
                    fields = json.loads(line)
                    port = fields.get("control_port") or fields["url"].rsplit(":", 1)[1]
                    self.port = int(str(port).strip("/"))
                    return
            time.sleep(0.05)


AnyBackground = TypeVar("AnyBackground", bound=Background)


@contextlib.contextmanager
def background_ocsd(
    command: list[str],
    directory: Path,
    ready: str,
    within: float,
    kind: type[AnyBackground] = Background,  # type: ignore[assignment]
) -> Iterator[AnyBackground]:
    """Run ``ocsd <command>`` in ``directory`` until the block ends, then stop it by its
    pid; ready once its stdout has a JSON line whose event is ``ready`` (which names the
    port it listens on: ``control_port``, or a ``url``). ``kind``: a subclass of
    :class:`Background` with a test module's own helpers."""
    stdout, stderr = directory / "stdout.log", directory / "stderr.log"
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        proc = subprocess.Popen(
            ocsd_command(*command),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=directory,
            env=clean_env(),
        )
    server = kind(0, proc, stdout, stderr)
    try:
        server._wait_ready(ready, within)
        yield server
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
