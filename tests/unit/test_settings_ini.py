"""The one-pass INI reader: it must read what configparser read, and refuse what it refused.

ocsd used configparser (``inline_comment_prefixes=("#",)``, ``strict=True``,
``empty_lines_in_values=False``, no interpolation) plus a second pass for line numbers;
2.3 s of a 20,000-group start-up. ``read_ini`` replaces both. Three kinds of tests:
configparser itself as the oracle over generated INI texts (sections, options, values,
accept or refuse, the error and its line); the previous ``parse_ini`` (kept below as the
reference) over generated ocsd files, where every message must be the same; and each
rule and each error on its own.
"""

from __future__ import annotations

import configparser
import os
import re
import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from ocsd.config import settings as settings_module
from ocsd.config.ini import (
    GROUP_PREFIX,
    LIST_PREFIX,
    SECTION_OPTIONS,
    IniFile,
    _canonical_section,
    _closest,
    parse_ini,
    read_ini,
)
from ocsd.config.settings import (
    CallingListSettings,
    CampaignGroupSettings,
    ConfigError,
    load_settings,
)

PATH = "/etc/ocsd/ocsd.ini"


@pytest.fixture(autouse=True)
def _no_ocsd_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own OCSD_* variables must not leak into these tests."""
    for name in list(os.environ):
        if name.upper().startswith("OCSD_"):
            monkeypatch.delenv(name)


# -- configparser as the oracle ----------------------------------------------------------


def configparser_outcome(text: str) -> tuple[str, Any]:
    """("ok", sections with their options, defaults) or ("error", the message ocsd showed)."""
    parser = configparser.ConfigParser(
        interpolation=None, inline_comment_prefixes=("#",), strict=True, empty_lines_in_values=False
    )
    try:
        parser.read_string(text, source=PATH)
    except configparser.DuplicateSectionError as exc:
        return "error", f"{PATH}:{exc.lineno}: section [{exc.section}] appears twice"
    except configparser.DuplicateOptionError as exc:
        return "error", f"{PATH}:{exc.lineno}: [{exc.section}] {exc.option}: option appears twice"
    except configparser.MissingSectionHeaderError as exc:
        return "error", f"{PATH}:{exc.lineno}: an option before any [section]"
    except configparser.ParsingError as exc:
        line = exc.errors[0][0]
        return "error", f"{PATH}:{line}: not an INI line (expected 'option = value')"
    sections = [(name, list(parser.items(name, raw=True))) for name in parser.sections()]
    return "ok", (sections, dict(parser.defaults()))


def reader_outcome(text: str) -> tuple[str, Any]:
    try:
        read = read_ini(text, PATH)
    except ConfigError as exc:
        return "error", str(exc)
    sections = [
        (name, list({**read.defaults, **options}.items()))
        for name, options in read.sections.items()
    ]
    return "ok", (sections, read.defaults)


#: Few names, so that duplicates, case variants and [DEFAULT] come up often.
NAMES = ["a", "A", "b", "x y", "ocsd", "OCSD", "DEFAULT", "default", "a]b", "", " a ", "é", "İ"]
#: Whitespace as str.strip() and \s know it, and a few characters that are not.
SPACE = ["", " ", "  ", "\t", "\x0c", "\xa0", "\r", "\u2028", "\x85", "\u200b"]
JUNK = "ab =:;#[]\t\r\x0c\xa0\u2028\x85é"

space = st.sampled_from(SPACE)
name = st.sampled_from(NAMES)
junk = st.text(JUNK, max_size=10)
inline_comment = st.sampled_from(["", " # note", "\t#x", "#x", " ;x", " #", "  # a = b"])
value = st.one_of(junk, st.sampled_from(["1", "x = y", "a:b", "#x", "[x]", "1 ; 2", "  "]))


@st.composite
def ini_lines(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["header", "option", "option", "comment", "blank", "junk"]))
    indent = draw(st.sampled_from(["", "", "", " ", "  ", "\t", "\xa0"]))
    if kind == "header":
        suffix = draw(st.sampled_from(["", "", " # c", "#c", " junk", "]", " ; c", "x=1"]))
        return f"{indent}[{draw(name)}]{suffix}"
    if kind == "option":
        separator = draw(st.sampled_from(["=", ":", " = ", " : ", "==", ":=", "=:", "\t=\t"]))
        return f"{indent}{draw(name)}{draw(space)}{separator}{draw(value)}{draw(inline_comment)}"
    if kind == "comment":
        return f"{indent}{draw(st.sampled_from([';', '#']))}{draw(junk)}"
    if kind == "blank":
        return f"{indent}{draw(space)}"
    return f"{indent}{draw(junk)}"


ini_texts = st.builds(
    lambda first, lines, end: "\n".join([*first, *lines]) + end,
    st.sampled_from([[], ["[a]"], ["[a]"], ["[a]"], ["[DEFAULT]"], ["", " [b] # c"]]),
    st.lists(ini_lines(), max_size=14),
    st.sampled_from(["", "\n", "\r\n"]),
)


@settings(max_examples=1000, deadline=None)
@given(text=ini_texts)
@example(text="[a]\nx = 1\n  more\n\n  [b]\ny = 2\n")
@example(text="[a]\nbad\n  x = 1\nx = 2\n")
@example(text="[DEFAULT]\nx = 1\n[DEFAULT]\ny = 2\n[a]\nz = 3\n")
@example(text="[a]\n= 1\n= 2\n")
@example(text="[a]\nx =\n  one\n  two # c\n; c\n  three\n")
def test_the_reader_agrees_with_configparser(text: str) -> None:
    assert reader_outcome(text) == configparser_outcome(text)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.text(max_size=20), max_size=8))
def test_the_reader_agrees_with_configparser_on_any_text(lines: list[str]) -> None:
    text = "[s]\n" + "\n".join(lines)
    assert reader_outcome(text) == configparser_outcome(text)


# -- the previous parse_ini as the reference ---------------------------------------------

_OLD_SECTION_RE = re.compile(r"^\[(?P<name>[^\]]+)\]")
_OLD_OPTION_RE = re.compile(r"^(?P<name>[^=:\s;#][^=:]*?)\s*[=:]")


def _old_line_numbers(text: str) -> dict[tuple[str, str], int]:
    lines: dict[tuple[str, str], int] = {}
    section = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if match := _OLD_SECTION_RE.match(line):
            section = match["name"].strip()
            section = _canonical_section(section) or section
            lines.setdefault((section, ""), number)
        elif match := _OLD_OPTION_RE.match(line):
            lines.setdefault((section, match["name"].strip().lower()), number)
    return lines


def old_parse_ini(text: str, path: str) -> IniFile:
    """parse_ini as it was before the one-pass reader (configparser + _line_numbers)."""
    lines = _old_line_numbers(text)
    parser = configparser.ConfigParser(
        interpolation=None, inline_comment_prefixes=("#",), strict=True, empty_lines_in_values=False
    )
    try:
        parser.read_string(text, source=path)
    except configparser.DuplicateSectionError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: section [{exc.section}] appears twice") from None
    except configparser.DuplicateOptionError as exc:
        raise ConfigError(
            f"{path}:{exc.lineno}: [{exc.section}] {exc.option}: option appears twice"
        ) from None
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: an option before any [section]") from None
    except configparser.ParsingError as exc:
        line = exc.errors[0][0] if exc.errors else "?"
        raise ConfigError(f"{path}:{line}: not an INI line (expected 'option = value')") from None

    ini = IniFile(path, {}, lines)
    values = ini.values
    for section in parser.sections():
        options = dict(parser.items(section))
        where = ini.place(section, "")
        if section.startswith(GROUP_PREFIX) or section.startswith(LIST_PREFIX):
            is_group = section.startswith(GROUP_PREFIX)
            prefix = GROUP_PREFIX if is_group else LIST_PREFIX
            model: type[BaseModel] = CampaignGroupSettings if is_group else CallingListSettings
            name = section[len(prefix) :].strip()
            if not name:
                raise ConfigError(f"{where}: [{section}] needs a name after '{prefix}'")
            entry: dict[str, str] = {}
            for option, value in options.items():
                field = option.replace("-", "_")
                if field not in model.model_fields:
                    names = [f.replace("_", "-") for f in model.model_fields]
                    raise ConfigError(
                        f"{ini.place(section, option)}: [{section}] {option}: unknown option"
                        f"{_closest(option, names)} (known: {', '.join(names)})"
                    )
                entry[field] = value
            values.setdefault("campaign_groups" if is_group else "calling_lists", {})[name] = entry
            continue
        canonical = _canonical_section(section)
        if canonical is None:
            raise ConfigError(
                f"{where}: [{section}] unknown section (known: OCServer, tenant, ocsd, "
                "faults, campaign-group:<name>, calling-list:<name>, "
                "campaign-group-template:<name>)"
            )
        known_options = SECTION_OPTIONS[canonical]
        for option, value in options.items():
            if option not in known_options:
                raise ConfigError(
                    f"{ini.place(canonical, option)}: [{section}] {option}: unknown option"
                    f"{_closest(option, list(known_options))} (known: {', '.join(known_options)})"
                )
            values[known_options[option]] = value
    return ini


#: Sections of ocsd files, one spelling each (of [ocsd] and [OCSD], the old line numbers
#: named the first, the reader names the last), options with a valid value first.
OCSD_SECTIONS: dict[str, dict[str, list[str]]] = {
    "[OCServer]": {
        "send-campaigngroup-states": ["true", "false", "maybe"],
        "campaigngroup-states-uri": ["http://127.0.0.1:9/s", "ftp://x/y", ""],
        "campaigngroup-states-interval": ["10", "-1", "soon"],
        "http-response-timeout": ["2.5", "0"],
    },
    "[tenant]": {"name": ["T", "", "a b"], "ccid": ["101"]},
    "[ocsd]": {
        "log-format": ["json", "xml"],
        "seed": ["1", "x", ""],
        "time-scale": ["60", "0"],
        "shard": ["1/2", "3/2", ""],
        "retry-schedule": ["1,2", "1,,2"],
        "max-attempts": ["3", "0"],
    },
    "[calling-list:L1]": {
        "dbid": ["201", "0", "101"],
        "records": ["10", "-5"],
        "live-answer-rate": ["0.3", "2"],
        "busy_rate": ["0.1"],
    },
    "[campaign-group:G1]": {
        "dbid": ["101", "x"],
        "campaign": ["C", ""],
        "group": ["Team"],
        "queue": ["7001"],
        "calling-lists": ["L1", "L1, L2", ""],
        "dial-mode": ["predictive", "progressive", "10", "turbo"],
        "optimize-by": ["busy-factor", "3"],
        "optimize-goal": ["80", "500"],
        "schedule": ["", "+1m start", "+1m fly"],
    },
    "[campaign-group:G2]": {
        "dbid": ["102", "101"],
        "campaign": ["C2"],
        "group": ["Team"],
        "queue": ["7002"],
        "calling-lists": ["L1"],
    },
}
#: Options every file of ocsd_files writes in these sections (the others are drawn).
REQUIRED = {
    "[calling-list:L1]": ["dbid"],
    "[campaign-group:G1]": ["dbid", "campaign", "group", "queue", "calling-lists"],
    "[campaign-group:G2]": ["dbid", "campaign", "group", "queue", "calling-lists"],
}
#: Sections that are refused, or whose options are.
BAD_SECTIONS: dict[str, dict[str, list[str]]] = {
    "[paint]": {"colour": ["red"]},
    "[calling-list:]": {"dbid": ["3"]},
    "[DEFAULT]": {"dbid": ["5"], "colour": ["red"]},
    "[OCServer]": {"colour": ["red"]},
    "[ocsd]": {"colour": ["red"]},
    "[campaign-group:G1]": {"colour": ["red"]},
}


@st.composite
def ocsd_files(draw: st.DrawFn) -> str:
    """Options and headers at column 0, continuation lines right after an option: the
    layout the old line numbers were right for. Mostly valid, one mistake or none."""
    headers = draw(st.lists(st.sampled_from(list(OCSD_SECTIONS)), max_size=6, unique=True))
    sections = {header: dict(OCSD_SECTIONS[header]) for header in headers}
    if draw(st.integers(0, 3)) == 0:
        bad = draw(st.sampled_from(list(BAD_SECTIONS)))
        sections[bad] = {**sections.get(bad, {}), **BAD_SECTIONS[bad]}
    order = draw(st.permutations(list(sections)))
    if order and draw(st.integers(0, 9)) == 0:  # a duplicate section now and then
        order.append(draw(st.sampled_from(order)))
    out: list[str] = []
    for header in order:
        out.append(header + draw(st.sampled_from(["", "", " # section"])))
        options = sections[header]
        drawn = draw(st.lists(st.sampled_from(list(options)), max_size=8, unique=True))
        required = [option for option in REQUIRED.get(header, []) if option in options]
        for option in required + [option for option in drawn if option not in required]:
            choices = options[option]
            value = draw(st.one_of(st.just(choices[0]), st.sampled_from(choices)))
            separator = draw(st.sampled_from([" = ", "=", ": ", " :"]))
            comment = draw(st.sampled_from(["", "", " # why", "#not-a-comment"]))
            out.append(f"{option}{separator}{value}{comment}")
            if draw(st.integers(0, 19)) == 0:
                out.append("  continued")
        out.extend(draw(st.sampled_from([[], [""], [""], ["; comment"], ["", "  # c"]])))
        if draw(st.integers(0, 19)) == 0:
            out.append("junk")
    return "\n".join(out) + "\n"


def load_outcome(path: Path) -> str:
    try:
        return "ok " + repr(load_settings(path))
    except ConfigError as exc:
        return "error " + str(exc)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=ocsd_files())
def test_load_settings_says_what_the_old_parse_ini_said(tmp_path: Path, text: str) -> None:
    path = tmp_path / "ocsd.ini"
    path.write_text(text, encoding="utf-8")
    new = load_outcome(path)
    with mock.patch.object(settings_module, "parse_ini", old_parse_ini):
        old = load_outcome(path)
    assert new == old


def test_the_example_file_parses_as_before() -> None:
    text = settings_module.default_config_text()
    new, old = parse_ini(text, PATH), old_parse_ini(text, PATH)
    assert new.values == old.values
    assert new.lines == old.lines


# -- each rule ---------------------------------------------------------------------------


def sections_of(text: str) -> dict[str, dict[str, str]]:
    return read_ini(text, PATH).sections


def test_values_comments_and_separators() -> None:
    text = (
        "; comment\n"
        "# comment\n"
        "[Sec] # a comment after a header\n"
        "Name = Value  \n"
        "colon: a = b\n"
        "first =: second\n"
        "hash = a#b\n"
        "inline = a # comment\n"
        "tab-inline = a\t# comment\n"
        "only-comment = # comment\n"
        "semicolon = a ; b\n"
        "empty =\n"
    )
    assert sections_of(text) == {
        "Sec": {
            "name": "Value",
            "colon": "a = b",
            "first": ": second",
            "hash": "a#b",
            "inline": "a",
            "tab-inline": "a",
            "only-comment": "",
            "semicolon": "a ; b",
            "empty": "",
        }
    }


def test_continuation_lines_until_an_empty_or_comment_line() -> None:
    text = "[s]\nlist = a\n  b\n\tc # note\n\n  d = 1\nnext = x\n  y\n; ends it\n  z = 2\n"
    assert sections_of(text) == {"s": {"list": "a\nb\nc", "d": "1", "next": "x\ny", "z": "2"}}


def test_line_numbers_of_headers_and_options() -> None:
    text = (
        "; c\n[ocserver]\n\nhttp-response-timeout = 1\n  continued\n[campaign-group:G ]\n  dbid=1\n"
    )
    assert read_ini(text, PATH).lines == {
        ("OCServer", ""): 2,
        ("OCServer", "http-response-timeout"): 4,
        ("campaign-group:G", ""): 6,
        ("campaign-group:G", "dbid"): 7,
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "[tenant]\nname = a\n[TENANT]\nname = b\n",
            "ocsd.ini:3: section [TENANT] is section [tenant] of ocsd.ini:1 again "
            "(section names ignore case and spacing)",
            id="known-section-in-two-cases",
        ),
        pytest.param(
            "[ocsd]\nseed = 1\n[OCSD]\nlog-format = json\n",
            "ocsd.ini:3: section [OCSD] is section [ocsd] of ocsd.ini:1 again "
            "(section names ignore case and spacing)",
            id="known-section-other-options",
        ),
        pytest.param(
            "[calling-list:L1]\ndbid = 201\n[campaign-group: G1@T]\ndbid = 101\n"
            "[campaign-group:G1@T]\ndbid = 102\n",
            "ocsd.ini:5: section [campaign-group:G1@T] is section [campaign-group: G1@T] of "
            "ocsd.ini:3 again (section names ignore case and spacing)",
            id="group-name-spacing",
        ),
        pytest.param(
            "[calling-list:Renewals Q4]\ndbid = 201\n\n[calling-list:renewals  q4]\ndbid = 202\n",
            "ocsd.ini:4: section [calling-list:renewals  q4] is section "
            "[calling-list:Renewals Q4] of ocsd.ini:1 again (section names ignore case and spacing)",
            id="list-name-case-and-inner-spacing",
        ),
    ],
)
def test_sections_that_differ_only_by_case_or_spacing_are_refused(
    tmp_path: Path, text: str, message: str
) -> None:
    """They were merged or overrode each other in silence (the later one won)."""
    assert load_error(tmp_path, text) == message
    assert "\n" not in message


def test_two_spellings_of_one_option_are_refused(tmp_path: Path) -> None:
    """talk-time and talk_time are one field: the second overrode the first in silence."""
    text = "[calling-list:L1]\ndbid = 201\nring-time = 5\nring_time = 9\n"
    assert load_error(tmp_path, text) == (
        "ocsd.ini:4: [calling-list:L1] ring_time: option appears twice "
        "(also written ring-time at ocsd.ini:3)"
    )


def test_names_that_differ_otherwise_are_two_sections(tmp_path: Path) -> None:
    text = (
        "[calling-list:L1]\ndbid = 201\n[calling-list:L1b]\ndbid = 202\n"
        "[campaign-group:G1@T]\ndbid = 101\n[calling-list:G1@T]\ndbid = 203\n"
    )
    read = parse_ini(text, PATH)
    assert set(read.values["calling_lists"]) == {"L1", "L1b", "G1@T"}


def test_line_numbers_count_only_newlines(tmp_path: Path) -> None:
    """configparser counts "\\n" only (after universal newlines): a form feed or U+2028 in
    a comment is no line break (the old second pass, with splitlines, counted them)."""
    text = "[OCServer]\r\n; page\x0cbreak \u2028 here\r\nhttp-response-timeout = 0\r\n"
    message = load_error(tmp_path, text)
    assert message.startswith("ocsd.ini:3: [OCServer] http-response-timeout: "), message


def test_an_indented_option_is_named_at_its_line(tmp_path: Path) -> None:
    """Indented after an empty line, it is an option, not a continuation (the old second
    pass did not see it and named the header)."""
    message = load_error(tmp_path, "[OCServer]\n\n  http-response-timeout = -1\n")
    assert message.startswith("ocsd.ini:3: [OCServer] http-response-timeout: "), message


def test_default_section_options_go_to_every_section() -> None:
    read = read_ini("[DEFAULT]\nx = 1\n[a]\ny = 2\n[DEFAULT]\nz = 3\n", PATH)
    assert read.sections == {"a": {"y": "2"}}
    assert read.defaults == {"x": "1", "z": "3"}


def load_error(tmp_path: Path, text: str) -> str:
    """The message load_settings refuses ``text`` with, the file named ocsd.ini."""
    path = tmp_path / "ocsd.ini"
    path.write_bytes(text.encode())  # as it is: no newline translation
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return str(caught.value).replace(str(path), "ocsd.ini")


# -- each error ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "[ocsd]\nseed = 1\nlog-format json\n",
            "3: not an INI line (expected 'option = value')",
            id="no-separator",
        ),
        pytest.param(
            "[ocsd]\n= 1\n", "2: not an INI line (expected 'option = value')", id="no-name"
        ),
        pytest.param(
            "[ocsd]\nfirst bad\nsecond bad\n",
            "2: not an INI line (expected 'option = value')",
            id="the-first-bad-line",
        ),
        pytest.param("[]\n", "1: an option before any [section]", id="empty-header"),
        pytest.param("seed = 1\n", "1: an option before any [section]", id="no-section"),
        pytest.param("\n  seed = 1\n", "2: an option before any [section]", id="indented"),
        pytest.param("x\n[ocsd]\n", "1: an option before any [section]", id="junk-first"),
        pytest.param("[ocsd]\n[tenant]\n[ocsd]\n", "3: section [ocsd] appears twice", id="dup"),
        pytest.param(
            "[tenant]\nName = a\nccid = 1\nname = b\n",
            "4: [tenant] name: option appears twice",
            id="dup-option-any-case",
        ),
        pytest.param(
            "[tenant]\nname = a\n\n  name : b\n",
            "4: [tenant] name: option appears twice",
            id="dup-option-indented",
        ),
        pytest.param(
            "[ocsd]\nnot an option\nseed = 1\nseed = 2\n",
            "4: [ocsd] seed: option appears twice",
            id="duplicates-before-bad-lines",
        ),
        pytest.param(
            "[DEFAULT]\nx = 1\n[DEFAULT]\nx = 2\n",
            "4: [DEFAULT] x: option appears twice",
            id="dup-default-option",
        ),
    ],
)
def test_structural_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        read_ini(text, PATH)
    assert str(caught.value) == f"{PATH}:{message}"
    assert configparser_outcome(text) == ("error", f"{PATH}:{message}")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "[paint]\ncolour = red\n",
            "1: [paint] unknown section (known: OCServer, tenant, ocsd, "
            "faults, campaign-group:<name>, calling-list:<name>, campaign-group-template:<name>)",
            id="unknown-section",
        ),
        pytest.param(
            "[ocsd]\n[ ocsd ]\n",
            "2: [ ocsd ] unknown section (known: OCServer, tenant, ocsd, "
            "faults, campaign-group:<name>, calling-list:<name>, campaign-group-template:<name>)",
            id="spaces-in-the-brackets",
        ),
        pytest.param(
            "[calling-list: ]\ndbid = 3\n",
            "1: [calling-list: ] needs a name after 'calling-list:'",
            id="unnamed-list",
        ),
        pytest.param(
            "[tenant]\nname = a\ncolour = red\n",
            "3: [tenant] colour: unknown option (known: name, ccid)",
            id="unknown-option",
        ),
        pytest.param(
            "[calling-list:L]\ndbid = 3\n\n  colour = red\n",
            "4: [calling-list:L] colour: unknown option (known: dbid, records, "
            "live-answer-rate, answering-machine-rate, busy-rate, ring-time, "
            "no-answer-timeout, max-attempts, redial-delay)",
            id="unknown-indented-list-option",
        ),
        pytest.param(
            "[DEFAULT]\ncolour = red\n[tenant]\nname = a\n",
            "3: [tenant] colour: unknown option (known: name, ccid)",
            id="default-option-named-at-the-section",
        ),
    ],
)
def test_section_and_option_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_ini(text, PATH)
    assert str(caught.value) == f"{PATH}:{message}"


# -- size and time: linear in the file, with a limit ----------------------------------------


def continuation_text(size: int) -> str:
    """An INI text of ``size`` characters or so: one option continued over every line."""
    line = "  one more continuation line of a value\n"
    return "[tenant]\nname = first\n" + line * (size // len(line))


def best_cpu_seconds(action: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        action()
        times.append(time.process_time() - start)
    return min(times)


def test_continuation_lines_are_read_in_linear_time() -> None:
    """8x the continuation lines take about 8x the time (the reader that added each line
    to the value took 64x: 96 s for 16 MB). CPU time, best of a few, and a ratio three
    times the linear one: it holds on a busy machine."""
    small, large = continuation_text(500_000), continuation_text(4_000_000)
    small_s = best_cpu_seconds(lambda: read_ini(small, PATH), 5)
    large_s = best_cpu_seconds(lambda: read_ini(large, PATH), 2)
    assert read_ini(large, PATH).sections["tenant"]["name"].count("\n") == large.count("\n") - 2
    assert large_s / small_s < 24, f"0.5 MB: {small_s:.3f} s, 4 MB: {large_s:.3f} s"


#: The documented size limit of a configuration file (docs/configuration.md#rules).
MAX_INI_BYTES = 64 * 2**20


def test_a_file_over_the_size_limit_is_refused_before_it_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "huge.ini"
    with path.open("wb") as file:  # sparse: no disk used
        file.truncate(MAX_INI_BYTES + 1)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value) == (
        f"{path}: configuration file larger than 64 MiB (67,108,864 bytes), the most ocsd reads"
    )
    with path.open("r+b") as file:  # one byte less: read (and refused for what it holds)
        file.truncate(MAX_INI_BYTES)
    with pytest.raises(ConfigError, match="an option before any"):
        load_settings(path)


def test_a_byte_order_mark_at_the_start_is_skipped(tmp_path: Path) -> None:
    """Windows editors save UTF-8 with a BOM; the first header must still be one."""
    path = tmp_path / "ocsd.ini"
    path.write_bytes(b"\xef\xbb\xbf[tenant]\r\nname = Acme\r\n")
    assert load_settings(path).tenant_name == "Acme"
    path.write_bytes(b"\xef\xbb\xbf[tenant]\r\nname = \xef\xbb\xbfAcme\r\n")  # only at the start
    assert load_settings(path).tenant_name == "\ufeffAcme"


def test_a_file_that_is_not_utf8_is_refused_naming_the_line(tmp_path: Path) -> None:
    """The message gave a byte offset ("position 25") instead of the line."""
    path = tmp_path / "ocsd.ini"
    path.write_bytes(b"[tenant]\r\nccid = 1\r\nname = Caf\xe9\r\n")  # Latin-1
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value) == f"{path}:3: not UTF-8 text (byte 0xe9); save the file as UTF-8"
