"""What the configuration says to a user: unknown OCSD_* variables, a configuration that
would send nothing, check-config's output read back, refusals of agents = 0, and the
words of the shutdown summary (pure functions, no process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocsd.config.settings import (
    ConfigError,
    describe_settings,
    load_settings,
    silence_warnings,
    unknown_variable,
)
from ocsd.core.genesys import Actor, DialMode, GroupStatus, Request, agents_refusal
from ocsd.core.identity import GroupIdentity
from ocsd.core.lifecycle import CampaignGroup, Dialing, DialingChange, InvalidParameter
from ocsd.service.daemon import duration_words, shutdown_summary

SMALL = """
[OCServer]
send-campaigngroup-states = true
campaigngroup-states-uri = http://127.0.0.1:9/x

[calling-list:L]
dbid = 5

[campaign-group:G]
dbid = 7
campaign = C
group = G
queue = Q
calling-lists = L
"""


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.upper().startswith("OCSD_"):
            monkeypatch.delenv(name)


def _write(tmp_path: Path, text: str, name: str = "ocsd.ini") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- unknown OCSD_* variables ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "meant"),
    [
        (
            "OCSD_CAMPAIGNGROUP_STATE_URI",
            "OCSD_CAMPAIGNGROUP_STATES_URI ([OCServer] campaigngroup-states-uri)",
        ),
        ("OCSD_NAME", "OCSD_TENANT_NAME ([tenant] name)"),
        ("ocsd_control_prot", "OCSD_CONTROL_PORT ([ocsd] control-port)"),
        ("OCSD_CONFG", "OCSD_CONFIG"),
    ],
)
def test_an_unknown_variable_names_the_closest_option(variable: str, meant: str) -> None:
    problem = unknown_variable(variable)
    assert problem is not None
    assert problem.startswith(
        f"environment {variable}: no option has this name; did you mean {meant}?"
    )


@pytest.mark.parametrize(
    "variable",
    [
        "OCSD_CONFIG",
        "OCSD_TIME_SCALE",
        "ocsd_time_scale",
        "OCSD_IMAGE",
        "OCSD_BASE_IMAGE",
        "OCSD_UID",
        "OCSD_CONTROL_PUBLISH_PORT",
        "OCSD_TEST_OUTAGE_S",
        "OCSD_CI_VENV",
        "OCSD_SMOKE_IMAGE",
        "OCSD_CAMPAIGN_GROUPS",  # refused elsewhere, with its own reason
    ],
)
def test_options_and_tooling_variables_are_not_unknown(variable: str) -> None:
    assert unknown_variable(variable) is None


def test_load_settings_refuses_an_unknown_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCSD_TIME_SCAEL", "60")
    with pytest.raises(ConfigError, match=r"^environment OCSD_TIME_SCAEL: .*OCSD_TIME_SCALE"):
        load_settings(_write(tmp_path, SMALL))


# -- a configuration that sends nothing -------------------------------------------------------


def test_no_ocserver_section_warns_that_nothing_will_be_sent(tmp_path: Path) -> None:
    text = SMALL.split("[calling-list:L]", 1)[1]
    (warning,) = silence_warnings(load_settings(_write(tmp_path, "[calling-list:L]" + text)))
    assert warning.startswith("nothing will be sent: [OCServer] send-campaigngroup-states is false")
    assert (
        "set send-campaigngroup-states = true and campaigngroup-states-uri in [OCServer]" in warning
    )
    assert "\n" not in warning


def test_no_group_or_none_in_the_shard_warns_too(tmp_path: Path) -> None:
    no_group = SMALL.split("[calling-list:L]", 1)[0]
    (warning,) = silence_warnings(load_settings(_write(tmp_path, no_group, "a.ini")))
    assert warning.startswith("nothing will be sent: no campaign group is configured")
    other_shard = SMALL + "\n[ocsd]\nshard = 2/2\n"  # dbid 7 is in shard 2/2: 7 % 2 == 1
    assert silence_warnings(load_settings(_write(tmp_path, other_shard, "b.ini"))) == []
    empty_shard = SMALL + "\n[ocsd]\nshard = 1/2\n"
    (warning,) = silence_warnings(load_settings(_write(tmp_path, empty_shard, "c.ini")))
    assert "no configured group is in [ocsd] shard 1/2" in warning


def test_a_sending_configuration_has_no_warning(tmp_path: Path) -> None:
    assert silence_warnings(load_settings(_write(tmp_path, SMALL))) == []


# -- check-config's output reads back ---------------------------------------------------------


def test_the_effective_settings_read_back_to_the_same_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = SMALL + (
        "\n[ocsd]\nseed = 3\ntime-scale = 12345.678\nretry-schedule = 0.015, 86399.99\n"
        "control-allowed-origins = https://admin.example:8443\n"
    )
    monkeypatch.setenv("OCSD_TENANT_NAME", "Two\nLines")  # continued on an indented line
    first = load_settings(_write(tmp_path, text))
    described = describe_settings(first)
    again = load_settings(_write(tmp_path, described, "again.ini"))
    assert again == first
    assert describe_settings(again) == described
    assert "\nname = Two\n    Lines\n" in described
    assert "\nseed = 3\n" in described and "\nmax-attempts =\n" in described
    assert "; uuid is not set: derived from the dbid, " in described


def test_secrets_and_a_uri_password_are_comments_that_say_where_to_give_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCSD_CONTROL_TOKEN", "a-control-token-of-32-characters")
    uri = "http://user:s3cret@127.0.0.1:9/x"
    settings = load_settings(_write(tmp_path, SMALL.replace("http://127.0.0.1:9/x", uri)))
    described = describe_settings(settings)
    assert "s3cret" not in described and "a-control-token" not in described
    assert (
        "; control-token is set (not shown: give it again in OCSD_CONTROL_TOKEN or here)"
        in described
    )
    assert "; campaigngroup-states-uri = http://***@127.0.0.1:9/x (its password" in described
    monkeypatch.setenv("OCSD_CAMPAIGNGROUP_STATES_URI", uri)
    again = load_settings(_write(tmp_path, described, "again.ini"))
    assert again == settings


def test_a_value_an_ini_line_cannot_hold_is_a_comment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCSD_TENANT_NAME", "Team #1")  # " #" would start a comment
    described = describe_settings(load_settings(_write(tmp_path, SMALL)))
    assert "\n; name cannot be written in INI (it holds ' #'" in described
    assert "set it in OCSD_TENANT_NAME" in described


# -- agents = 0 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [m for m in DialMode if m != DialMode.NONE])
def test_every_mode_but_the_gvp_ones_needs_agents(mode: DialMode) -> None:
    refusal = agents_refusal(mode, 0)
    assert (refusal is None) == mode.name.endswith("_GVP")
    assert agents_refusal(mode, 1) is None and agents_refusal(mode, None) is None


def test_a_group_without_agents_refuses_to_start_in_a_mode_that_needs_them() -> None:
    identity = GroupIdentity("G", 7, "u", "C", "G", "Q", None, ())
    group = CampaignGroup(identity, Dialing(DialMode.POWER_GVP), agents=0)
    group.apply(Request.LOAD, Actor.CLIENT, 0.0)
    with pytest.raises(InvalidParameter, match=r"^dialmode: progressive dials for agents"):
        group.apply(Request.START, Actor.CLIENT, 1.0, DialingChange(mode=DialMode.PROGRESSIVE))
    assert group.status == GroupStatus.ACTIVE  # unchanged
    group.apply(Request.START, Actor.CLIENT, 2.0)
    assert group.status == GroupStatus.RUNNING


def test_the_file_refuses_agents_zero_with_a_mode_or_a_schedule_that_needs_them(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match=r":15: \[campaign-group:G\] agents: predictive dials"):
        load_settings(_write(tmp_path, SMALL + "agents = 0\n"))
    gvp = SMALL + "agents = 0\ndial-mode = power-gvp\n"
    assert load_settings(_write(tmp_path, gvp, "gvp.ini")).campaign_groups["G"].agents == 0
    scheduled = gvp + "schedule = +1m load; +2m start preview\n"
    with pytest.raises(ConfigError, match=r"schedule: '\+2m start preview': preview dials for"):
        load_settings(_write(tmp_path, scheduled, "s.ini"))


# -- the shutdown summary ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0, "0 s"), (59.4, "59 s"), (59.6, "1 min 00 s"), (3599, "59 min 59 s"),
     (3600, "1 h 00 min"), (50_399, "13 h 59 min"), (86_400 * 2 + 3600, "2 d 01 h")],
)  # fmt: skip
def test_durations_in_whole_units(seconds: float, words: str) -> None:
    assert duration_words(seconds) == words


def test_the_summary_has_no_internal_counter() -> None:
    fields = shutdown_summary(
        uptime_s=7384.2,
        groups=3,
        loaded=1,
        sent={"state": 12, "periodic": 1500},
        failed=2,
        dropped=0,
        retried=0,
        dead_lettered=0,
        reloads={"applied": 1},
    )
    assert fields["summary"] == (
        "ran 2 h 03 min with 3 campaign group(s) (1 loaded at the stop); notifications sent "
        "1,512 (12 state, 1,500 periodic), failed 2, dropped 0"
    )
    assert fields["notifications_sent"] == 1512 and fields["reloads_applied"] == 1
    assert not any("tick" in key for key in fields)


# -- more of the same kind: where an error points, and a misspelt option ----------------------


def test_a_dialing_mistake_points_at_its_own_option(tmp_path: Path) -> None:
    """It was "[campaign-group:G] (section): optimizegoal: ..." at the section's header."""
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, SMALL + "optimize-goal = 500\n"))
    assert str(caught.value).endswith(
        ":15: [campaign-group:G] optimize-goal: busy-factor goal is a percent in 1..100, got 500"
    )


@pytest.mark.parametrize(
    ("line", "hint"),
    [
        ("agent = 3", "agent: unknown option; did you mean agents? (known: "),
        (
            "redial-delay = 60",
            "redial-delay: unknown option; redial-delay is an option of [calling-list:<name>] (known: ",
        ),
    ],
)
def test_an_unknown_option_names_the_closest_or_its_section(
    tmp_path: Path, line: str, hint: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, SMALL + line + "\n"))
    assert f":15: [campaign-group:G] {hint}" in str(caught.value)
