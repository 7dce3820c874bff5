"""docs/contract.md keeps the anchors that messages and the JSON Schema cite, and nothing a
user reads cites the spec outside the repository ("spec section 5") instead of it."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "docs" / "contract.md"

#: Published: the sink's messages, the schema's descriptions and other pages link here.
#: Removing or renaming one breaks those links; add new ones freely.
STABLE_ANCHORS = [
    "contract",
    "what-is-sent",
    "state-notifications",
    "periodic-notifications",
    "periodic-timing",
    "delivery",
    "nothing-sent",
    "body",
    "fields",
    "presence",
    "formats",
    "calling-lists",
    "example",
    "statistics",
    "enumerations",
    "dial-mode",
    "optimize-by",
    "optimize-goal",
    "status",
    "action",
    "actor",
    "life-cycle",
    "states",
    "requests",
    "transitions",
    "refused",
    "stop",
    "waiting-unload",
    "force-unload",
    "dial-mode-changes",
    "auto-completion",
    "schedules",
    "reload",
    "restart",
    "who-causes-what",
    "options",
    "log-messages",
    "log-81000",
    "log-81001",
    "decisions",
    "stat-busy-factor",
    "stat-hit-ratio",
    "stat-overdial-rate",
    "stat-time-to-complete",
]
#: Every top-level field of the body, as the shipped JSON Schema lists them.
SCHEMA = ROOT / "ocsd" / "receiver" / "schema" / "campaign-group-state.schema.json"
FIELDS = list(json.loads(SCHEMA.read_text(encoding="utf-8"))["properties"])


def anchors(text: str) -> set[str]:
    return set(re.findall(r"\{#([\w-]+)\}", text)) | set(re.findall(r'id="([\w-]+)"', text))


def test_the_cited_anchors_are_all_there() -> None:
    present = anchors(CONTRACT.read_text(encoding="utf-8"))
    assert [a for a in STABLE_ANCHORS if a not in present] == []
    fields = [f"field-{name.lower().replace('_', '-')}" for name in FIELDS]
    assert len(fields) == 22
    assert [a for a in fields if a not in present] == []


def test_every_decision_is_marked_the_same_way() -> None:
    text = CONTRACT.read_text(encoding="utf-8")
    marked = text.count('!!! info "ocsd decision"')
    assert marked >= 20
    # no other spelling of it (the list at the end is "ocsd decisions")
    assert len(re.findall(r"ocsd decision(?!s)", text, re.IGNORECASE)) == marked


#: Everything a user reads: the package (messages, the JSON Schema, the OpenAPI document,
#: the example INI, the dashboard), the README and the docs pages.
USER_FACING = [
    *sorted((ROOT / "ocsd").rglob("*.py")),
    *sorted((ROOT / "ocsd").rglob("*.json")),
    *sorted((ROOT / "ocsd").rglob("*.ini")),
    *sorted((ROOT / "ocsd").rglob("*.html")),
    ROOT / "README.md",
    *sorted((ROOT / "docs").rglob("*.md")),
]
CITATION = re.compile(r"contract\.md#([\w-]+)")
SPEC_CITATION = re.compile(
    r"(?i)\bspec(?:ification)?(?:'s)?\s*(?:sections?\s*|§\s*)?\d|\bthe spec\b|spec §"
)


def test_every_anchor_cited_anywhere_is_in_the_contract() -> None:
    present = anchors(CONTRACT.read_text(encoding="utf-8"))
    cited = {
        (path.relative_to(ROOT).as_posix(), anchor)
        for path in USER_FACING
        for anchor in CITATION.findall(path.read_text(encoding="utf-8"))
    }
    assert len({anchor for _, anchor in cited}) >= 15  # the sink, the schema, the pages...
    assert sorted((where, a) for where, a in cited if a not in present) == []


def test_the_validators_citations_name_existing_sections() -> None:
    from ocsd.receiver import validate

    source = Path(validate.__file__).read_text(encoding="utf-8")
    cited = re.findall(r"contract\('([^']+)', '([\w-]+)'\)", source)
    assert len(cited) >= 5
    text = CONTRACT.read_text(encoding="utf-8")
    for section, anchor in cited:
        # the section's heading carries that name and that anchor
        assert re.search(rf"^#+ {re.escape(section)}.*\{{#{anchor}\}}", text, re.M), section


def test_nothing_a_user_reads_cites_the_spec() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in USER_FACING
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if SPEC_CITATION.search(line)
    ]
    assert found == []
