"""``[campaign-group-template:<name>]``: many groups from one section, the same as written out."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocsd.config.settings import ConfigError, load_settings, template_expansions

HEAD = "[OCServer]\nsend-campaigngroup-states = false\n"
TEMPLATE = """
[campaign-group-template:Load]
count = 3
first-dbid = 500
name = Load {n:03d}
campaign = Load
group = Team {n}
queue = 7001
agents = 12
records = 2000
live-answer-rate = 0.4
"""
WRITTEN = """
[calling-list:Load 001 list]
dbid = 503
records = 2000
live-answer-rate = 0.4
[campaign-group:Load 001]
dbid = 500
campaign = Load
group = Team 1
queue = 7001
agents = 12
calling-lists = Load 001 list
[calling-list:Load 002 list]
dbid = 504
records = 2000
live-answer-rate = 0.4
[campaign-group:Load 002]
dbid = 501
campaign = Load
group = Team 2
queue = 7001
agents = 12
calling-lists = Load 002 list
[calling-list:Load 003 list]
dbid = 505
records = 2000
live-answer-rate = 0.4
[campaign-group:Load 003]
dbid = 502
campaign = Load
group = Team 3
queue = 7001
agents = 12
calling-lists = Load 003 list
"""


def _write(tmp_path: Path, text: str, name: str = "ocsd.ini") -> Path:
    path = tmp_path / name
    path.write_text(HEAD + text, encoding="utf-8")
    return path


def test_a_template_gives_the_same_settings_as_its_groups_written_out(tmp_path):
    templated = load_settings(_write(tmp_path, TEMPLATE, "t.ini"))
    written = load_settings(_write(tmp_path, WRITTEN, "w.ini"))
    assert templated == written
    assert list(templated.campaign_groups) == ["Load 001", "Load 002", "Load 003"]


def test_check_config_shows_each_template_in_one_line(tmp_path):
    (line,) = template_expansions(_write(tmp_path, TEMPLATE))
    assert line == (
        "[campaign-group-template:Load]: 3 campaign groups, 'Load 001' to 'Load 003' "
        "(DBIDs 500 to 502), each with its own calling list (DBIDs 503 to 505)"
    )


CASES = [
    ("agents = 12", "agents = twelve",
     "ocsd.ini:11: [campaign-group-template:Load] (its group or list "
     "[campaign-group:Load 001]) agents: 'twelve'"),
    ("count = 3", "count = 0",
     "ocsd.ini:5: [campaign-group-template:Load] count: 0 is out of range"),
    ("name = Load {n:03d}", "name = Load",
     "ocsd.ini:7: [campaign-group-template:Load] name: 'Load' gives 'Load' twice; use {n} in it"),
    ("name = Load {n:03d}", "name = Load {m}", "cannot be filled in"),
    ("queue = 7001", "calling-lists = X",
     "ocsd.ini:10: [campaign-group-template:Load] calling-lists: each expanded group has its own"),
    ("agents = 12", "agentz = 12",
     "ocsd.ini:11: [campaign-group-template:Load] agentz: unknown option; did you mean agents?"),
    # a width that would take gigabytes (it was a MemoryError traceback), one taken from
    # another field, a pattern whose filled-in value is too long
    ("name = Load {n:03d}", "name = Load {n:>300000000}",
     "ocsd.ini:7: [campaign-group-template:Load] name: 'Load {n:>300000000}': the format "
     "{...:>300000000} asks for 300,000,000 characters; allowed: at most 1,024"),
    ("name = Load {n:03d}", "name = Load {n:{dbid}}",
     "a format width must be a number, not another field"),
    ("name = Load {n:03d}", "name = Load {n}" + "x" * 2000, "gives 2,006 characters"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "mistake", "says"), CASES)
def test_a_mistake_in_a_template_names_its_line(tmp_path, line, mistake, says):
    path = _write(tmp_path, TEMPLATE.replace(line, mistake))
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert says in str(caught.value), str(caught.value)


def test_a_name_made_twice_is_refused_naming_both(tmp_path):
    text = (
        TEMPLATE + "[campaign-group:Load 002]\ndbid = 9\ncampaign = C\ngroup = G\n"
        "queue = 1\ncalling-lists = Load 001 list\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, text))
    assert "makes [campaign-group:Load 002], which [campaign-group:Load 002] has too" in str(
        caught.value
    )


def test_dbids_of_a_template_must_not_collide(tmp_path):
    text = TEMPLATE.replace("count = 3", "count = 3\nlist-first-dbid = 501")
    with pytest.raises(ConfigError, match="501"):
        load_settings(_write(tmp_path, text))


def test_templates_make_at_most_200000_groups_in_all(tmp_path):
    """A one-line count cannot ask for more memory than a 64 MiB file could."""
    over = TEMPLATE.replace("count = 3", "count = 200001")
    with pytest.raises(ConfigError, match="count: 200001 is out of range"):
        load_settings(_write(tmp_path, over))
    two = TEMPLATE.replace("count = 3", "count = 150000") + TEMPLATE.replace(
        "[campaign-group-template:Load]", "[campaign-group-template:More]"
    ).replace("count = 3", "count = 150000").replace("first-dbid = 500", "first-dbid = 900000")
    with pytest.raises(ConfigError, match="the templates make 300,000 campaign groups"):
        load_settings(_write(tmp_path, two.replace("name = Load {n:03d}", "name = {template} {n}")))
