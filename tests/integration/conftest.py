"""Integration tests: every CampaignGroupState body holds to the JSON Schema.

The autouse fixture below wraps the body encoder the in-process daemon uses, and reads
what the recording ``receiver`` got, so every body the daemon builds or sends in any
integration test is checked against ocsd/schema/campaign-group-state.schema.json.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from ocsd.core.body import BodyEncoder
from ocsd.receiver.validate import schema_problems


def schema_report(bodies: list[tuple[str, Any]]) -> list[str]:
    """One line per body that breaks the schema: where it was seen, and why."""
    bad = []
    for where, body in bodies:
        problems = schema_problems(body)
        if problems:
            bad.append(f"{where}: {'; '.join(map(str, problems))} in {body!r}")
    return bad


@pytest.fixture(autouse=True)
def bodies_hold_to_the_schema(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    built: list[tuple[str, Any]] = []
    original = BodyEncoder.encode

    def encode_and_keep(self: BodyEncoder, *args: Any, **kwargs: Any) -> bytes:
        body = original(self, *args, **kwargs)
        built.append(("built by the daemon", orjson.loads(body)))
        return body

    monkeypatch.setattr(BodyEncoder, "encode", encode_and_keep)
    receiver = request.getfixturevalue("receiver") if "receiver" in request.fixturenames else None
    yield
    if receiver is not None:
        built.extend(
            (f"received on {r.path}", r.json)
            for r in receiver.received
            if isinstance(r.json, dict) and r.json.get("GSW_USER_EVENT") == "CampaignGroupState"
        )
    bad = schema_report(built)
    assert not bad, "bodies that break the schema:\n" + "\n".join(bad[:10])
