"""The decisions of a reload, without a daemon: when the configuration file may be read,
what counts as an empty file, and when a configuration without groups is refused."""

from __future__ import annotations

import pytest
from support.identities import numbered_identity

from ocsd.core.engine import Engine, GroupDefinition
from ocsd.core.genesys import Actor, DialMode, Request
from ocsd.core.lifecycle import Dialing
from ocsd.core.simulation import GroupModel
from ocsd.service.config_file import OLD_FILE_S, SETTLE_S, blank, settled
from ocsd.service.reload import every_group_lost

NOW = 1763912345.5
FRESH = (int(NOW * 1e9), 1200, 7)  # modified just now
OLD = (int((NOW - OLD_FILE_S - 1) * 1e9), 1200, 7)


@pytest.mark.parametrize(
    ("stat", "unchanged_for", "expected"),
    [
        pytest.param(FRESH, 0.0, False, id="just-written"),
        pytest.param(FRESH, SETTLE_S / 2, False, id="not-long-enough"),
        pytest.param(FRESH, SETTLE_S, True, id="unchanged-while-watched"),
        pytest.param(OLD, 0.0, True, id="modified-long-ago"),
        pytest.param(None, 0.0, False, id="missing-just-now"),
        pytest.param(None, SETTLE_S, True, id="missing-for-a-while"),
    ],
)
def test_a_file_is_read_once_it_has_stopped_changing(stat, unchanged_for, expected) -> None:
    assert settled(stat, unchanged_for, NOW) is expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", True),
        (b"\n  \n\t\n", True),
        (b"; a comment\n  # another\n\n", True),
        (b"\xef\xbb\xbf", True),  # a BOM alone
        (b"[tenant]\n", False),
        (b"name = x\n", False),
        (b"; comment\n[ocsd]\nlog-format = json\n", False),
        (b"\xff\xfe garbage", False),  # not empty: the INI reader says what is wrong
    ],
)
def test_an_empty_file_is_blank_lines_and_comments_only(data: bytes, expected: bool) -> None:
    assert blank(data) is expected


def _definition(dbid: int) -> GroupDefinition:
    identity = numbered_identity(dbid)
    model = GroupModel(name=identity.name, dbid=dbid, lists=(), agents=2)
    return GroupDefinition(identity, Dialing(DialMode.PROGRESSIVE), model)


@pytest.fixture
def engine() -> Engine:
    return Engine([_definition(dbid) for dbid in range(101, 106)], wall_start=NOW - 60, seed=1)


def test_no_groups_is_refused_only_while_some_are_loaded(engine: Engine) -> None:
    definitions = engine.definitions
    assert every_group_lost({}, engine.groups) is None, "nothing loaded: nothing is lost"
    engine.request(102, Request.LOAD, Actor.CLIENT, NOW)
    reason = every_group_lost({}, engine.groups)
    assert reason is not None
    assert "defines no campaign group" in reason
    assert f"1 loaded would be force-unloaded ({engine.group(102).identity.name})" in reason
    assert every_group_lost({102: definitions[102]}, engine.groups) is None
    assert every_group_lost({101: definitions[101]}, engine.groups) is None, (
        "removing some groups is an ordinary edit"
    )


def test_the_refusal_names_a_few_loaded_groups(engine: Engine) -> None:
    for dbid in range(101, 106):
        engine.request(dbid, Request.LOAD, Actor.CLIENT, NOW)
    reason = every_group_lost({}, engine.groups)
    assert reason is not None
    assert "5 loaded" in reason and "and 2 more" in reason
