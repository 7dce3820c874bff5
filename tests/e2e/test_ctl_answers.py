"""What ``ocsd ctl`` and the control API tell a user, against a real daemon (and a real
sink) as subprocesses.

- An UnloadCampaign of a group with calls in progress leaves it WaitingUnload (as OCS
  does) and its notification comes only when the last call ends: minutes later at
  time-scale 1. The answer now says so (``waiting_unload`` and a ``message``), and
  ``ocsd ctl unload`` prints it in one line. Before: only ``status: WaitingUnload`` deep
  in the JSON view, and no word of when the notification comes or of ForceUnloadCampaign.
- ``ocsd ctl`` pointed at the sink printed the sink's bare ``405 Method Not Allowed`` (or
  its schema refusal of an empty body) and exit 1, as if the daemon had refused.
- A DBID past 32 bits was "must be a number".

Group 101 has 25 agents; started, it dials at once. Its lists ring an unanswered call for
1200 simulated seconds at 600 simulated seconds per wall second: calls placed at the start
last about 2 s of wall time, so the group surely has calls in progress when unloaded.
"""

from __future__ import annotations

import json
import re

import aiohttp
from support.ini import IDLE_A
from support.net import LOCALHOST

TIME_SCALE = 600
RING_OUT = 1200  # simulated seconds an unanswered call rings

WAITING = re.compile(
    r"^ocsd ctl: campaign group Renewals@Retention Team \(101\) is WaitingUnload with "
    r"(\d+) calls? in progress: the UnloadCampaign notification follows when they end; "
    r"ForceUnloadCampaign \(ocsd ctl force-unload 101\) unloads at once$"
)


def _busy_config(write_ini, ini_sections, receiver):
    return write_ini(
        ini_sections(
            receiver.url,
            interval=0,
            ocsd={"time-scale": TIME_SCALE, "seed": 7},
            **{
                "calling-list:Renewals_Q4": {"no-answer-timeout": RING_OUT},
                "calling-list:Renewals_Lapsed": {"no-answer-timeout": RING_OUT},
            },
        )
    )


async def test_unload_with_calls_in_progress_says_waiting_unload_and_what_follows(
    ocsd_process, run_ocsd, write_ini, ini_sections, receiver
) -> None:
    async with ocsd_process(_busy_config(write_ini, ini_sections, receiver)) as proc:
        base = ("ctl", "--url", proc.control_url)
        for action in ("load", "start"):
            done = await run_ocsd(*base, action, "101")
            assert done.returncode == 0, done.stderr
            assert done.stderr == "", "no note for a request that does what it says"
        await receiver.wait_for(2, receiver.state_of(101))
        await receiver.settle(0.5)  # 300 simulated seconds: calls ringing

        unload = await run_ocsd(*base, "unload", "101")

        assert unload.returncode == 0, unload.stderr
        answer = json.loads(unload.stdout)
        waiting = answer["waiting_unload"]
        assert waiting["calls_in_progress"] > 0
        assert waiting["calls_in_progress"] == answer["campaigngroup"]["calls_in_progress"]
        assert answer["campaigngroup"]["status"] == {"code": 1, "name": "WaitingUnload"}
        assert "last call" in waiting["unload_notification"]
        assert "ForceUnloadCampaign" in waiting["force_unload"]
        (line,) = unload.stderr.splitlines()
        match = WAITING.fullmatch(line)
        assert match, line
        assert int(match.group(1)) == waiting["calls_in_progress"]
        assert answer["message"] == line.removeprefix("ocsd ctl: ")
        # StopDialing now, UnloadCampaign only later
        actions = [r.action for r in receiver.matching(receiver.state_of(101))]
        assert actions[-1] == 10 and 8 not in actions, actions

        forced = await run_ocsd(*base, "force-unload", "101")
        assert forced.returncode == 0, forced.stderr
        assert json.loads(forced.stdout)["campaigngroup"]["status"]["name"] == "NotLoaded"
        assert "message" not in json.loads(forced.stdout)
        (last,) = (await receiver.wait_for(len(actions) + 1, receiver.state_of(101)))[-1:]
        assert (last.action, last.status) == (29, 0)
    assert "Traceback" not in proc.stdout_text + proc.stderr_text


async def test_unload_without_calls_in_progress_says_nothing_more(
    ocsd_process, run_ocsd, write_ini, ini_sections, receiver
) -> None:
    config = write_ini(ini_sections(receiver.url, interval=0, **IDLE_A))
    async with ocsd_process(config) as proc:
        await run_ocsd("ctl", "--url", proc.control_url, "load", "101")
        unload = await run_ocsd("ctl", "--url", proc.control_url, "unload", "101")
    assert unload.returncode == 0, unload.stderr
    answer = json.loads(unload.stdout)
    assert answer["campaigngroup"]["status"]["name"] == "NotLoaded"
    assert "waiting_unload" not in answer and "message" not in answer
    assert unload.stderr == ""


async def test_ctl_pointed_at_the_sink_says_it_is_not_the_control_api(ocsd_sink, run_ocsd) -> None:
    async with ocsd_sink() as (_sink, url):
        for action in (("status",), ("load", "101"), ("stop", "101")):
            done = await run_ocsd("ctl", "--url", url, *action)
            assert done.returncode == 3, (action, done.stdout, done.stderr)
            assert done.stdout == ""
            (line,) = done.stderr.splitlines()
            assert line.startswith(f"ocsd ctl: {url} is an ocsd sink (the receiver): "), line
            assert "control-port (default 8090)" in line
        # the health of the sink itself is fine to ask (docker-compose.yml's check does)
        health = await run_ocsd("ctl", "--url", url, "--timeout", "3", "health")
        assert health.returncode == 0, health.stderr
        assert json.loads(health.stdout)["status"] == "ok"


async def test_ctl_pointed_at_another_server_says_it_is_not_an_ocsd_control_api(
    receiver, run_ocsd
) -> None:
    done = await run_ocsd("ctl", "--url", receiver.url, "status")
    assert done.returncode == 3, done.stdout + done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"ocsd ctl: {receiver.url} is not an ocsd control API: GET "), line


async def test_control_api_says_a_dbid_past_32_bits_is_out_of_range(
    ocsd_process, write_ini, ini_sections, receiver
) -> None:
    config = write_ini(ini_sections(receiver.url, interval=0))
    answers = {}
    timeout = aiohttp.ClientTimeout(total=10)
    async with ocsd_process(config) as proc, aiohttp.ClientSession(timeout=timeout) as http:
        for dbid in ("99999999999999999999", "2147483648", "0", "1" * 100, "12x"):
            async with http.get(f"{proc.control_url}/campaigngroups/{dbid}") as answer:
                assert answer.headers["X-Ocsd-Api"] == "control"
                answers[dbid] = (answer.status, (await answer.json())["error"])
        async with http.get(f"{proc.control_url}/campaigngroups/101") as known:
            assert (known.status, known.headers["X-Ocsd-Api"]) == (200, "control")
    assert proc.control_url.startswith(f"http://{LOCALHOST}:")
    assert answers == {
        "99999999999999999999": (
            400,
            "dbid: 99999999999999999999 is out of range; allowed: a whole number "
            "from 1 to 2147483647",
        ),
        "2147483648": (
            400,
            "dbid: 2147483648 is out of range; allowed: a whole number from 1 to 2147483647",
        ),
        "0": (400, "dbid: 0 is out of range; allowed: a whole number from 1 to 2147483647"),
        "1" * 100: (
            400,
            f"dbid: {'1' * 40}... is out of range; allowed: a whole number from 1 to 2147483647",
        ),
        "12x": (400, "dbid: must be a whole number, got '12x'"),
    }
