"""The reader of ocsd's stdout goes away (``ocsd run | head``, a supervisor restarted):
the daemon keeps working, still stops on SIGTERM, and says once on stderr what
happened to its log lines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal

import pytest
from support.processes import clean_env, ocsd_command


@pytest.mark.parametrize("log_format", ["json", "console", "genesys"])
async def test_a_closed_stdout_neither_stops_the_daemon_nor_keeps_it_from_stopping(
    receiver, ini_sections, write_ini, control_for, log_format
):
    sections = ini_sections(receiver.url, interval=1)
    sections.setdefault("ocsd", {})["log-format"] = log_format
    sections["ocsd"]["control-port"] = 0
    config = write_ini(sections)
    proc = await asyncio.create_subprocess_exec(
        *ocsd_command("run", "--config", str(config)),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=clean_env(),
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        port = None
        async with asyncio.timeout(20):
            while port is None:
                line = (await proc.stdout.readline()).decode()
                assert line, "ocsd ended before it said it started"
                port = _control_port(line)
        # the reader goes away: no one reads stdout from now on
        proc._transport.get_pipe_transport(1).close()  # type: ignore[attr-defined]
        control = control_for(f"http://127.0.0.1:{port}")
        await control.ok(101, "LoadCampaign")  # logs lines, sends an 81000
        await receiver.wait_for(2, within=10)  # the Load, then periodic ones: it goes on
        status, _ = await control.request("GET", "/healthz")
        assert status == 200
        os.kill(proc.pid, signal.SIGTERM)
        async with asyncio.timeout(15):
            code = await proc.wait()
        stderr = (await proc.stderr.read()).decode()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert stderr.count("the reader of standard output went away") == 1, stderr


def _control_port(line: str) -> int | None:
    """The control port from the "ocsd started" line, in any of the three formats."""
    if "ocsd started" not in line:
        return None
    with contextlib.suppress(ValueError):
        return int(json.loads(line)["control_port"])
    for word in line.replace(",", " ").split():
        if word.startswith("control_port="):
            return int(word.split("=", 1)[1].strip("'\""))
    raise AssertionError(f"no control port in {line!r}")
