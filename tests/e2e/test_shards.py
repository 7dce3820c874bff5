"""End to end: several ocsd instances, one shard of the groups each ([ocsd] shard)."""

from __future__ import annotations

import aiohttp
import pytest
from support.control import Control
from support.ini import extra_groups, make_sections, render_ini
from support.processes import clean_env, start_ocsd
from support.receivers import Receiver

pytestmark = pytest.mark.e2e


async def test_three_shards_share_the_groups_and_the_receiver_sees_each_once(tmp_path) -> None:
    """One INI, three instances (OCSD_SHARD=1/3, 2/3, 3/3), each --start-all: every
    group is loaded and started by exactly one instance, and the receiver gets each
    group's notifications from that instance only."""
    receiver = Receiver()
    await receiver.start()
    try:
        config = tmp_path / "ocsd.ini"
        config.write_text(
            render_ini(make_sections(receiver.url, interval=1, **extra_groups(12, 2000)))
        )
        all_dbids = {101, 102, 103} | {2000 + i for i in range(12)}
        async with (
            start_ocsd(config, clean_env(OCSD_SHARD="1/3"), tmp_path, args=["--start-all"]) as one,
            start_ocsd(config, clean_env(OCSD_SHARD="2/3"), tmp_path, args=["--start-all"]) as two,
            start_ocsd(config, clean_env(OCSD_SHARD="3/3"), tmp_path, args=["--start-all"]),
        ):
            starts = await receiver.wait_for(len(all_dbids), lambda r: r.action == 9, within=10)
            await receiver.wait_for(len(all_dbids) * 2, lambda r: r.periodic, within=5)
            async with aiohttp.ClientSession() as session:
                control = Control(session, one.control_url)
                status, listed = await control.request("GET", "/campaigngroups")
                assert status == 200
                assert {g["dbid"] for g in listed["campaigngroups"]} == {
                    d for d in all_dbids if d % 3 == 0
                }
                status, answer = await control.request("GET", "/campaigngroups/2002")
                assert status == 404
                assert "shard 1/3" in answer["error"] and "mod 3 = 0" in answer["error"]
            assert two.json_lines(event="all groups loaded and started")[0]["started"] == sum(
                1 for d in all_dbids if d % 3 == 1
            )
        started = [int(r.dbid) for r in starts]
        assert sorted(started) == sorted(all_dbids), "each group started exactly once"
        loads = [int(r.dbid) for r in receiver.received if r.action == 7]
        assert sorted(loads) == sorted(all_dbids)
    finally:
        await receiver.stop()
