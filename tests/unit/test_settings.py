"""Configuration: the INI file, the environment, and errors that name their place."""

from __future__ import annotations

import os
import uuid
from importlib import resources
from pathlib import Path

import pytest

from ocsd.config.definitions import group_identity
from ocsd.config.settings import ConfigError, describe_settings, load_settings
from ocsd.core.genesys import DialMode, OptimizeBy
from ocsd.core.identity import CallingListIdentity

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "ocsd.ini"

#: A valid group with one calling list, eight lines long; error tests append to it.
GROUP_AND_LIST = (
    "[calling-list:L1]",  # 1
    "dbid = 201",  # 2
    "[campaign-group:G1]",  # 3
    "dbid = 101",  # 4
    "campaign = C",  # 5
    "group = Team",  # 6
    "queue = 7001",  # 7
    "calling-lists = L1",  # 8
)


@pytest.fixture(autouse=True)
def _no_ocsd_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own OCSD_* variables must not leak into these tests."""
    for name in list(os.environ):
        if name.upper().startswith("OCSD_"):
            monkeypatch.delenv(name)


def ini_file(tmp_path: Path, *lines: str, name: str = "ocsd.ini") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sending_to(tmp_path: Path, uri: str) -> Path:
    """A file that sends to ``uri``, given on its line 3."""
    return ini_file(
        tmp_path,
        "[OCServer]",  # 1
        "send-campaigngroup-states = true",  # 2
        f"campaigngroup-states-uri = {uri}",  # 3
    )


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def assert_names_place(message: str, path: Path, line: int, section: str, option: str) -> None:
    assert message.startswith(f"{path}:{line}: "), message
    assert f"[{section}]" in message, message
    assert option in message, message


# -- defaults and parsing -----------------------------------------------------------


def test_defaults_of_an_empty_file(tmp_path: Path) -> None:
    settings = load_settings(ini_file(tmp_path, "; nothing set"))

    assert settings.send_campaigngroup_states is False
    assert settings.campaigngroup_states_uri is None
    assert settings.campaigngroup_states_interval == 10
    assert settings.http_response_timeout == 10.0
    assert settings.http_connection_pool_size == 10
    assert (settings.tenant_name, settings.tenant_ccid) == ("Unknown", "Unknown")
    assert (settings.control_host, settings.control_port) == ("127.0.0.1", 8090)
    assert settings.log_format == "json"
    assert settings.campaign_groups == {}
    assert settings.delivers is False


def test_ocserver_options_are_read(tmp_path: Path) -> None:
    path = ini_file(
        tmp_path,
        "[OCServer]",
        "send-campaigngroup-states = true",
        "campaigngroup-states-uri = https://receiver.example:8443/ocs/state",
        "campaigngroup-states-interval = 0",
        "http-response-timeout = 2.5",
        "http-connection-pool-size = 32",
        "[tenant]",
        "name = Environment",
        "ccid = 101",
    )

    settings = load_settings(path)

    assert settings.send_campaigngroup_states is True
    assert settings.campaigngroup_states_uri == "https://receiver.example:8443/ocs/state"
    assert settings.campaigngroup_states_interval == 0
    assert settings.http_response_timeout == 2.5
    assert settings.http_connection_pool_size == 32
    assert (settings.tenant_name, settings.tenant_ccid) == ("Environment", "101")
    assert settings.delivers is True


def test_groups_and_lists_by_name(tmp_path: Path) -> None:
    path = ini_file(
        tmp_path,
        "[calling-list:Q4]",
        "dbid = 201",
        "[calling-list:Lapsed]",
        "dbid = 202",
        "[campaign-group:Renewals@Retention Team]",
        "dbid = 101",
        "campaign = Renewals",
        "group = Retention Team",
        "template = Retention Template",
        "queue = 7001",
        "dial-mode = Predictive-With-Seizing",
        "optimize-by = overdial-rate",
        "optimize-goal = 3",
        "calling-lists = Q4 ,  Lapsed",
    )

    settings = load_settings(path)
    group = settings.campaign_groups["Renewals@Retention Team"]
    identity = group_identity(settings, "Renewals@Retention Team")

    assert group.dial_mode == DialMode.PREDICTIVE_WITH_SEIZING
    assert group.optimize_by == OptimizeBy.OVERDIAL_RATE
    assert group.optimize_goal == 3
    assert group.calling_lists == ("Q4", "Lapsed")
    assert identity.dbid == 101
    assert (identity.campaign, identity.group, identity.queue) == (
        "Renewals",
        "Retention Team",
        "7001",
    )
    assert identity.template == "Retention Template"
    assert identity.calling_lists == (
        CallingListIdentity("Q4", 201),
        CallingListIdentity("Lapsed", 202),
    )


def test_dial_mode_and_optimize_by_as_genesys_numbers(tmp_path: Path) -> None:
    path = ini_file(
        tmp_path, *GROUP_AND_LIST, "dial-mode = 10", "optimize-by = 3", "optimize-goal = 20"
    )

    group = load_settings(path).campaign_groups["G1"]

    assert group.dial_mode == DialMode.PREDICTIVE_GVP
    assert group.optimize_by == OptimizeBy.AVERAGE_WAITING_TIME


def test_a_group_without_template_has_none(tmp_path: Path) -> None:
    settings = load_settings(ini_file(tmp_path, *GROUP_AND_LIST))
    assert group_identity(settings, "G1").template is None


def test_an_empty_template_is_left_out_and_an_empty_tenant_is_unknown(tmp_path: Path) -> None:
    settings = load_settings(
        ini_file(tmp_path, "[tenant]", "name =", "ccid =", *GROUP_AND_LIST, "template =")
    )
    assert group_identity(settings, "G1").template is None
    assert (settings.tenant_name, settings.tenant_ccid) == ("Unknown", "Unknown")


@pytest.mark.parametrize("option", ["campaign", "group", "queue"])
def test_an_empty_mandatory_name_is_refused(tmp_path: Path, option: str) -> None:
    lines = [line for line in GROUP_AND_LIST if not line.startswith(f"{option} =")]
    path = ini_file(tmp_path, *lines, f"{option} =")
    assert_names_place(config_error(path), path, 8, "campaign-group:G1", option)


def test_derived_uuid_depends_only_on_the_dbid(tmp_path: Path) -> None:
    first = load_settings(ini_file(tmp_path, *GROUP_AND_LIST, name="a.ini"))
    again = load_settings(ini_file(tmp_path, *GROUP_AND_LIST, name="a.ini"))
    renamed = load_settings(
        ini_file(
            tmp_path,
            *(line.replace("G1", "Renamed") for line in GROUP_AND_LIST),
            name="b.ini",
        )
    )
    other_dbid = load_settings(
        ini_file(
            tmp_path,
            *(line.replace("dbid = 101", "dbid = 102") for line in GROUP_AND_LIST),
            name="c.ini",
        )
    )

    derived = group_identity(first, "G1").uuid
    assert str(uuid.UUID(derived)) == derived
    assert group_identity(again, "G1").uuid == derived
    assert group_identity(renamed, "Renamed").uuid == derived
    assert group_identity(other_dbid, "G1").uuid != derived


def test_a_configured_uuid_is_kept(tmp_path: Path) -> None:
    configured = "0d6b3a52-9a7e-4c71-8f0e-2f5d1c7b9e44"
    path = ini_file(tmp_path, *GROUP_AND_LIST, f"uuid = {configured}")

    assert group_identity(load_settings(path), "G1").uuid == configured


# -- the environment beats the file --------------------------------------------------


def test_environment_beats_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = ini_file(
        tmp_path,
        "[OCServer]",
        "campaigngroup-states-interval = 10",
        "[tenant]",
        "name = FromFile",
    )
    monkeypatch.setenv("OCSD_CAMPAIGNGROUP_STATES_INTERVAL", "3")
    monkeypatch.setenv("OCSD_TENANT_NAME", "FromEnvironment")

    settings = load_settings(path)

    assert settings.campaigngroup_states_interval == 3
    assert settings.tenant_name == "FromEnvironment"


def test_environment_alone_turns_delivery_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCSD_SEND_CAMPAIGNGROUP_STATES", "true")
    monkeypatch.setenv("OCSD_CAMPAIGNGROUP_STATES_URI", "http://127.0.0.1:9000/state")

    settings = load_settings(ini_file(tmp_path, "[OCServer]"))

    assert settings.delivers is True
    assert settings.campaigngroup_states_uri == "http://127.0.0.1:9000/state"


# -- errors name the file, line, section and option ------------------------------------


def test_unknown_option(tmp_path: Path) -> None:
    path = ini_file(
        tmp_path,
        "[OCServer]",  # 1
        "send-campaigngroup-states = false",  # 2
        "campaigngroup-state-interval = 5",  # 3: typo
    )
    message = config_error(path)
    assert_names_place(message, path, 3, "OCServer", "campaigngroup-state-interval")
    assert "unknown option" in message


def test_unknown_option_in_a_group(tmp_path: Path) -> None:
    path = ini_file(tmp_path, *GROUP_AND_LIST, "colour = blue")  # 9
    message = config_error(path)
    assert_names_place(message, path, 9, "campaign-group:G1", "colour")


def test_unknown_section(tmp_path: Path) -> None:
    path = ini_file(
        tmp_path,
        "[OCServer]",  # 1
        "",  # 2
        "[OCSever]",  # 3: typo
        "http-response-timeout = 5",  # 4
    )
    message = config_error(path)
    assert message.startswith(f"{path}:3: "), message
    assert "[OCSever]" in message
    assert "unknown section" in message


def test_group_naming_a_missing_calling_list(tmp_path: Path) -> None:
    lines = list(GROUP_AND_LIST)
    lines[7] = "calling-lists = L1, L2"  # 8
    path = ini_file(tmp_path, *lines)
    message = config_error(path)
    assert_names_place(message, path, 8, "campaign-group:G1", "calling-lists")
    assert "'L2'" in message


def test_duplicate_dbid_of_two_groups(tmp_path: Path) -> None:
    path = ini_file(
        tmp_path,
        *GROUP_AND_LIST,
        "[campaign-group:G2]",  # 9
        "dbid = 101",  # 10
        "campaign = C2",
        "group = Team",
        "queue = 7002",
        "calling-lists = L1",
    )
    message = config_error(path)
    assert_names_place(message, path, 10, "campaign-group:G2", "dbid")
    assert "[campaign-group:G1]" in message


def test_duplicate_dbid_of_a_group_and_a_list(tmp_path: Path) -> None:
    path = ini_file(
        tmp_path,
        *GROUP_AND_LIST,
        "[calling-list:L2]",  # 9
        "dbid = 101",  # 10
    )
    message = config_error(path)
    assert_names_place(message, path, 10, "calling-list:L2", "dbid")
    assert "[campaign-group:G1]" in message


def test_a_calling_list_named_twice_by_a_group(tmp_path: Path) -> None:
    """Its records and its GSW_CALLING_LISTS entry were counted twice."""
    lines = list(GROUP_AND_LIST)
    lines[7] = "calling-lists = L1, L1"  # 8
    path = ini_file(tmp_path, *lines)
    message = config_error(path)
    assert_names_place(message, path, 8, "campaign-group:G1", "calling-lists")
    assert "names calling list 'L1' twice" in message


def g2(*lines: str) -> tuple[str, ...]:
    return ("[campaign-group:G2]", "dbid = 102", "campaign = C", "group = T2", "queue = 7002",
            "calling-lists = L1", *lines)  # fmt: skip


def test_two_groups_with_one_uuid(tmp_path: Path) -> None:
    """Receivers key on GSW_CAMPAIGN_GROUP_UUID: two groups with one are one to them."""
    shared = "0d6b3a52-9a7e-4c71-8f0e-2f5d1c7b9e44"
    path = ini_file(tmp_path, *GROUP_AND_LIST, f"uuid = {shared}", *g2(f"uuid = {shared.upper()}"))
    message = config_error(path)
    assert_names_place(message, path, 16, "campaign-group:G2", "uuid")
    assert f"uuid {shared} is already the uuid of [campaign-group:G1]" in message


def test_a_configured_uuid_that_is_another_groups_derived_one(tmp_path: Path) -> None:
    """A section copied from check-config's output keeps the uuid derived for the first."""
    derived = str(
        uuid.uuid5(uuid.UUID("6f1d3c2a-6b7e-5d1c-9a0e-0c5d0e0a7c11"), "campaign-group/101")
    )
    path = ini_file(tmp_path, *GROUP_AND_LIST, *g2(f"uuid = {derived}"))
    message = config_error(path)
    assert_names_place(message, path, 15, "campaign-group:G2", "uuid")
    assert "is already the uuid of [campaign-group:G1] (derived from its dbid)" in message


@pytest.mark.parametrize(
    "uri", ["ftp://receiver.example/state", "receiver.example/state", "http:///no-host"]
)
def test_uri_must_be_http_or_https(tmp_path: Path, uri: str) -> None:
    path = sending_to(tmp_path, uri)  # the URI on line 3
    message = config_error(path)
    assert_names_place(message, path, 3, "OCServer", "campaigngroup-states-uri")


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        # a "/" in the password ends the authority: the host would be "user" and the
        # port the password's start, which the message must not show
        ("http://user:PW/SECRET@127.0.0.1:80/", "comes before the '@' that ends user:password"),
        ("http://user:12345/SECRET@127.0.0.1:8080/x", "percent-encode them"),
        ("http://user:pw@127.0.0.1:8080:90/x", "the port '8080:90' is not a whole number"),
    ],
)
def test_a_uri_the_client_would_misread_is_refused_without_its_password(
    tmp_path: Path, uri: str, says: str
) -> None:
    path = sending_to(tmp_path, uri)  # the URI on line 3
    message = config_error(path)
    assert_names_place(message, path, 3, "OCServer", "campaigngroup-states-uri")
    assert says in message
    assert "SECRET" not in message and "PW" not in message and "pw" not in message


def test_a_percent_encoded_password_is_accepted(tmp_path: Path) -> None:
    path = sending_to(tmp_path, "http://us%2Fer:p%40ss%2Fword@127.0.0.1:8080/events")
    assert load_settings(path).campaigngroup_states_uri.endswith("@127.0.0.1:8080/events")


def test_sending_without_a_uri(tmp_path: Path) -> None:
    path = ini_file(
        tmp_path,
        "[OCServer]",  # 1: where the missing option belongs
        "send-campaigngroup-states = true",  # 2
        "campaigngroup-states-interval = 5",  # 3
    )
    message = config_error(path)
    assert_names_place(message, path, 1, "OCServer", "campaigngroup-states-uri")
    assert "required" in message


def test_bad_dial_mode_name(tmp_path: Path) -> None:
    path = ini_file(tmp_path, *GROUP_AND_LIST, "dial-mode = turbo")  # 9
    message = config_error(path)
    assert_names_place(message, path, 9, "campaign-group:G1", "dial-mode")
    assert "turbo" in message
    assert "progressive (2)" in message


def test_negative_interval(tmp_path: Path) -> None:
    path = ini_file(
        tmp_path,
        "; comment",  # 1
        "[OCServer]",  # 2
        "campaigngroup-states-interval = -1",  # 3
    )
    message = config_error(path)
    assert_names_place(message, path, 3, "OCServer", "campaigngroup-states-interval")


def test_error_in_a_section_written_in_lower_case_still_names_the_line(tmp_path: Path) -> None:
    path = ini_file(
        tmp_path,
        "[ocserver]",  # 1: section names are accepted in any case
        "campaigngroup-states-interval = -1",  # 2
    )
    message = config_error(path)
    assert_names_place(message, path, 2, "OCServer", "campaigngroup-states-interval")


def test_bad_environment_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCSD_CAMPAIGNGROUP_STATES_INTERVAL", "soon")
    path = ini_file(tmp_path, "[OCServer]", "campaigngroup-states-interval = 10")

    message = config_error(path)

    assert message.startswith("environment OCSD_CAMPAIGNGROUP_STATES_INTERVAL"), message
    assert "[OCServer] campaigngroup-states-interval" in message


def test_two_variables_that_differ_only_by_case_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Variable names ignore case: one of the two overrode the other in silence."""
    monkeypatch.setenv("OCSD_HTTP_RESPONSE_TIMEOUT", "5")
    monkeypatch.setenv("ocsd_http_response_timeout", "7")
    path = ini_file(tmp_path, "[OCServer]")
    assert config_error(path) == (
        "environment: OCSD_HTTP_RESPONSE_TIMEOUT and ocsd_http_response_timeout are both set "
        "(variable names ignore case); keep one"
    )


@pytest.mark.parametrize("variable", ["OCSD_CAMPAIGN_GROUPS", "OCSD_CALLING_LISTS"])
def test_groups_and_lists_come_from_the_file_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """OCSD_CAMPAIGN_GROUPS='{}' removed every group of the file in silence."""
    monkeypatch.setenv(variable, "{}")
    path = ini_file(tmp_path, *GROUP_AND_LIST)
    assert config_error(path) == (
        f"environment {variable}: campaign groups and calling lists are configured in the "
        "file only ([campaign-group:<name>] and [calling-list:<name>] sections)"
    )


def test_duplicate_option_in_a_section(tmp_path: Path) -> None:
    path = ini_file(
        tmp_path,
        "[tenant]",  # 1
        "name = A",  # 2
        "ccid = 1",  # 3
        "name = B",  # 4
    )
    message = config_error(path)
    assert_names_place(message, path, 4, "tenant", "name")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.ini"
    message = config_error(path)
    assert message.startswith(f"{path}: ")
    assert "not found" in message


# -- describe_settings and the embedded example ---------------------------------------


def test_describe_settings_never_shows_the_password(tmp_path: Path) -> None:
    path = ini_file(
        tmp_path,
        "[OCServer]",
        "send-campaigngroup-states = true",
        "campaigngroup-states-uri = https://ocs:s3cr3t-pw@receiver.example:8443/state",
        *GROUP_AND_LIST,
    )

    text = describe_settings(load_settings(path))

    assert "s3cr3t-pw" not in text
    assert "receiver.example:8443/state" in text
    assert "[campaign-group:G1]" in text


def test_embedded_config_is_the_example_file() -> None:
    embedded = resources.files("ocsd.config").joinpath("example.ini").read_bytes()

    assert embedded == REPO_CONFIG.read_bytes()
    assert load_settings(None) == load_settings(REPO_CONFIG)


def test_the_example_config_loads() -> None:
    settings = load_settings(None)

    assert settings.delivers is True
    assert set(settings.campaign_groups) == {
        "Renewals@Retention Team",
        "Collections@Collections Desk",
        "Customer Survey@IVR",
    }


# -- shard: several instances share the groups of one file ------------------------------------


@pytest.mark.parametrize(
    ("written", "shard"),
    [("2/4", "2/4"), ("1/1", "1/1"), (" 3 / 3 ", "3/3"), ("01/04", "1/4"), ("", None)],
)
def test_shard_is_read_and_normalised(tmp_path: Path, written: str, shard: str | None) -> None:
    settings = load_settings(ini_file(tmp_path, "[ocsd]", f"shard = {written}"))
    assert (None if settings.shard is None else str(settings.shard)) == shard


def test_no_shard_by_default(tmp_path: Path) -> None:
    settings = load_settings(ini_file(tmp_path, *GROUP_AND_LIST))
    assert settings.shard is None
    assert all(settings.in_shard(dbid) for dbid in (0, 1, 2, 101, 10**12))


@pytest.mark.parametrize(
    "written",
    ["3/2", "0/2", "1/0", "0/0", "-1/2", "1/-2", "2", "1/2/3", "a/b", "1.0/2", "1/\uff12"],
)
def test_a_bad_shard_names_the_option_and_what_is_expected(tmp_path: Path, written: str) -> None:
    path = ini_file(tmp_path, "[ocsd]", "seed = 1", f"shard = {written}")  # line 3
    assert config_error(path) == (
        f"{path}:3: [ocsd] shard: {written!r} is not K/N with 1 <= K <= N, nor auto"
    )


def test_the_environment_sets_the_shard_of_each_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = ini_file(tmp_path, "[ocsd]", "shard = 1/2", *GROUP_AND_LIST)
    assert str(load_settings(path).shard) == "1/2"

    monkeypatch.setenv("OCSD_SHARD", "2/2")
    assert str(load_settings(path).shard) == "2/2"

    monkeypatch.setenv("OCSD_SHARD", "3/2")
    assert config_error(path) == (
        "environment OCSD_SHARD ([ocsd] shard): '3/2' is not K/N with 1 <= K <= N, nor auto"
    )


def test_in_shard_is_dbid_mod_n_equal_to_k_minus_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = ini_file(tmp_path, *GROUP_AND_LIST)
    monkeypatch.setenv("OCSD_SHARD", "2/3")
    settings = load_settings(path)
    assert [dbid for dbid in range(1, 11) if settings.in_shard(dbid)] == [1, 4, 7, 10]


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_the_shards_of_n_instances_own_each_group_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    path = ini_file(tmp_path, *GROUP_AND_LIST)
    instances = []
    for k in range(1, n + 1):
        monkeypatch.setenv("OCSD_SHARD", f"{k}/{n}")
        instances.append(load_settings(path))
    for dbid in range(1, 200):
        assert sum(settings.in_shard(dbid) for settings in instances) == 1


def test_the_example_documents_shard_and_check_config_shows_it() -> None:
    text = REPO_CONFIG.read_text(encoding="utf-8")
    assert "\n; shard = 1/2\n" in text and "OCSD_SHARD" in text
    assert "\nshard =\n" in describe_settings(load_settings(None)) + "\n"


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("OCSD_TENANT_NAME", "Acme\x1b[31m", "a control character (U+001B at position 5)"),
        ("OCSD_WEBHOOK_SECRET", "whsec_\x7fabc", "a control character (U+007F at position 7)"),
    ],
)
def test_a_variable_with_a_control_character_is_refused_without_its_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    """Such a value went on into log lines and bodies as it was."""
    monkeypatch.setenv(variable, value)
    message = config_error(ini_file(tmp_path, "[ocsd]"))
    assert f"environment {variable}" in message and says in message
    assert value not in message and "abc" not in message
