"""Genesys enumerations: parsing names and numbers, status spelling, URI redaction."""

from __future__ import annotations

from enum import IntEnum

import pytest

from ocsd.core.genesys import DialMode, GroupStatus, OptimizeBy, parse_enum, status_name
from ocsd.logs.redact import redact_uri


@pytest.mark.parametrize(
    ("enum", "text", "expected"),
    [
        (DialMode, "predictive", DialMode.PREDICTIVE),
        (DialMode, "Predictive", DialMode.PREDICTIVE),
        (DialMode, "PREDICTIVE", DialMode.PREDICTIVE),
        (DialMode, "push-preview", DialMode.PUSH_PREVIEW),
        (DialMode, "PushPreview", DialMode.PUSH_PREVIEW),
        (DialMode, "predictive_with_seizing", DialMode.PREDICTIVE_WITH_SEIZING),
        (DialMode, "Predictive With Seizing", DialMode.PREDICTIVE_WITH_SEIZING),
        (DialMode, " progressive-gvp ", DialMode.PROGRESSIVE_GVP),
        (DialMode, "none", DialMode.NONE),
        (OptimizeBy, "busy-factor", OptimizeBy.BUSY_FACTOR),
        (OptimizeBy, "BusyFactor", OptimizeBy.BUSY_FACTOR),
        (OptimizeBy, "overdial_rate", OptimizeBy.OVERDIAL_RATE),
        (OptimizeBy, "average-distribution-time", OptimizeBy.AVERAGE_DISTRIBUTION_TIME),
    ],
)
def test_parse_enum_accepts_names(enum: type[IntEnum], text: str, expected: IntEnum) -> None:
    assert parse_enum(enum, text) is expected


@pytest.mark.parametrize("value", [5, "5", " 5 "])
def test_parse_enum_accepts_numbers_as_int_or_text(value: int | str) -> None:
    assert parse_enum(DialMode, value) is DialMode.PREDICTIVE_WITH_SEIZING


def test_parse_enum_accepts_every_genesys_number() -> None:
    assert [parse_enum(DialMode, n) for n in range(12)] == list(DialMode)
    assert [parse_enum(OptimizeBy, str(n)) for n in range(5)] == list(OptimizeBy)
    assert parse_enum(GroupStatus, "-1") is GroupStatus.UNKNOWN


@pytest.mark.parametrize("value", ["turbo", "12", 12, -3, "", "predictive-seizingx"])
def test_parse_enum_refuses_unknown_values_and_lists_the_accepted_ones(
    value: int | str,
) -> None:
    with pytest.raises(ValueError) as info:
        parse_enum(DialMode, value)

    message = str(info.value)
    assert repr(value) in message
    for accepted in ("none (0)", "predictive (1)", "push-preview (8)", "power-gvp (11)"):
        assert accepted in message


def test_parse_enum_refuses_a_boolean() -> None:
    with pytest.raises(ValueError):
        parse_enum(OptimizeBy, True)


def test_optimize_by_accepts_no_maximum_gain() -> None:
    with pytest.raises(ValueError) as info:
        parse_enum(OptimizeBy, "maximum-gain")
    assert "busy-factor (1)" in str(info.value)


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (GroupStatus.UNKNOWN, "Unknown"),
        (GroupStatus.NOT_LOADED, "NotLoaded"),
        (GroupStatus.WAITING_UNLOAD, "WaitingUnload"),
        (GroupStatus.UNLOAD_IN_PROGRESS, "UnloadInProgress"),
        (GroupStatus.INACTIVE, "InActive"),
        (GroupStatus.ACTIVE, "Active"),
        (GroupStatus.RUNNING, "Running"),
    ],
)
def test_status_name_is_the_genesys_spelling(status: GroupStatus, name: str) -> None:
    assert status_name(status) == name
    assert status_name(int(status)) == name


def test_status_name_of_an_unknown_number_is_the_number() -> None:
    assert status_name(42) == "42"


# -- redact_uri -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "redacted"),
    [
        (
            "http://ocs:s3cr3t@receiver.example:8080/state",
            "http://***@receiver.example:8080/state",
        ),
        ("https://ocs@receiver.example/state", "https://***@receiver.example/state"),
        ("http://u:p@ss@receiver.example/state", "http://***@receiver.example/state"),
        (
            "https://receiver.example/state?token=abc123&site=paris",
            "https://receiver.example/state?token=***&site=paris",
        ),
        (
            "https://receiver.example/state?api_key=k1&Password=p1&sig=s1&page=2",
            "https://receiver.example/state?api_key=***&Password=***&sig=***&page=2",
        ),
    ],
)
def test_redact_uri_removes_credentials(uri: str, redacted: str) -> None:
    assert redact_uri(uri) == redacted


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:8080/ocs/campaign-group-state",
        "https://receiver.example/state?site=paris&page=2",
        "https://receiver.example/state#top",
        "https://receiver.example/state?site=New%20York",
        "https://receiver.example/state?debug",
    ],
)
def test_redact_uri_leaves_a_uri_without_secrets_unchanged(uri: str) -> None:
    assert redact_uri(uri) == uri
