"""End to end: a StatefulSet's worth of ocsd without a cluster. Three ``ocsd run``
processes read one INI with ``shard = auto`` and ``shard-count = 3``; each is told its
ordinal as a StatefulSet tells its pods (a host name ``ocsd-<i>``, or ``OCSD_POD_INDEX``
from the pod-index label), and all send to one receiver."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path

import aiohttp
import pytest
from support.control import Control
from support.ini import extra_groups, make_sections, render_ini
from support.processes import OcsdProcess, clean_env, ocsd_command, run_command, start_ocsd
from support.receivers import Receiver

pytestmark = pytest.mark.e2e

COUNT = 3
#: Seconds for every group's start to arrive from three processes on a busy machine.
WITHIN = 60.0


def pod_environment(ordinal: int) -> dict[str, str]:
    """What a StatefulSet's pod ``ordinal`` has: its host name ``ocsd-<i>``; pod 1 also
    gets OCSD_POD_INDEX (the manifest's downward-API variable) and a host name with no
    ordinal, so both ways of reading the ordinal are used."""
    env = clean_env(HOSTNAME=f"ocsd-{ordinal}")
    if ordinal == 1:
        env.update(OCSD_POD_INDEX="1", HOSTNAME="ocsd-pod-without-ordinal")
    return env


def write_config(path: Path, uri: str) -> set[int]:
    """One INI for every pod; the DBIDs of its groups."""
    sections = make_sections(uri, interval=0, **extra_groups(12, 2000))
    sections["ocsd"].update({"shard": "auto", "shard-count": COUNT})
    path.write_text(render_ini(sections), encoding="utf-8")
    return {101, 102, 103} | {2000 + i for i in range(12)}


def started_dbids(receiver: Receiver, since: int = 0) -> list[int]:
    """DBIDs of the StartDialing (action 9) notifications received from index ``since``."""
    return sorted(int(r.dbid) for r in receiver.received[since:] if r.action == 9 and r.dbid)


def shard_line(process: OcsdProcess) -> dict[str, object]:
    (line,) = process.json_lines(event="running a shard")
    return line


async def listed_dbids(process: OcsdProcess) -> set[int]:
    async with aiohttp.ClientSession() as session:
        status, listed = await Control(session, process.control_url).request(
            "GET", "/campaigngroups"
        )
    assert status == 200, listed
    return {group["dbid"] for group in listed["campaigngroups"]}


async def test_three_pods_with_shard_auto_each_run_their_own_groups_and_one_restarted_takes_back_its_own(
    tmp_path: Path,
) -> None:
    receiver = Receiver()
    await receiver.start()
    config = tmp_path / "ocsd.ini"
    all_dbids = write_config(config, receiver.url)
    mine = {i: {d for d in all_dbids if d % COUNT == i} for i in range(COUNT)}
    try:
        async with contextlib.AsyncExitStack() as stack:
            pods = [
                await stack.enter_async_context(
                    start_ocsd(config, pod_environment(i), tmp_path, args=["--start-all"])
                )
                for i in range(COUNT)
            ]
            await receiver.wait_for(len(all_dbids), lambda r: r.action == 9, within=WITHIN)
            await receiver.settle(1.0)
            # every group started exactly once, across the three
            assert started_dbids(receiver) == sorted(all_dbids)
            for i, pod in enumerate(pods):
                line = shard_line(pod)
                assert line["shard"] == f"{i + 1}/{COUNT}"
                assert line["groups"] == len(mine[i]) and line["groups_configured"] == 15
                assert await listed_dbids(pod) == mine[i]
            assert shard_line(pods[0])["shard_from"] == "ordinal 0 of the HOSTNAME 'ocsd-0'"
            assert shard_line(pods[1])["shard_from"] == "pod index 1 in OCSD_POD_INDEX"
            assert shard_line(pods[1])["detail"] == (
                f"shard 2/3 (from pod index 1 in OCSD_POD_INDEX): {len(mine[1])} of 15 groups"
            )

            # pod 1 is killed (no graceful stop) and rescheduled with the same identity
            assert await pods[1].stop(signal.SIGKILL) == -signal.SIGKILL
            before = len(receiver.received)
            restarted = await stack.enter_async_context(
                start_ocsd(config, pod_environment(1), tmp_path, args=["--start-all"])
            )
            await receiver.wait_for(
                len(all_dbids) + len(mine[1]), lambda r: r.action == 9, within=WITHIN
            )
            await receiver.settle(1.0)
            assert started_dbids(receiver, before) == sorted(mine[1]), "exactly its own groups"
            loaded = sorted(int(r.dbid) for r in receiver.received[before:] if r.action == 7)
            assert loaded == sorted(mine[1])
            assert shard_line(restarted)["shard"] == "2/3"
            assert await listed_dbids(restarted) == mine[1]
            # the other two went on with theirs, untouched
            for pod in (pods[0], pods[2]):
                assert pod.proc.returncode is None
    finally:
        await receiver.stop()


async def test_check_config_says_which_shard_the_pod_runs(tmp_path: Path) -> None:
    config = tmp_path / "ocsd.ini"
    write_config(config, "http://127.0.0.1:9/ocs")  # check-config sends nothing
    done = await run_command(
        ocsd_command("check-config", "--config", str(config)), env=pod_environment(2)
    )
    assert done.returncode == 0, done.stderr
    assert "# shard 3/3 (from ordinal 2 of the HOSTNAME 'ocsd-2'): 5 of 15 groups" in done.stdout
    out_of_range = await run_command(
        ocsd_command("check-config", "--config", str(config)),
        env=clean_env(HOSTNAME="ocsd-3"),
    )
    assert out_of_range.returncode == 2
    assert out_of_range.stderr.strip() == (
        f"ocsd: configuration error: {config}:16: [ocsd] shard: auto: ordinal 3 of the "
        "HOSTNAME 'ocsd-3' is out of range for shard-count = 3 (allowed: 0 to 2); raise "
        "shard-count to the StatefulSet's replicas"
    )
