"""End to end: what ``ocsd run``, ``check-config``, a reload and ``ocsd ctl`` say about a
configuration that would do nothing or that holds a mistake, and the daemon's own log
lines a user reads (who changed a group, the summary at the stop).

Real ``ocsd`` subprocesses (``run_ocsd``, ``ocsd_process``), real files, a real receiver.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

import pytest
from support.ini import GROUP_A

pytestmark = pytest.mark.e2e

NOTHING_SENT = "nothing will be sent: [OCServer] send-campaigngroup-states is false"


def _without_ocserver(sections: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: options for name, options in sections.items() if name != "OCServer"}


# -- item 5: mistakes that passed silently -------------------------------------------------


async def test_check_config_warns_once_that_nothing_will_be_sent(
    ini_sections, write_ini, run_ocsd, ocsd_env
):
    config = write_ini(_without_ocserver(ini_sections(None)))
    done = await run_ocsd("check-config", "--config", str(config), env=ocsd_env())
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "nothing will be sent" in line]
    assert len(warnings) == 1, done.stderr
    assert warnings[0].startswith(f"ocsd: warning: {NOTHING_SENT}")
    assert "send-campaigngroup-states = true" in warnings[0]  # which option turns it on
    assert "[OCServer]" in warnings[0] and "OCSD_SEND_CAMPAIGNGROUP_STATES" in warnings[0]


async def test_run_warns_once_that_nothing_will_be_sent(ini_sections, write_ini, ocsd_process):
    sections = ini_sections(None)  # [OCServer] send-campaigngroup-states = false
    async with ocsd_process(write_ini(sections)) as proc:
        lines = await proc.wait_for_line(
            lambda line: isinstance(line, dict) and NOTHING_SENT in str(line.get("event"))
        )
        assert lines[0]["level"] == "warning"
        assert "send-campaigngroup-states = true" in lines[0]["event"]
    assert len([line for line in proc.raw_stdout if "nothing will be sent" in line]) == 1


async def test_a_sending_configuration_gets_no_warning(
    receiver, ini_sections, write_ini, run_ocsd, ocsd_env
):
    config = write_ini(ini_sections(receiver.url))
    done = await run_ocsd("check-config", "--config", str(config), env=ocsd_env())
    assert done.returncode == 0 and "warning" not in done.stderr, done.stderr


@pytest.mark.parametrize("command", ["check-config", "run"])
async def test_an_ocsd_variable_that_names_no_option_is_refused(
    command, receiver, ini_sections, write_ini, run_ocsd, ocsd_env
):
    config = write_ini(ini_sections(receiver.url))
    env = ocsd_env(OCSD_CAMPAIGNGROUP_STATE_URI="http://127.0.0.1:9/x")  # "STATE", not "STATES"
    done = await run_ocsd(command, "--config", str(config), env=env)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("ocsd: configuration error: environment OCSD_CAMPAIGNGROUP_STATE_URI")
    assert (
        "did you mean OCSD_CAMPAIGNGROUP_STATES_URI ([OCServer] campaigngroup-states-uri)" in line
    )
    assert "Traceback" not in done.stderr and done.stdout == ""


@pytest.mark.parametrize("command", ["check-config", "run"])
@pytest.mark.parametrize(
    ("variable", "value", "position"),
    [
        ("OCSD_TENANT_NAME", "bad\udcff\udcfeenc", 4),  # bytes 0xff 0xfe: not UTF-8
        ("OCSD_CAMPAIGNGROUP_STATES_URI", "http://127.0.0.1:9/ok/\udcffx", 23),
    ],
)
async def test_an_ocsd_variable_that_is_not_utf8_is_refused(
    command, variable, value, position, receiver, ini_sections, write_ini, run_ocsd, ocsd_env
):
    """Such bytes passed check-config and then broke run (a traceback at start-up, or a
    group activated with no body to send): now both refuse them, without the value."""
    config = write_ini(ini_sections(receiver.url))
    done = await run_ocsd(command, "--config", str(config), env=ocsd_env(**{variable: value}))
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line == (
        f"ocsd: configuration error: environment {variable}: the value is not valid UTF-8 "
        f"(byte 0xff at position {position}); give it in UTF-8"
    )
    assert done.stdout == ""


async def test_variables_that_are_not_options_still_work(
    receiver, ini_sections, write_ini, run_ocsd, ocsd_env
):
    """OCSD_CONFIG names the file; those of the container, compose, CI and the tests
    (OCSD_IMAGE, OCSD_CONTROL_PUBLISH_PORT, OCSD_TEST_*...) are left alone."""
    config = write_ini(ini_sections(receiver.url))
    env = ocsd_env(
        OCSD_CONFIG=str(config),
        OCSD_IMAGE="ocsd:local",
        OCSD_CONTROL_PUBLISH_PORT="8090",
        OCSD_TEST_OUTAGE_S="4",
        OCSD_CI_VENV="/tmp/venv",
        OCSD_TENANT_NAME="From The Environment",
    )
    done = await run_ocsd("check-config", env=env)
    assert done.returncode == 0, done.stderr
    assert f"# effective settings of {config}" in done.stdout
    assert "\nname = From The Environment\n" in done.stdout


async def test_ctl_with_a_missing_config_file_is_an_error(run_ocsd, ocsd_env):
    done = await run_ocsd("ctl", "--config", "/missing.ini", "status", env=ocsd_env())
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "ocsd ctl: configuration error: /missing.ini: configuration file not found"
    ]
    assert done.stdout == ""


# -- item 6: errors that hid the cause -----------------------------------------------------


def _line_of(config: Path, text: str) -> int:
    return config.read_text(encoding="utf-8").splitlines().index(text) + 1


BAD_VALUES = [
    # (section, option, value, what the message says after "[section] option: ")
    (
        f"campaign-group:{GROUP_A}",
        "agents",
        "twenty",
        "'twenty' is not a whole number; allowed: a whole number from 0 to 10000",
    ),
    (
        "calling-list:Renewals_Q4",
        "live-answer-rate",
        "22",
        "'22' is out of range; allowed: 0 to 1 (a fraction: 0.3 is 30 %)",
    ),
    (
        f"campaign-group:{GROUP_A}",
        "auto-complete",
        "maybe",
        "'maybe' is not a yes/no value; allowed: true or false (also yes/no, on/off, 1/0)",
    ),
    (
        "ocsd",
        "log-format",
        "xml",
        "'xml' is not one of the choices; allowed: json, console or genesys",
    ),
    (
        f"campaign-group:{GROUP_A}",
        "uuid",
        "12",
        "'12' is not a UUID; allowed: 32 hex digits such as 266c83fc-a72a-5eb3-a801-e4b26189e160 "
        "(leave uuid out: derived from the dbid)",
    ),
    (
        f"campaign-group:{GROUP_A}",
        "dial-mode",
        "turbo",
        "unknown dial mode 'turbo'; accepted: none (0), predictive (1),",
    ),
    (
        f"campaign-group:{GROUP_A}",
        "agents",
        "20 ; twenty agents",
        "'20 ; twenty agents' is not a whole number; allowed: a whole number from 0 to 10000 "
        "(';' starts a comment only at the start of a line, so the text after it is part of "
        "the value; put the comment on a line of its own, or after ' #')",
    ),
]


@pytest.mark.parametrize(("section", "option", "value", "expected"), BAD_VALUES)
async def test_a_bad_value_is_named_with_its_place_and_the_accepted_form(
    section, option, value, expected, receiver, ini_sections, write_ini, run_ocsd, ocsd_env
):
    """check-config and run say the same line: file:line, section, option, the value as
    written and what is accepted."""
    config = write_ini(ini_sections(receiver.url, **{section: {option: value}}))
    place = f"{config}:{_line_of(config, f'{option} = {value}')}: [{section}] {option}: "
    for command in ("check-config", "run"):
        done = await run_ocsd(command, "--config", str(config), env=ocsd_env())
        assert done.returncode == 2, (command, done.stdout)
        (line,) = done.stderr.splitlines()
        assert line.startswith(f"ocsd: configuration error: {place}{expected}"), (command, line)


async def test_an_inline_hash_comment_is_accepted(
    receiver, ini_sections, write_ini, run_ocsd, ocsd_env
):
    config = write_ini(ini_sections(receiver.url, **{f"campaign-group:{GROUP_A}": {"agents": 20}}))
    text = config.read_text(encoding="utf-8").replace("agents = 20", "agents = 20 # twenty agents")
    config.write_text(text, encoding="utf-8")
    done = await run_ocsd("check-config", "--config", str(config), env=ocsd_env())
    assert done.returncode == 0, done.stderr
    assert "\nagents = 20\n" in done.stdout


async def test_a_reload_refuses_a_bad_value_with_the_same_line(
    receiver, ini_sections, write_ini, rewrite_ini, ocsd_process, run_ocsd, ocsd_env
):
    config = write_ini(ini_sections(receiver.url))
    async with ocsd_process(config) as proc:
        bad = ini_sections(receiver.url, **{f"campaign-group:{GROUP_A}": {"agents": "20 ; x"}})
        rewrite_ini(config, bad)
        checked = await run_ocsd("check-config", "--config", str(config), env=ocsd_env())
        proc.send_signal(signal.SIGHUP)
        (refused,) = await proc.wait_for_line(
            lambda line: (
                isinstance(line, dict) and line.get("event", "").startswith("configuration refused")
            ),
            within=15,
        )
    expected = checked.stderr.strip().removeprefix("ocsd: configuration error: ")
    assert refused["error"] == expected
    assert "';' starts a comment only at the start of a line" in expected


# -- item 8: check-config's output is a configuration ----------------------------------------


async def test_check_config_output_reads_back_to_the_same_settings(
    tmp_path, receiver, ini_sections, write_ini, run_ocsd, ocsd_env
):
    sections = ini_sections(
        receiver.url,
        ocsd={
            "seed": 42,
            "time-scale": "12345.678",
            "delivery-mode": "reliable",
            "retry-schedule": "0.015, 1, 2.5",
            "max-attempts": 4,
            "outbox-path": str(tmp_path / "outbox.sqlite3"),
            "dead-letter-path": str(tmp_path / "dead.jsonl"),
            "shard": "1/1",
            "control-allowed-hosts": "ocsd.internal, 10.0.0.5",
        },
        **{f"campaign-group:{GROUP_A}": {"schedule": "+30s load; +1m start; 17:00 unload"}},
    )
    # secrets never printed: they come from the environment, on both reads
    env = ocsd_env(
        OCSD_CONTROL_TOKEN="a-control-token-of-32-characters",
        OCSD_WEBHOOK_SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    )
    first = await run_ocsd("check-config", "--config", str(write_ini(sections)), env=env)
    assert first.returncode == 0, first.stderr
    assert "a-control-token" not in first.stdout and "whsec_" not in first.stdout
    assert "; control-token is set (not shown" in first.stdout
    fed_back = tmp_path / "effective.ini"
    fed_back.write_text(first.stdout, encoding="utf-8")
    second = await run_ocsd("check-config", "--config", str(fed_back), env=env)
    assert second.returncode == 0, second.stderr

    def body(out: str) -> list[str]:
        return out.splitlines()[1:]  # the first line names the file read

    assert body(second.stdout) == body(first.stdout)
    assert "\nseed = 42\n" in first.stdout and "\nmax-attempts = 4\n" in first.stdout
    assert "\ntime-scale = 12345.678\n" in first.stdout


async def test_the_embedded_example_reads_back_to_itself(tmp_path, run_ocsd, ocsd_env):
    first = await run_ocsd("check-config", env=ocsd_env())
    fed_back = tmp_path / "effective.ini"
    fed_back.write_text(first.stdout, encoding="utf-8")
    second = await run_ocsd("check-config", "--config", str(fed_back), env=ocsd_env())
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[1:] == first.stdout.splitlines()[1:]


# -- item 13: agents = 0, who changed a group, the summary at the stop ---------------------


async def test_agents_zero_with_a_mode_that_needs_agents_is_refused_by_check_config(
    receiver, ini_sections, write_ini, run_ocsd, ocsd_env
):
    config = write_ini(ini_sections(receiver.url, **{f"campaign-group:{GROUP_A}": {"agents": 0}}))
    done = await run_ocsd("check-config", "--config", str(config), env=ocsd_env())
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert f"[campaign-group:{GROUP_A}] agents: predictive dials for agents" in line
    assert "with agents = 0 the group would run and dial nothing" in line


async def test_start_dialing_a_mode_that_needs_agents_without_agents_is_a_400(
    receiver, ini_sections, write_ini, ocsd_process, control_for, run_ocsd
):
    """Group 103 has agents = 0 and dials predictive-gvp (IVR ports); StartDialing it in
    predictive is refused with the reason, and nothing changes."""
    async with ocsd_process(write_ini(ini_sections(receiver.url))) as proc:
        control = control_for(proc.control_url)
        await control.ok(103, "LoadCampaign")
        status, answer = await control.act(103, "StartDialing", dialmode="predictive")
        assert status == 400, answer
        assert "predictive dials for agents" in answer["error"]
        assert "use a GVP mode" in answer["error"]
        assert (await control.group(103))["status"]["name"] == "Active"
        ctl = await run_ocsd("ctl", "--url", proc.control_url, "start", "103", "--mode", "power")
        assert ctl.returncode == 1 and "power dials for agents" in ctl.stdout
        await control.ok(103, "StartDialing")  # its own GVP mode dials
        assert (await control.group(103))["status"]["name"] == "Running"


async def test_a_waiting_unload_completes_naming_who_asked_for_it(
    receiver, ini_sections, write_ini, ocsd_process, control_for
):
    """The "changed by OCS" line of a completed WaitingUnload names the control API caller
    whose UnloadCampaign waited; auto-completion names OCS."""
    sections = ini_sections(receiver.url, ocsd={"time-scale": 2000, "seed": 7})
    async with ocsd_process(write_ini(sections)) as proc:
        control = control_for(proc.control_url)
        await control.ok(101, "LoadCampaign")
        await control.ok(101, "StartDialing")
        for _ in range(50):  # until calls are in progress (simulated minutes pass fast)
            status, answer = await control.act(101, "UnloadCampaign")
            if answer.get("campaigngroup", {}).get("status", {}).get("name") == "WaitingUnload":
                break
            assert status in (200, 409), answer
            await control.ok(101, "LoadCampaign")
            await control.ok(101, "StartDialing")
        else:
            pytest.fail("no UnloadCampaign found calls in progress")
        (line,) = await proc.wait_for_line(
            lambda line: (
                isinstance(line, dict) and line.get("event") == "campaign group changed by OCS"
            ),
            within=60,
        )
    assert line["actor"] == "client" and line["dbid"] == 101 and line["action"] == 8
    assert re.fullmatch(r"control API caller 127\.0\.0\.1", line["by"]), line
    assert line["reason"].startswith("the last call in progress ended")


async def test_the_shutdown_summary_speaks_in_user_terms(
    receiver, ini_sections, write_ini, ocsd_process, control_for
):
    async with ocsd_process(write_ini(ini_sections(receiver.url, interval=1))) as proc:
        control = control_for(proc.control_url)
        await control.ok(103, "LoadCampaign")
        await receiver.wait_for(2, receiver.periodic_of(103), within=10)
    (line,) = proc.json_lines(event="ocsd stopped")
    assert "ticks" not in line
    assert line["groups"] == 3 and line["groups_loaded"] == 1
    assert line["state_notifications_sent"] >= 1 and line["periodic_notifications_sent"] >= 2
    assert line["notifications_sent"] == (
        line["state_notifications_sent"] + line["periodic_notifications_sent"]
    )
    assert re.fullmatch(r"\d+ s|\d+ min \d\d s", line["uptime"]), line["uptime"]
    assert re.fullmatch(
        r"ran (\d+ s|\d+ min \d\d s) with 3 campaign group\(s\) \(1 loaded at the stop\); "
        r"notifications sent \d+ \(\d+ state, \d+ periodic\), failed 0, dropped 0",
        line["summary"],
    ), line["summary"]
