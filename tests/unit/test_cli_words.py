"""The words of the command line and of the control API's answers, as pure functions."""

from __future__ import annotations

import argparse
import re

import pytest

from ocsd.cli.arguments import Parser, bounded, listen_port
from ocsd.cli.main import not_control_api
from ocsd.config.ranges import DBID
from ocsd.service.controller import waiting_unload


def test_waiting_unload_names_the_calls_what_follows_and_the_way_out() -> None:
    one = waiting_unload("Renewals@Retention Team", 101, 1)
    assert one["waiting_unload"]["calls_in_progress"] == 1
    assert one["message"] == (
        "campaign group Renewals@Retention Team (101) is WaitingUnload with 1 call in "
        "progress: the UnloadCampaign notification follows when they end; "
        "ForceUnloadCampaign (ocsd ctl force-unload 101) unloads at once"
    )
    assert "with 20 calls in progress" in waiting_unload("G", 7, 20)["message"]


def test_not_control_api_names_the_sink_and_the_answer() -> None:
    assert not_control_api("GET", "/campaigngroups", 405, "sink") == (
        "is an ocsd sink (the receiver): GET /campaigngroups answered 405 Method Not "
        "Allowed; the daemon's control API listens on control-port (default 8090): check "
        "--url or --config"
    )
    assert not_control_api("GET", "/healthz", 599, "").startswith(
        "is not an ocsd control API: GET /healthz answered 599;"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("65535", 65535),
        (
            "99999",
            "99999 is out of range; allowed: a whole number from 0 to 65535 (0: any free port)",
        ),
        ("-1", "-1 is out of range; allowed: a whole number from 0 to 65535 (0: any free port)"),
        ("80.5", "'80.5' is not a whole number"),
    ],
)
def test_listen_port(text: str, expected: int | str) -> None:
    if isinstance(expected, int):
        assert listen_port(text) == expected
    else:
        with pytest.raises(argparse.ArgumentTypeError, match=re.escape(expected)):
            listen_port(text)


def test_a_parser_error_is_one_line_without_the_usage(capsys: pytest.CaptureFixture[str]) -> None:
    parser = Parser(prog="ocsd ctl status")
    parser.add_argument("dbid", type=bounded(DBID))
    with pytest.raises(SystemExit) as stopped:
        parser.parse_args(["0"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err == (
        "ocsd ctl status: dbid: 0 is out of range; allowed: a whole number from 1 to 2147483647\n"
    )


def test_help_shows_defaults_in_words_when_there_is_none_to_print() -> None:
    parser = Parser(prog="p")
    parser.add_argument("--n", type=int, default=3, help="a count")
    parser.add_argument("--flag", action="store_true", help="a switch")
    parser.add_argument("--file", help="a file (default: $X)")
    text = " ".join(parser.format_help().split())
    assert "a count (default: 3)" in text
    assert "a switch (default: off)" in text
    assert "a file (default: $X)" in text and "None" not in text
