"""nested_deeper_than: the depth of a JSON text, told without parsing it."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ocsd.receiver.validate import MAX_NESTING, nested_deeper_than

TEXTS = st.text(alphabet=st.sampled_from('ab[]{}"\\:, é'), max_size=8)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXTS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXTS, inner, max_size=3),
    max_leaves=40,
)


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=400, deadline=None)
@given(JSON_VALUES, st.integers(min_value=0, max_value=6))
def test_the_depth_is_told_exactly(value: Any, limit: int) -> None:
    """Brackets, quotes and backslashes inside strings do not count."""
    raw = json.dumps(value, ensure_ascii=False).encode()
    assert nested_deeper_than(raw, limit) == (depth(value) > limit)


def test_deep_and_broken_texts() -> None:
    assert nested_deeper_than(b"[" * 300 + b"]" * 300)
    assert not nested_deeper_than(b"[" * MAX_NESTING + b"]" * MAX_NESTING)
    assert not nested_deeper_than(b"[" * 300)  # not JSON: the parser says so
    assert not nested_deeper_than(b'{"GSW_CALLING_LISTS": [{"GSW_CALLING_LIST_DBID": 1}]}', 3)
