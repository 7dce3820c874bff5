"""The configuration reference of the docs site is the settings model: every option, with
its default, environment variable and range, read from the model itself."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Annotated, Any

import pytest
from annotated_types import Ge, Interval, Lt, MaxLen
from pydantic import BaseModel, Field

from ocsd.config.model import (
    ENV_PREFIX,
    CallingListSettings,
    CampaignGroupSettings,
    Settings,
)
from ocsd.config.reference import (
    OPTION_HELP,
    SECTION_FIELDS,
    OptionDoc,
    constraints,
    options,
    render_page,
    type_name,
)
from ocsd.config.settings import LaunchSettings

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGE = DOCS / "configuration.md"

#: The smallest valid section of each model, so that one option can be tried alone.
MINIMAL: dict[type[BaseModel], dict[str, Any]] = {
    Settings: {},
    CallingListSettings: {"dbid": 1},
    CampaignGroupSettings: {
        "dbid": 1,
        "campaign": "C",
        "group": "G",
        "queue": "Q",
        "calling_lists": "L",
    },
}


def every_field() -> list[tuple[type[BaseModel], str]]:
    """Every option of every settings model: what the reference must show."""
    fields = [(Settings, f) for f in Settings.model_fields if f not in SECTION_FIELDS]
    for model in (CallingListSettings, CampaignGroupSettings, LaunchSettings):
        fields += [(model, f) for f in model.model_fields]
    return fields


def rows(page: str) -> dict[str, list[str]]:
    """The cells of each option row of the page, by the row's anchor."""
    found = {}
    for line in page.splitlines():
        match = re.search(r'<a id="(option-[^"]+)"></a>', line)
        if match:
            cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            found[match[1]] = cells
    return found


@pytest.fixture(scope="module")
def page() -> str:
    return render_page(PAGE.read_text(encoding="utf-8"))


def test_every_option_of_the_model_is_on_the_page_with_its_default(page: str) -> None:
    documented = {(o.model, o.field): o for o in options()}
    assert sorted(documented, key=str) == sorted(every_field(), key=str)
    table = rows(page)
    for (model, field), option in documented.items():
        cells = table[option.anchor]  # the option has its row, with its anchor
        assert f"`{option.name}`" in cells[0], option
        default = model.model_fields[field]
        if default.is_required():
            assert cells[2] == "**required**", option
        elif option.default is None:
            assert default.get_default(call_default_factory=True) in (None, ""), option
            assert cells[2] == "*not set*", option
        else:
            assert cells[2] == f"`{option.default}`", option
        if model is Settings:
            assert option.env == ENV_PREFIX + field.upper()
            assert f"`{option.env}`" in cells[0]


@pytest.mark.parametrize(
    "option",
    [o for o in options() if o.default is not None and o.model in MINIMAL],
    ids=lambda o: o.anchor,
)
def test_a_default_as_the_page_shows_it_reads_back_as_the_default(option: OptionDoc) -> None:
    """The page's default, written into a configuration, gives the model's default."""
    model = option.model
    read = model(**{**MINIMAL[model], option.field: option.default})
    assert getattr(read, option.field) == model.model_fields[option.field].default


def test_ranges_come_from_the_model(page: str) -> None:
    table = rows(page)
    assert table["option-ocsd-control-port"][3] == "0 ≤ value ≤ 65535"
    assert table["option-ocserver-http-response-timeout"][3] == "0.1 ≤ value ≤ 3600"
    assert table["option-ocsd-max-attempts"][3] == "1 ≤ value ≤ 10000"  # inside `| None`
    assert table["option-campaign-group-queue"][3] == "at least 1 character"
    assert "`genesys`" in table["option-ocsd-log-format"][3]
    assert "`push-preview` (8)" in table["option-campaign-group-dial-mode"][3]


class _Constrained(BaseModel):
    """Every way a constraint can be written on a field."""

    plain: int = Field(3, ge=1, le=9)
    annotated: Annotated[float, Ge(0.5), Lt(2)] = 1.0
    interval: Annotated[int, Interval(gt=0, le=20)] = 1
    optional: Annotated[int, Field(gt=0)] | None = None
    text: Annotated[str, Field(min_length=2), MaxLen(8)] = "ab"
    names: tuple[str, ...] = Field((), max_length=3)
    step: int = Field(10, multiple_of=5)


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("plain", ("1 ≤ value ≤ 9",)),
        ("annotated", ("0.5 ≤ value < 2",)),
        ("interval", ("0 < value ≤ 20",)),
        ("optional", ("value > 0",)),
        ("text", ("at least 2 characters", "at most 8 characters")),
        ("names", ("at most 3 items",)),
        ("step", ("a multiple of 5",)),
    ],
)
def test_constraints_are_read_however_they_are_written(
    field: str, expected: tuple[str, ...]
) -> None:
    assert constraints(_Constrained.model_fields[field]) == expected


def test_types_are_named_for_people() -> None:
    fields = Settings.model_fields
    assert type_name(fields["send_campaigngroup_states"].annotation) == "true/false"
    assert type_name(fields["seed"].annotation) == "whole number"
    assert type_name(fields["max_attempts"].annotation) == "whole number"
    assert type_name(fields["retry_schedule"].annotation) == "comma-separated numbers"
    assert type_name(fields["shard"].annotation) == "K/N"
    assert type_name(fields["log_format"].annotation) == "choice"


def test_every_option_has_help_and_every_help_names_an_option() -> None:
    assert [o.anchor for o in options() if not o.help] == []
    for model, texts in OPTION_HELP.items():
        assert set(texts) <= set(model.model_fields), model


def test_a_description_in_the_model_is_the_help() -> None:
    class Described(BaseModel):
        port: int = Field(1, description="  The port.  ")

    from ocsd.config.reference import help_text

    assert help_text(Described, "port") == "The port."


def test_a_section_left_off_the_page_or_unknown_fails() -> None:
    text = PAGE.read_text(encoding="utf-8")
    with pytest.raises(LookupError, match="tenant"):
        render_page(text.replace("<!-- ocsd-options: tenant -->", ""))
    with pytest.raises(LookupError, match="nowhere"):
        render_page(text + "\n<!-- ocsd-options: nowhere -->\n")


def test_the_mkdocs_hook_renders_the_configuration_page_only() -> None:
    pytest.importorskip("mkdocs")
    spec = importlib.util.spec_from_file_location("hook", DOCS / "hooks" / "config_reference.py")
    assert spec is not None and spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)

    class File:
        def __init__(self, src_uri: str) -> None:
            self.src_uri = src_uri

    class Page:
        def __init__(self, src_uri: str) -> None:
            self.file = File(src_uri)

    text = PAGE.read_text(encoding="utf-8")
    rendered = hook.on_page_markdown(text, page=Page("configuration.md"), config={}, files=[])
    assert 'id="option-ocserver-campaigngroup-states-uri"' in rendered
    assert "<!-- ocsd-options:" not in rendered
    assert hook.on_page_markdown(text, page=Page("contract.md"), config={}, files=[]) == text
