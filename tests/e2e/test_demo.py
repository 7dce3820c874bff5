"""``ocsd demo``: the daemon and the sink in one process, every example group running."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
import urllib.request
from typing import Any

import pytest

LOCALHOST = "127.0.0.1"
pytestmark = pytest.mark.e2e

EXAMPLE_GROUPS = {"101", "102", "103"}  # the bundled example configuration


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def shows_everything(latest: list[dict[str, Any]]) -> bool:
    bodies = [e["body"] for e in latest if e["status"] == 200]

    def has(dbid: str, action: int) -> bool:
        return any(
            b["GSW_CAMPAIGN_GROUP_DBID"] == dbid
            and b["GSW_CAMPAIGN_GROUP_ACTION"] == action
            and b["GSW_CAMPAIGN_GROUP_ACTOR"] == 2
            for b in bodies
        )

    def moving(dbid: str) -> bool:
        return any(
            b["GSW_CAMPAIGN_GROUP_DBID"] == dbid and b["GSW_STAT_HIT_RATIO"] is not None
            for b in bodies
        )

    return all(has(d, 7) and has(d, 9) and moving(d) for d in EXAMPLE_GROUPS)


async def test_ocsd_demo_runs_everything_and_stops_cleanly_on_sigint(ocsd_cli, get_free_ports):
    port, control_port = get_free_ports(2)
    url = f"http://{LOCALHOST}:{port}"
    async with ocsd_cli(
        "demo", "--port", str(port), "--control-port", str(control_port), "--interval", "1"
    ) as demo:
        await demo.wait_for_line(rf"Dashboard:\s+{url}/", within=15)
        await demo.wait_for_line(rf"Control API:\s+http://{LOCALHOST}:{control_port}/", within=1)
        deadline = time.monotonic() + 20
        latest: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            latest = (await asyncio.to_thread(get_json, f"{url}/messages"))["latest"]
            if shows_everything(latest):
                break
            await asyncio.sleep(0.5)
        else:
            raise AssertionError(f"within 20 s, the sink did not show every group moving: {latest}")
        assert all(e["verdict"] == "valid" for e in latest), [
            e for e in latest if e["verdict"] != "valid"
        ][:3]
        # the control API of the daemon answers too
        groups = (
            await asyncio.to_thread(get_json, f"http://{LOCALHOST}:{control_port}/campaigngroups")
        )["campaigngroups"]
        assert {str(g["dbid"]) for g in groups} == EXAMPLE_GROUPS
        assert {g["status"]["name"] for g in groups} == {"Running"}

        code = await demo.stop(signal.SIGINT, grace=15)
    assert code == 0, demo.output
    assert "ocsd demo stopped" in demo.output
    assert "81001" in demo.output, "the periodic log lines are visible by default"


async def test_ocsd_demo_says_so_when_its_port_is_taken(ocsd_cli, get_free_ports):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind((LOCALHOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with ocsd_cli(
            "demo", "--port", str(port), "--control-port", str(get_free_ports(1)[0])
        ) as demo:
            code = await asyncio.wait_for(demo.proc.wait(), 15)
            await demo.stop()
    assert code == 2
    assert f"cannot listen on {LOCALHOST}:{port}" in demo.output
    assert "--port" in demo.output
