"""End to end: the real ``ocsd run`` subprocess, a real receiver, its stdout log.

Every process is started through the ``ocsd_process`` fixture (or ``run_ocsd`` for
commands that end by themselves) and stopped by its own pid.
"""

from __future__ import annotations

import base64
import itertools
import re
import signal
import socket
import time

import pytest
from support.ini import IDLE_A

pytestmark = pytest.mark.e2e

GROUP_A = "Renewals@Retention Team"  # dbid 101
STATE_TEXT = (
    "Sending HTTP status notification CampaignGroupState for Campaign Group {name} to {uri}"
)
PERIODIC_TEXT = "Sending periodic HTTP status notification CampaignGroupState for Campaign Group {name} to {uri}"


def _is_81000(line):
    return isinstance(line, dict) and line.get("msgid") == 81000


def _is_81001(line):
    return isinstance(line, dict) and line.get("msgid") == 81001


async def test_life_cycle_bodies_and_log_lines(
    receiver, ini_sections, write_ini, ocsd_process, control_for, run_ocsd
):
    # Group 101 without records dials nothing: its unload completes at once. The unload
    # that waits for calls in progress: tests/integration/test_waiting_unload.py.
    idle = IDLE_A
    config = write_ini(ini_sections(receiver.url, interval=1, **idle))
    async with ocsd_process(config) as proc:
        control = control_for(proc.control_url)
        await control.ok(101, "LoadCampaign")
        await receiver.wait_for(1, receiver.state_of(101))
        # periodic bodies every interval while loaded
        ticks = await receiver.wait_for(2, receiver.periodic_of(101), within=4)
        await control.ok(
            101, "StartDialing", dialmode="predictive", optimizeby="busy-factor", optimizegoal=85
        )
        ctl = await run_ocsd(
            "ctl", "--url", proc.control_url, "setmode", "101", "--dialmode", "progressive"
        )
        assert ctl.returncode == 0, ctl.stderr
        assert '"Running"' in ctl.stdout
        await control.ok(101, "StopDialing")
        await control.ok(101, "UnloadCampaign")
        await receiver.wait_for(5, receiver.state_of(101))
        unloaded_at = len(receiver.received)
        await proc.wait_for_line(_is_81000, n=5)
        await receiver.settle(1.4)  # a tick would come within this
        code = await proc.stop()
    assert code == 0, proc.stderr_text

    state = [r.json for r in receiver.matching(receiver.state_of(101))]
    assert [
        (
            b["GSW_CAMPAIGN_GROUP_ACTION"],
            b["GSW_CAMPAIGN_GROUP_STATUS"],
            b["GSW_CAMPAIGN_GROUP_ACTOR"],
        )
        for b in state
    ] == [(7, 4, 1), (9, 5, 1), (11, 5, 1), (10, 4, 1), (8, 0, 1)], "one body per change, in order"
    load, start, setmode, stop, unload = state
    assert (start["GSW_DIAL_MODE"], start["GSW_OPTIMIZE_BY"], start["GSW_OPTIMIZE_GOAL"]) == (
        1,
        1,
        85,
    )
    assert setmode["GSW_DIAL_MODE"] == 2
    assert "GSW_OPTIMIZE_BY" not in setmode and "GSW_OPTIMIZE_GOAL" not in setmode
    for body in (load, stop, unload):
        assert "GSW_DIAL_MODE" not in body
    for body in state:
        assert body["GSW_USER_EVENT"] == "CampaignGroupState"
        assert body["GSW_CAMPAIGN_GROUP_NAME"] == GROUP_A
        assert body["GSW_CAMPAIGN_TEMPLATE_NAME"] == "Retention Outbound Template"

    lines_81000 = [line for line in proc.stdout_lines if _is_81000(line)]
    assert len(lines_81000) == 5, "exactly one 81000 line per change"
    expected = STATE_TEXT.format(name=GROUP_A, uri=receiver.url)
    for line in lines_81000:
        assert line["event"] == expected
        assert line["level"] == "trace"
        assert line["campaign_group"] == GROUP_A
        assert line["uri"] == receiver.url

    # periodic: ~1 s apart while loaded, none after the unload, one 81001 line each
    gaps = [b.at - a.at for a, b in itertools.pairwise(ticks[:2])]
    assert all(0.7 < gap < 1.3 for gap in gaps), gaps
    periodic = receiver.matching(lambda r: r.periodic)
    assert all(r.json["GSW_CAMPAIGN_GROUP_ACTOR"] == 0 for r in periodic)
    assert [r for r in receiver.received[unloaded_at:] if r.periodic] == []
    lines_81001 = [line for line in proc.stdout_lines if _is_81001(line)]
    assert len(lines_81001) == len(periodic) >= 2
    for line in lines_81001:
        assert line["event"] == PERIODIC_TEXT.format(name=GROUP_A, uri=receiver.url)
        assert line["level"] == "trace"


async def test_genesys_log_format(receiver, ini_sections, write_ini, ocsd_process, control_for):
    config = write_ini(ini_sections(receiver.url, log_format="genesys"))
    async with ocsd_process(config) as proc:
        await control_for(proc.control_url).ok(101, "LoadCampaign")
        await receiver.wait_for(1)
        pattern = re.compile(
            r"^\d\d:\d\d:\d\d\.\d{3} Trc 81000 Sending HTTP status notification "
            r"CampaignGroupState for Campaign Group .+ to http://"
        )
        (line,) = await proc.wait_for_line(lambda line: bool(pattern.match(str(line))))
        assert line.endswith(f" Trc 81000 {STATE_TEXT.format(name=GROUP_A, uri=receiver.url)}"), (
            line
        )
        code = await proc.stop()
    assert code == 0
    assert not any(isinstance(line, dict) for line in proc.stdout_lines), "JSON in genesys format"


async def test_credentials_in_the_uri_are_never_logged(
    receiver, ini_sections, write_ini, ocsd_process, control_for, run_ocsd
):
    uri = receiver.url_for("/path", userinfo="user:s3cret")
    config = write_ini(ini_sections(uri))
    receiver.queue_behaviours("ok", "status500", "close")  # log the failure paths too
    async with ocsd_process(config) as proc:
        control = control_for(proc.control_url)
        await control.ok(101, "LoadCampaign")
        await control.ok(101, "StartDialing")
        await control.ok(101, "StopDialing")
        await receiver.wait_for(3)
        await proc.wait_for_line(lambda line: isinstance(line, dict) and "reason" in line, n=2)
        code = await proc.stop()
    checked = await run_ocsd("check-config", "--config", str(config))
    assert checked.returncode == 0, checked.stderr

    assert code == 0
    assert [r.path for r in receiver.received] == ["/path"] * 3
    token = base64.b64encode(b"user:s3cret").decode()
    assert receiver.received[0].headers.get("Authorization") == f"Basic {token}"
    for output in (proc.stdout_text, proc.stderr_text, checked.stdout, checked.stderr):
        assert "s3cret" not in output
        assert "user:" not in output
    (first,) = [line for line in proc.stdout_lines if _is_81000(line)][:1]
    assert first["event"].startswith("Sending HTTP status notification CampaignGroupState")
    assert first["event"].endswith(f"127.0.0.1:{receiver.port}/path")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_stop_signal_exits_zero(
    receiver, ini_sections, write_ini, ocsd_process, control_for, sig
):
    config = write_ini(ini_sections(receiver.url, interval=1))
    async with ocsd_process(config) as proc:
        await control_for(proc.control_url).ok(101, "LoadCampaign")
        await receiver.wait_for(1)
        started = time.monotonic()
        code = await proc.stop(sig)
        elapsed = time.monotonic() - started
    assert code == 0, proc.stderr_text
    assert elapsed < 3, f"took {elapsed:.1f} s to stop"
    assert proc.json_lines(event="ocsd stopped")
    assert "Traceback" not in proc.stderr_text + proc.stdout_text


async def test_sigterm_while_the_receiver_hangs(
    receiver, ini_sections, write_ini, ocsd_process, control_for
):
    receiver.set_behaviour("hang")
    config = write_ini(ini_sections(receiver.url, timeout=1))
    async with ocsd_process(config) as proc:
        await control_for(proc.control_url).ok(101, "LoadCampaign")
        await receiver.wait_for(1)  # the POST is in flight, held by the receiver
        started = time.monotonic()
        code = await proc.stop(signal.SIGTERM)
        elapsed = time.monotonic() - started
    assert code == 0, proc.stderr_text
    assert elapsed < 3.5, f"in-flight POST not abandoned after 1 s: exit took {elapsed:.1f} s"
    assert proc.json_lines(event="ocsd stopped")
    assert "Traceback" not in proc.stderr_text + proc.stdout_text


def _line_of(text, prefix):
    return next(n for n, line in enumerate(text.splitlines(), start=1) if line.startswith(prefix))


@pytest.mark.parametrize(
    ("section", "option", "value"),
    [
        pytest.param("OCServer", "campaigngroup-states-interval", "soon", id="bad-integer"),
        pytest.param("OCServer", "send-campaign-states", "true", id="unknown-option"),
        pytest.param(
            "campaign-group:Renewals@Retention Team", "dial-mode", "warp", id="bad-dial-mode"
        ),
        pytest.param("ocsd", "control-port", "99999", id="port-out-of-range"),
    ],
)
async def test_check_config_names_the_bad_line(
    ini_sections, write_ini, run_ocsd, receiver, section, option, value
):
    sections = ini_sections(receiver.url)
    sections[section][option] = value
    path = write_ini(sections, name="bad.ini")
    line = _line_of(path.read_text(), f"{option} = {value}")

    result = await run_ocsd("check-config", "--config", str(path))

    assert result.returncode != 0
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, f"one line expected: {result.stderr!r}"
    assert f"{path}:{line}" in message
    assert option in message
    assert "Traceback" not in result.stderr + result.stdout


async def test_occupied_control_port(ini_sections, write_ini, run_ocsd, receiver):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_ini(ini_sections(receiver.url, control_port=port))
        result = await run_ocsd("run", "--config", str(config), within=10)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert str(port) in output
    assert "control-port" in output
    assert "Traceback" not in output


async def test_embedded_example_without_config(receiver, ocsd_process, control_for, ocsd_env):
    env = ocsd_env(OCSD_CONTROL_PORT="0", OCSD_CAMPAIGNGROUP_STATES_URI=receiver.url)
    assert "OCSD_CONFIG" not in env
    async with ocsd_process(None, env=env) as proc:
        control = control_for(proc.control_url)
        status, data = await control.request("GET", "/campaigngroups")
        assert status == 200
        assert [(g["dbid"], g["name"]) for g in data["campaigngroups"]] == [
            (101, "Renewals@Retention Team"),
            (102, "Collections@Collections Desk"),
            (103, "Customer Survey@IVR"),
        ]
        await control.ok(102, "LoadCampaign")
        (body,) = [r.json for r in await receiver.wait_for(1)]
        code = await proc.stop()
    assert code == 0
    assert body["GSW_CAMPAIGN_GROUP_NAME"] == "Collections@Collections Desk"
    assert body["GSW_TENANT_NAME"] == "Environment"
