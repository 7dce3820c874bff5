"""Every number an option takes has a finite, documented range, the same wherever the
value comes from (the file, the environment) and whoever reads it (check-config, run, a
reload: all through load_settings). Values inside are accepted; values outside, nan and
inf are refused with one line naming the option, the value and the range."""

from __future__ import annotations

import math
import os
import re
import types
import typing
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from ocsd.config import ranges
from ocsd.config.ini import FIELD_PLACES
from ocsd.config.model import CallingListSettings, CampaignGroupSettings, Settings
from ocsd.config.ranges import Bound
from ocsd.config.reference import render_page
from ocsd.config.settings import ConfigError, load_settings

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"

#: A small valid file; the option tried is added in its section (line numbers below).
BASE = {
    "OCServer": [],
    "tenant": [],
    "ocsd": [],
    "faults": [],
    "calling-list:L1": [
        "dbid = 201",
        "live-answer-rate = 0",  # the rates must sum to at most 1: leave room for one
        "answering-machine-rate = 0",
        "busy-rate = 0",
    ],
    "campaign-group:G1": [
        "dbid = 101",
        "campaign = C",
        "group = T",
        "queue = 7001",
        "calling-lists = L1",
        "dial-mode = progressive-gvp",  # no optimize-goal check (the goal's own range alone), agents = 0 allowed
    ],
}
MODEL_SECTION = {
    Settings: None,
    CallingListSettings: "calling-list:L1",
    CampaignGroupSettings: "campaign-group:G1",
}


def _is_number(annotation: Any) -> bool:
    """int, float, or either of them or None."""
    if annotation in (int, float):
        return True
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return len(args) == 1 and args[0] in (int, float)
    return False


def bounded_options() -> list[tuple[str, str, str, Bound, bool]]:
    """(section, option, field, bound, whole) of every bounded option of the three models."""
    found = []
    for model, section in MODEL_SECTION.items():
        for field, info in model.model_fields.items():
            bound = next((m for m in info.metadata if isinstance(m, Bound)), None)
            if bound is None:
                continue
            place, option = (
                FIELD_PLACES[field] if section is None else (section, field.replace("_", "-"))
            )
            whole = int in typing.get_args(info.annotation) or info.annotation is int
            found.append((place, option, field, bound, whole))
    return found


BOUNDED = bounded_options()


@pytest.mark.parametrize("model", list(MODEL_SECTION), ids=lambda m: m.__name__)
def test_every_number_option_has_a_finite_range(model: type[BaseModel]) -> None:
    """A new numeric option cannot be added without one."""
    for field, info in model.model_fields.items():
        if not _is_number(info.annotation):
            continue
        bound = next((m for m in info.metadata if isinstance(m, Bound)), None)
        assert bound is not None, f"{model.__name__}.{field} has no Bound"
        assert math.isfinite(bound.low) and math.isfinite(bound.high) and bound.low < bound.high
        is_int = info.annotation is int or int in typing.get_args(info.annotation)
        assert bound.whole == is_int, f"{field}: Bound(whole=) must match its type"
    assert (
        len(BOUNDED) == 40
    )  # 13 in [OCServer] and [ocsd], 11 in [faults], 9 per list, 7 per group


def test_the_configuration_reference_shows_each_range() -> None:
    """The configuration reference (docs/configuration.md, its option tables made from the
    settings model) shows each option's range as the refusals word its bounds."""
    page = render_page(REFERENCE.read_text(encoding="utf-8"))
    anchors = {
        "OCServer": "ocserver",
        "ocsd": "ocsd",
        "faults": "faults",
        "calling-list:L1": "calling-list",
        "campaign-group:G1": "campaign-group",
    }
    for section, option, _field, bound, _whole in BOUNDED:
        anchor = f'<a id="option-{anchors[section]}-{option}"></a>'
        row = next((r for r in page.splitlines() if r.startswith(f"| {anchor}")), "")
        low, high = (ranges._number(b) for b in (bound.low, bound.high))
        assert f"{low} ≤ value ≤ {high}" in row, f"[{section}] {option}: reference row {row!r}"
    retry = next(r for r in page.splitlines() if 'id="option-ocsd-retry-schedule"' in r)
    assert ranges.RETRY_DELAY.allowed() in retry


def write(directory: Path, section: str, line: str, also: tuple[str, ...] = ()) -> tuple[Path, int]:
    """BASE with ``line`` in ``section`` (in place of the option's line if BASE has one),
    and the lines ``also`` after it; the file and the line's number."""
    out: list[str] = []
    number = 0
    option = line.split("=")[0].strip()
    for name, lines in BASE.items():
        out.append(f"[{name}]")
        if name == section:
            out.append(line)
            number = len(out)
            out.extend(also)
            lines = [kept for kept in lines if kept.split("=")[0].strip() != option]
        out.extend(lines)
    path = directory / "ocsd.ini"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path, number


def _inside(bound: Bound, whole: bool) -> st.SearchStrategy[str]:
    if whole:
        return st.integers(int(bound.low), int(bound.high)).map(str)
    return st.floats(bound.low, bound.high).map(repr)


def _outside(bound: Bound, whole: bool) -> st.SearchStrategy[str]:
    below = st.integers(max_value=math.ceil(bound.low) - 1)
    above = st.integers(min_value=math.floor(bound.high) + 1)
    numbers = st.one_of(below, above, st.integers(25, 400).map(lambda n: "9" * n))
    if not whole:
        numbers = st.one_of(
            numbers,
            st.floats(max_value=bound.low, exclude_max=True, allow_infinity=False),
            st.floats(min_value=bound.high, exclude_min=True, allow_infinity=False),
            st.sampled_from(["nan", "inf", "-inf", "NaN", "Infinity", "1e400"]),
        )
    return numbers.map(lambda v: v if isinstance(v, str) else repr(v))


@st.composite
def option_values(draw: st.DrawFn) -> tuple[str, str, str, Bound, bool, str, bool]:
    section, option, field, bound, whole = draw(st.sampled_from(BOUNDED))
    fits = draw(st.booleans())
    value = draw(_inside(bound, whole) if fits else _outside(bound, whole))
    return section, option, field, bound, whole, value, fits


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=option_values(), from_environment=st.booleans())
def test_a_value_inside_the_range_is_taken_and_one_outside_refused_in_one_line(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[Any, ...], from_environment: bool
) -> None:
    section, option, field, bound, whole, value, fits = case
    if field == "dbid":
        assume(value not in ("101", "201"))  # the other section's DBID: another refusal
    from_environment &= section in ("OCServer", "ocsd", "faults")  # groups have no variables
    directory = tmp_path_factory.mktemp("ranges")
    # shard-count is refused without shard: tried with shard = auto, as pod 0
    also = ("shard = auto",) if field == "shard_count" else ()
    line = "" if from_environment else f"{option} = {value}"
    path, number = write(directory, section, line, also)
    variable = f"OCSD_{field.upper()}"
    environment = {variable: value} if from_environment else {}
    if also:
        environment["OCSD_POD_INDEX"] = "0"
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("OCSD_")}
    with mock.patch.dict(os.environ, {**clean, **environment}, clear=True):
        try:
            loaded = load_settings(path)
        except ConfigError as exc:
            message = str(exc)
        else:
            message = ""
    if fits:
        assert message == "", message
        model = loaded
        if section.startswith("calling-list:"):
            model = loaded.calling_lists["L1"]  # type: ignore[assignment]
        elif section.startswith("campaign-group:"):
            model = loaded.campaign_groups["G1"]  # type: ignore[assignment]
        got = getattr(model, field)
        assert got == (int(value) if whole else float(value))
        return
    where = f"environment {variable} ([{section}] {option})" if from_environment else (
        f"{path}:{number}: [{section}] {option}"
    )  # fmt: skip
    assert re.fullmatch(
        rf"{re.escape(where)}: '.+' is (out of range|not a whole number|not a number); "
        rf"allowed: {re.escape(bound.allowed())}"
        + (re.escape(" (a fraction: 0.3 is 30 %)") if bound.fraction else ""),
        message,
    ), message
    assert repr(value.strip()[:40]).strip("'") in message


def test_a_retry_delay_outside_its_range_names_the_delay(tmp_path: Path) -> None:
    path, number = write(tmp_path, "ocsd", "retry-schedule = 1, 2, 1e-9, 5")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value) == (
        f"{path}:{number}: [ocsd] retry-schedule: '1e-9' is out of range; "
        "allowed: 0.01 to 86400 seconds"
    )


@pytest.mark.parametrize("port", ["0", "65536", "99999"])
def test_an_allowed_origin_with_a_port_out_of_range_is_refused(tmp_path: Path, port: str) -> None:
    """``https://admin.example:99999`` was accepted: no browser ever sends that origin."""
    origin = f"https://admin.example:{port}"
    path, number = write(tmp_path, "ocsd", f"control-allowed-origins = {origin}")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value).startswith(f"{path}:{number}: [ocsd] control-allowed-origins: ")
    assert str(caught.value).endswith(
        f"{origin!r}: the port {port} is out of range; allowed: a whole number from 1 to 65535"
    )
    path, _ = write(tmp_path, "ocsd", "control-allowed-origins = https://admin.example:65535")
    assert load_settings(path).control_allowed_origins == ("https://admin.example:65535",)


def test_an_empty_seed_or_max_attempts_is_not_set(tmp_path: Path) -> None:
    """So a file may leave them to the environment, like shard."""
    path, _ = write(tmp_path, "ocsd", "seed =\nmax-attempts =")
    loaded = load_settings(path)
    assert loaded.seed is None and loaded.max_attempts is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (1.5, "1.5 is not a whole number"),
        (10**30, f"{10**30} is out of range"),
        (-1, "-1 is out of range"),
        (math.inf, "inf is out of range"),
        (True, "True is out of range"),
    ],
)
def test_a_bound_checks_a_value_that_does_not_come_through_the_model(
    value: float, problem: str
) -> None:
    """ocsd demo's --interval is checked by the same bound as the option."""
    assert ranges.INTERVAL.problem(value) == (
        f"{problem}; allowed: a whole number from 0 to 86400 seconds (0 turns them off)"
    )
    assert ranges.INTERVAL.problem(86_400) is None


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("127.0.0.1", None),
        ("::1", None),
        ("[::1]", None),
        ("receiver.example", None),
        ("ocs_sink", None),  # a docker service name
        ("bücher.example", None),
        ("", "the host is empty"),
        ("a b", "holds a space or a control character"),
        ("a" * 64 + ".example", "is not a host name (labels of 1 to 63 characters)"),
        ("a..b", "is not a host name"),
        ("ex%20ample", "is not a host name or an IP address"),
        ("x." * 130 + "com", "is not a host name or an IP address"),
    ],
)
def test_hosts(host: str, problem: str | None) -> None:
    found = ranges.host_problem(host)
    assert found == problem if problem is None else problem in (found or ""), found
